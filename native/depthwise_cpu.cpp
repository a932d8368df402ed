// Depthwise convolution (groups == C == OC) on the CPU: three kernel sets, chosen in conv_cpu.cpp.
//
// Register-tiled channels-last 3x3 (float32, C % 16 == 0, dilation 1, stride 1 or 2): the MobileNetV2 shapes. The
// general kernels (end of this file) re-read each input vector once per tap that uses it; these slide a tile of 8
// outputs along the row so that each input vector is loaded once per kernel row and reused by the 2-3 outputs that
// need it, with the tile's accumulators (forward, input gradient) or the nine weight-gradient accumulators (weight
// gradient) in registers. Edges (the pixels whose taps fall into the padding) take a per-pixel path with bounds
// checks. The stride-1 input gradient is the forward kernel itself, run on the gradient with the flipped kernel
// and the complementary padding; the stride-2 input gradient is a gather over the (one or two) kernel taps of each
// parity, also tiled along the row.
//
// NCHW on phase planes (float32, kernel up to 7x7, stride 1 or 2): below, at "NCHW planes".
//
// General kernels for every other shape and float64: NHWC rows and NCHW planes (the NCHW forward is the direct
// family's per-plane kernel, direct_cpu.cpp).
#include "bn_depthwise.h"
#include "conv.h"

#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <type_traits>

namespace pydlr {
namespace {

constexpr int kTile = 8;  // output pixels per register tile (stride 1); stride 2 uses kTile / 2

// Output range [lo, hi) whose three horizontal taps (iw = ow * s - p + kw, kw = 0..2) are all inside [0, W).
PYDLR_INLINE void interior(int64_t W, int64_t OW, int64_t s, int64_t p, int64_t& lo, int64_t& hi) {
  lo = std::min<int64_t>(OW, (p + s - 1) / s);
  hi = W - 3 + p < 0 ? 0 : std::min<int64_t>(OW, (W - 3 + p) / s + 1);
  hi = std::max(lo, hi);
}

// Calls f(t, x0, x1, x2) for each output t of a tile of TT outputs along a row (stride S), with the three input
// vectors it reads (taps kw = 0, 1, 2) from xp (the tile's first input pixel, channel block applied): each is
// loaded once and handed on to the next output that reads it.
template <int S, int TT, typename F>
PYDLR_INLINE void slide3(const float* xp, int64_t C, F&& f) {
  if constexpr (S == 1) {
    vf16 a = vload(xp), c = vload(xp + C);
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) {
      const vf16 d = vload(xp + (t + 2) * C);
      f(t, a, c, d);
      a = c;
      c = d;
    }
  } else {
    vf16 a = vload(xp);
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) {
      const vf16 c = vload(xp + (2 * t + 1) * C), d = vload(xp + (2 * t + 2) * C);
      f(t, a, c, d);
      a = d;
    }
  }
}

// The three input rows (NHWC) that output row (n, oh) reads (rows in the padding flagged invalid), and the
// outputs [lo, hi) of the row whose three taps are all inside the input.
struct InputRows {
  const float* row[3];
  bool valid[3];
  int64_t lo, hi;
};
PYDLR_INLINE InputRows input_rows(const ConvGeom& g, const float* x, int64_t n, int64_t oh, int64_t s) {
  InputRows r;
  for (int kh = 0; kh < 3; ++kh) {
    const int64_t ih = oh * s - g.ph + kh;
    r.valid[kh] = ih >= 0 && ih < g.H;
    r.row[kh] = x + ((n * g.H) + (r.valid[kh] ? ih : 0)) * g.W * g.C;
  }
  interior(g.W, g.OW, s, g.pw, r.lo, r.hi);
  return r;
}

// Stride 1: the input row that output row oh + 1 reads first (its last kernel row), fetched while row oh is
// computed. The forward was bound by the latency of those first reads (single-threaded 32 channels at 112x112:
// 26 ms, 2.5x a streaming pass over the same data; 14.9 ms with the prefetch, torch's 16.5). Stride 2 reads two new
// rows an output row and measured slower with them prefetched (0.97-0.98x torch vs 1.07-1.26x): no prefetch there.
struct NextRow {
  const float* row = nullptr;
  int64_t W, C, pw;
  NextRow(const ConvGeom& g, const float* x, int64_t n, int64_t oh, int64_t s) : W(g.W), C(g.C), pw(g.pw) {
    const int64_t ih = oh + 3 - g.ph;
    if (s == 1 && oh + 1 < g.OH && ih >= 0 && ih < g.H) row = x + (n * g.H + ih) * g.W * g.C;
  }
  // The pixels of that row a tile of tt outputs from ow0 reads, all channels.
  PYDLR_INLINE void prefetch(int64_t ow0, int64_t tt) const {
    if (row == nullptr) return;
    const int64_t first = std::max<int64_t>(0, ow0 - pw), last = std::min<int64_t>(W, ow0 + tt);
    for (int64_t e = first * C; e < last * C; e += 16) __builtin_prefetch(row + e);
  }
};

// Forward of output row (n, oh), any activation. x: NHWC [N, H, W, C]; wd: [3, 3, C]; y: NHWC.
template <int S>
PYDLR_INLINE void fwd_row(const ConvGeom& g, const float* x, const float* wd, const float* b, float* y, int act,
                          int64_t n, int64_t oh) {
  const int64_t C = g.C, W = g.W;
  float* yr = y + (n * g.OH + oh) * g.OW * C;
  const InputRows in = input_rows(g, x, n, oh, S);
  const auto& rows = in.row;
  const auto& valid = in.valid;
  const int64_t lo = in.lo, hi = in.hi;
  constexpr int T = S == 1 ? kTile : kTile / 2;
  // Pixel tiles outer, channel blocks inner: the row is read and written in address order (channel blocks
  // outer measured 5-15% slower on these memory-bound shapes: 32 channels at 112x112 0.88-0.93x torch vs
  // 0.99-1.07x); the three weight vectors of a kernel row are reloaded per tile (from L1).
  auto pix = [&](int64_t ow, int64_t cb) __attribute__((always_inline)) {
    vf16 acc = b ? vload(b + cb) : vf16{};
    for (int kh = 0; kh < 3; ++kh) {
      if (!valid[kh]) continue;
      for (int kw = 0; kw < 3; ++kw) {
        const int64_t iw = ow * S - g.pw + kw;
        if (iw >= 0 && iw < W) acc += vload(rows[kh] + iw * C + cb) * vload(wd + (kh * 3 + kw) * C + cb);
      }
    }
    vstore(yr + ow * C + cb, act_v(acc, act));
  };
  // One tile of TT outputs from ow0, all channel blocks. Tiles only write, so the last one may overlap the one
  // before it (recomputing a few outputs) instead of leaving the remainder to the per-pixel path.
  const NextRow next(g, x, n, oh, S);
  auto tile = [&](int64_t ow0, auto tile_size) __attribute__((always_inline)) {
    constexpr int TT = decltype(tile_size)::value;
    next.prefetch(ow0, TT);
    for (int64_t cb = 0; cb < C; cb += 16) {
      const vf16 bv = b ? vload(b + cb) : vf16{};
      vf16 acc[TT];
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) acc[t] = bv;
#pragma GCC unroll 3
      for (int kh = 0; kh < 3; ++kh) {
        if (!valid[kh]) continue;
        const float* xp = rows[kh] + (ow0 * S - g.pw) * C + cb;
        const vf16 w0 = vload(wd + kh * 3 * C + cb), w1 = vload(wd + (kh * 3 + 1) * C + cb),
                   w2 = vload(wd + (kh * 3 + 2) * C + cb);
        slide3<S, TT>(xp, C, [&](int t, vf16 x0, vf16 x1, vf16 x2) __attribute__((always_inline)) {
          acc[t] += x0 * w0;
          acc[t] += x1 * w1;
          acc[t] += x2 * w2;
        });
      }
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) vstore(yr + (ow0 + t) * C + cb, act_v(acc[t], act));
    }
  };
  using Big = std::integral_constant<int, T>;
  using Small = std::integral_constant<int, 2>;
  for (int64_t ow = 0; ow < lo; ++ow)
    for (int64_t cb = 0; cb < C; cb += 16) pix(ow, cb);
  int64_t ow = lo;
  for (; ow + T <= hi; ow += T) tile(ow, Big{});
  if (ow < hi && hi - lo >= T) {
    tile(hi - T, Big{});
    ow = hi;
  }
  for (; ow + 2 <= hi; ow += 2) tile(ow, Small{});
  for (; ow < g.OW; ++ow)
    for (int64_t cb = 0; cb < C; cb += 16) pix(ow, cb);
}

// Input gradient of row (n, ih) for stride 2: dx[ih, iw] = sum of gm[oh, ow] * w[kh, kw] over the taps with
// oh * 2 - ph + kh = ih and ow * 2 - pw + kw = iw. gm: NHWC [N, OH, OW, C] (already masked).
PYDLR_INLINE void dx_row_s2(const ConvGeom& g, const float* gm, const float* wd, float* dx, int64_t n, int64_t ih) {
  const int64_t C = g.C, OW = g.OW;
  float* dr = dx + (n * g.H + ih) * g.W * C;
  // The (one or two) kernel rows that reach this input row, and their gradient rows.
  int nk = 0, khs[2];
  const float* grows[2];
  for (int kh = 0; kh < 3; ++kh) {
    const int64_t t = ih + g.ph - kh;
    if (t < 0 || (t & 1) || t / 2 >= g.OH) continue;
    khs[nk] = kh;
    grows[nk++] = gm + (n * g.OH + t / 2) * OW * C;
  }
  // Interior pairs m: input columns iw = 2m - pw (taps kw 0 and 2: ow = m and m - 1) and 2m + 1 - pw (tap kw 1:
  // ow = m) with every ow inside [0, OW): 1 <= m <= OW - 1, and both columns inside [0, W).
  const int64_t m_lo = std::max<int64_t>(1, (g.pw + 1) / 2);
  const int64_t m_hi =
      g.W - 2 + g.pw < 0 ? m_lo : std::max<int64_t>(m_lo, std::min<int64_t>(OW, (g.W - 2 + g.pw) / 2 + 1));
  constexpr int T = kTile / 2;
  for (int64_t cb = 0; cb < C; cb += 16) {
    vf16 w[9];
    for (int k = 0; k < 9; ++k) w[k] = vload(wd + k * C + cb);
    auto column = [&](int64_t iw) __attribute__((always_inline)) {
      vf16 acc{};
      for (int r = 0; r < nk; ++r) {
        for (int kw = 0; kw < 3; ++kw) {
          const int64_t u = iw + g.pw - kw;
          if (u < 0 || (u & 1) || u / 2 >= OW) continue;
          acc += vload(grows[r] + (u / 2) * C + cb) * w[khs[r] * 3 + kw];
        }
      }
      vstore(dr + iw * C + cb, acc);
    };
    const int64_t iw_lo = 2 * m_lo - g.pw;  // first interior column
    for (int64_t iw = 0; iw < std::min<int64_t>(iw_lo, g.W); ++iw) column(iw);
    // T column pairs from m0 (write-only: the last tile may overlap the one before it).
    auto tile = [&](int64_t m0) __attribute__((always_inline)) {
      vf16 even[T], odd[T];
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) even[t] = odd[t] = vf16{};
      for (int r = 0; r < nk; ++r) {
        const float* gp = grows[r] + (m0 - 1) * C + cb;
        const vf16 w0 = w[khs[r] * 3], w1 = w[khs[r] * 3 + 1], w2 = w[khs[r] * 3 + 2];
        vf16 prev = vload(gp);
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
          const vf16 cur = vload(gp + (t + 1) * C);
          even[t] += cur * w0;
          even[t] += prev * w2;
          odd[t] += cur * w1;
          prev = cur;
        }
      }
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        const int64_t iw = 2 * (m0 + t) - g.pw;
        vstore(dr + iw * C + cb, even[t]);
        vstore(dr + (iw + 1) * C + cb, odd[t]);
      }
    };
    int64_t m = m_lo;
    for (; m + T <= m_hi; m += T) tile(m);
    if (m < m_hi && m_hi - m_lo >= T) {
      tile(m_hi - T);
      m = m_hi;
    }
    for (int64_t iw = std::max<int64_t>(0, 2 * m - g.pw); iw < g.W; ++iw) column(iw);
  }
}

// Weight and bias gradients of output row (n, oh) into acc [3, 3, C] and accb [C] (this thread's accumulators).
template <int S>
PYDLR_INLINE void dw_row(const ConvGeom& g, const float* x, const float* gm, float* acc, float* accb, int64_t n,
                         int64_t oh) {
  const int64_t C = g.C, W = g.W;
  const float* gr = gm + (n * g.OH + oh) * g.OW * C;
  const InputRows in = input_rows(g, x, n, oh, S);
  const auto& rows = in.row;
  const auto& valid = in.valid;
  const int64_t lo = in.lo, hi = in.hi;
  constexpr int T = S == 1 ? kTile : kTile / 2;
  const NextRow next(g, x, n, oh, S);  // the input row the next gradient row's weight gradient reads first
  for (int64_t cb = 0; cb < C; cb += 16) {
    vf16 a[9];
    for (int k = 0; k < 9; ++k) a[k] = vload(acc + k * C + cb);
    vf16 ab = vload(accb + cb);
    auto pixel = [&](int64_t ow) __attribute__((always_inline)) {
      const vf16 gv = vload(gr + ow * C + cb);
      ab += gv;
      for (int kh = 0; kh < 3; ++kh) {
        if (!valid[kh]) continue;
        for (int kw = 0; kw < 3; ++kw) {
          const int64_t iw = ow * S - g.pw + kw;
          if (iw >= 0 && iw < W) a[kh * 3 + kw] += gv * vload(rows[kh] + iw * C + cb);
        }
      }
    };
    // TT outputs from ow0 (accumulating: tiles must not overlap; the remainder takes tiles of 2, then pixels).
    auto tile = [&](int64_t ow0, auto tile_size) __attribute__((always_inline)) {
      constexpr int TT = decltype(tile_size)::value;
      if (cb == 0) next.prefetch(ow0, TT);
      vf16 gv[TT];
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) {
        gv[t] = vload(gr + (ow0 + t) * C + cb);
        ab += gv[t];
      }
#pragma GCC unroll 3
      for (int kh = 0; kh < 3; ++kh) {
        if (!valid[kh]) continue;
        const float* xp = rows[kh] + (ow0 * S - g.pw) * C + cb;
        vf16 s0 = a[kh * 3], s1 = a[kh * 3 + 1], s2 = a[kh * 3 + 2];
        slide3<S, TT>(xp, C, [&](int t, vf16 x0, vf16 x1, vf16 x2) __attribute__((always_inline)) {
          s0 += gv[t] * x0;
          s1 += gv[t] * x1;
          s2 += gv[t] * x2;
        });
        a[kh * 3] = s0;
        a[kh * 3 + 1] = s1;
        a[kh * 3 + 2] = s2;
      }
    };
    for (int64_t ow = 0; ow < lo; ++ow) pixel(ow);
    int64_t ow = lo;
    for (; ow + T <= hi; ow += T) tile(ow, std::integral_constant<int, T>{});
    for (; ow + 2 <= hi; ow += 2) tile(ow, std::integral_constant<int, 2>{});
    for (; ow < g.OW; ++ow) pixel(ow);
    for (int k = 0; k < 9; ++k) vstore(acc + k * C + cb, a[k]);
    vstore(accb + cb, ab);
  }
}

PYDLR_CLONES void fwd_row_clone(const ConvGeom& g, const float* x, const float* wd, const float* b, float* y,
                                int act, int64_t n, int64_t oh) {
  if (g.sw == 1) {
    fwd_row<1>(g, x, wd, b, y, act, n, oh);
  } else {
    fwd_row<2>(g, x, wd, b, y, act, n, oh);
  }
}
PYDLR_CLONES void dx_row_s2_clone(const ConvGeom& g, const float* gm, const float* wd, float* dx, int64_t n,
                                  int64_t ih) {
  dx_row_s2(g, gm, wd, dx, n, ih);
}
PYDLR_CLONES void dw_row_clone(const ConvGeom& g, const float* x, const float* gm, float* acc, float* accb,
                               int64_t n, int64_t oh) {
  if (g.sw == 1) {
    dw_row<1>(g, x, gm, acc, accb, n, oh);
  } else {
    dw_row<2>(g, x, gm, acc, accb, n, oh);
  }
}

// ---------------------------------------------------------------------------------------------- NCHW planes
// NCHW depthwise backward on "phase" planes: each zero-padded input plane is split into s x s phase planes
// (P_ab[i][j] = xpad[i * s + a][j * s + b]), so that every kernel tap reads one phase plane at a fixed offset, and
// the output gradient is laid out at the phase planes' row pitch PW (columns >= OW zero). Each tap then is one long
// contiguous dot product (weight gradient) and one long axpy (input gradient) over L = OH * PW elements, instead
// of OH short rows with remainders (56-wide rows are 3.5 vectors).
struct PhaseGeom {
  int64_t s, PH, PW, plane, L;
};

PhaseGeom phase_geom(const ConvGeom& g) {
  const int64_t s = g.sh, Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw;
  const int64_t PW = (Wp + s - 1) / s, PH = (Hp + s - 1) / s + 1;  // + 1 row: the last taps' reads overrun a row
  return {s, PH, PW, PH * PW, g.OH * PW};
}

// Phase planes of one zero-padded plane src [H, W] (ph: s * s planes of PH x PW, overwritten). Input row ih is row
// r / s of the phases (r % s, b), column iw = j * s + b - pw of it at column j.
PYDLR_INLINE void to_phases(const ConvGeom& g, const PhaseGeom& q, const float* src, float* ph) {
  std::fill_n(ph, q.s * q.s * q.plane, 0.0f);
  for (int64_t ih = 0; ih < g.H; ++ih) {
    const int64_t r = ih + g.ph;
    const float* __restrict row = src + ih * g.W;
    for (int64_t b = 0; b < q.s; ++b) {
      float* __restrict dst = ph + ((r % q.s) * q.s + b) * q.plane + (r / q.s) * q.PW;
      const int64_t j0 = (g.pw - b + q.s - 1) / q.s, j1 = std::min(q.PW, (g.W - 1 + g.pw - b) / q.s + 1);
      for (int64_t j = j0; j < j1; ++j) dst[j] = row[j * q.s + b - g.pw];
    }
  }
}

// The inverse for the input gradient: dx [H, W] from the phase planes (padding dropped).
PYDLR_INLINE void from_phases(const ConvGeom& g, const PhaseGeom& q, const float* ph, float* dst) {
  for (int64_t ih = 0; ih < g.H; ++ih) {
    const int64_t r = ih + g.ph;
    float* __restrict row = dst + ih * g.W;
    for (int64_t b = 0; b < q.s; ++b) {
      const float* __restrict src = ph + ((r % q.s) * q.s + b) * q.plane + (r / q.s) * q.PW;
      const int64_t j0 = (g.pw - b + q.s - 1) / q.s, j1 = std::min(q.PW, (g.W - 1 + g.pw - b) / q.s + 1);
      for (int64_t j = j0; j < j1; ++j) row[j * q.s + b - g.pw] = src[j];
    }
  }
}

PYDLR_INLINE float dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

PYDLR_INLINE void axpy(float* __restrict y, const float* __restrict x, float a, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// Backward of plane (n, c). buf: 2 * s * s * plane + L floats of scratch; acc: [C, KH * KW], accb: [C].
PYDLR_CLONES void nchw_bwd_plane(const ConvGeom& g, const PhaseGeom& q, const float* x, const float* gm,
                                 const float* w, float* dx, float* acc, float* accb, float* buf, int64_t n,
                                 int64_t c) {
  const int64_t KK = g.KH * g.KW, nph = q.s * q.s * q.plane;
  float* xph = buf;
  float* dph = buf + nph;
  float* gw = buf + 2 * nph;  // the gradient at pitch PW
  const float* gp = gm + (n * g.C + c) * g.OH * g.OW;
  float bsum = 0.0f;
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    std::copy_n(gp + oh * g.OW, g.OW, gw + oh * q.PW);
    std::fill_n(gw + oh * q.PW + g.OW, q.PW - g.OW, 0.0f);
  }
  if (accb) {
#pragma omp simd reduction(+ : bsum)
    for (int64_t i = 0; i < q.L; ++i) bsum += gw[i];
    accb[c] += bsum;
  }
  if (acc) to_phases(g, q, x + (n * g.C + c) * g.H * g.W, xph);
  if (dx) std::fill_n(dph, nph, 0.0f);
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const int64_t off = ((kh % q.s) * q.s + kw % q.s) * q.plane + (kh / q.s) * q.PW + kw / q.s;
      if (acc) acc[c * KK + kh * g.KW + kw] += dot(gw, xph + off, q.L);
      if (dx) axpy(dph + off, gw, w[c * KK + kh * g.KW + kw], q.L);
    }
  }
  if (dx) from_phases(g, q, dph, dx + (n * g.C + c) * g.H * g.W);
}

// Forward of plane (n, c) with bias and activation: 16 outputs at a time accumulate all taps in a register (one
// store each), reading the phase planes at each tap's offset. buf: s * s * plane + L + 32 floats of scratch.
PYDLR_CLONES void nchw_fwd_plane(const ConvGeom& g, const PhaseGeom& q, const float* x, const float* w, const float* b,
                                 float* y, int act, float* buf, int64_t n, int64_t c) {
  const int64_t KK = g.KH * g.KW, nph = q.s * q.s * q.plane;
  float* xph = buf;
  float* yw = buf + nph + 16;  // the output at pitch PW (16 floats of slack after the phases: vector overrun)
  to_phases(g, q, x + (n * g.C + c) * g.H * g.W, xph);
  std::fill_n(xph + nph, 16, 0.0f);
  int64_t offs[49];
  vf16 wv[49];
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      offs[kh * g.KW + kw] = ((kh % q.s) * q.s + kw % q.s) * q.plane + (kh / q.s) * q.PW + kw / q.s;
      wv[kh * g.KW + kw] = vf16{} + w[c * KK + kh * g.KW + kw];
    }
  }
  const vf16 bv = vf16{} + (b ? b[c] : 0.0f);
  for (int64_t i = 0; i < q.L; i += 16) {
    vf16 acc = bv;
    for (int64_t k = 0; k < KK; ++k) acc += vload(xph + offs[k] + i) * wv[k];
    vstore(yw + i, act_v(acc, act));
  }
  float* yp = y + (n * g.C + c) * g.OH * g.OW;
  for (int64_t oh = 0; oh < g.OH; ++oh) std::copy_n(yw + oh * q.PW, g.OW, yp + oh * g.OW);
}

// ---------------------------------------------------------------------------------------------- general kernels
// Any kernel size, stride, dilation and channel count, float or double: NHWC output rows vectorised over channels
// (wd: weight as [KH, KW, C]), NCHW planes vectorised over the width (w: [C, 1, KH, KW]); the input gradient
// scattered within one row (NHWC) or one plane (NCHW), so threads never race.
// Register-tiled depthwise forward for C % 16 == 0: 4 output pixels x 16 channels accumulate in registers over
// all taps and are stored once with bias and activation (the plain row kernel below re-reads and re-writes the
// output row per tap, which is store-bound).
PYDLR_INLINE void dw_nhwc_row_v(const ConvGeom& g, const float* x, const float* wd, const float* b, float* y, int act,
                                int64_t n, int64_t oh) {
  const int64_t C = g.C;
  float* yr = y + (n * g.OH + oh) * g.OW * C;
  const float* xn = x + n * g.H * g.W * C;
  int64_t lo, hi;
  interior_columns(g, lo, hi);
  auto pixel = [&](int64_t ow, int64_t cb, vf16 bv) __attribute__((always_inline)) {
    vf16 acc = bv;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t iw = ow * g.sw - g.pw + kw * g.dw;
        if (iw < 0 || iw >= g.W) continue;
        acc += vload(xn + (ih * g.W + iw) * C + cb) * vload(wd + (kh * g.KW + kw) * C + cb);
      }
    }
    vstore(yr + ow * C + cb, act_v(acc, act));
  };
  for (int64_t cb = 0; cb < C; cb += 16) {
    const vf16 bv = b ? vload(b + cb) : vf16{};
    for (int64_t ow = 0; ow < lo; ++ow) pixel(ow, cb, bv);
    int64_t ow = lo;
    for (; ow + 4 <= hi; ow += 4) {
      vf16 a0 = bv, a1 = bv, a2 = bv, a3 = bv;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
        if (ih < 0 || ih >= g.H) continue;
        const float* xr = xn + ih * g.W * C + cb;
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const vf16 wv = vload(wd + (kh * g.KW + kw) * C + cb);
          const float* xp = xr + (ow * g.sw - g.pw + kw * g.dw) * C;
          const int64_t ps = g.sw * C;
          a0 += vload(xp) * wv;
          a1 += vload(xp + ps) * wv;
          a2 += vload(xp + 2 * ps) * wv;
          a3 += vload(xp + 3 * ps) * wv;
        }
      }
      vstore(yr + ow * C + cb, act_v(a0, act));
      vstore(yr + (ow + 1) * C + cb, act_v(a1, act));
      vstore(yr + (ow + 2) * C + cb, act_v(a2, act));
      vstore(yr + (ow + 3) * C + cb, act_v(a3, act));
    }
    for (; ow < g.OW; ++ow) pixel(ow, cb, bv);
  }
}
PYDLR_CLONES void dw_nhwc_row_vf(const ConvGeom& g, const float* x, const float* wd, const float* b, float* y,
                                 int act, int64_t n, int64_t oh) {
  dw_nhwc_row_v(g, x, wd, b, y, act, n, oh);
}

// NHWC depthwise forward, one output row (n, oh); vectorised over channels. wd: [KH, KW, C].
template <typename T>
PYDLR_INLINE void dw_nhwc_row_impl(const ConvGeom& g, const T* __restrict x, const T* __restrict wd,
                                   const T* __restrict b, T* __restrict y, int act, int64_t n, int64_t oh) {
  const int64_t C = g.C;
  T* __restrict yr = y + (n * g.OH + oh) * g.OW * C;
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    T* __restrict yp = yr + ow * C;
    if (b) {
      for (int64_t c = 0; c < C; ++c) yp[c] = b[c];
    } else {
      for (int64_t c = 0; c < C; ++c) yp[c] = T(0);
    }
  }
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
    if (ih < 0 || ih >= g.H) continue;
    const T* xr = x + (n * g.H + ih) * g.W * C;
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const int64_t off = kw * g.dw - g.pw;
      int64_t lo, hi;
      valid_range(off, g.sw, g.W, g.OW, lo, hi);
      const T* __restrict wv = wd + (kh * g.KW + kw) * C;
      for (int64_t ow = lo; ow < hi; ++ow) {
        const T* __restrict xp = xr + (ow * g.sw + off) * C;
        T* __restrict yp = yr + ow * C;
        for (int64_t c = 0; c < C; ++c) yp[c] += xp[c] * wv[c];
      }
    }
  }
  if (act != 0) act_span(yr, yr, g.OW * C, act);
}
PYDLR_CLONES void dw_nhwc_row_f(const ConvGeom& g, const float* x, const float* wd, const float* b, float* y, int act,
                                int64_t n, int64_t oh) {
  dw_nhwc_row_impl<float>(g, x, wd, b, y, act, n, oh);
}
inline void dw_nhwc_row(const ConvGeom& g, const float* x, const float* wd, const float* b, float* y, int act,
                        int64_t n, int64_t oh) {
  if (g.C % 16 == 0) {
    dw_nhwc_row_vf(g, x, wd, b, y, act, n, oh);
  } else {
    dw_nhwc_row_f(g, x, wd, b, y, act, n, oh);
  }
}
inline void dw_nhwc_row(const ConvGeom& g, const double* x, const double* wd, const double* b, double* y, int act,
                        int64_t n, int64_t oh) {
  dw_nhwc_row_impl<double>(g, x, wd, b, y, act, n, oh);
}

// NHWC depthwise backward for one input row (n, ih) of dx (scatter restricted to this row: race-free).
template <typename T>
PYDLR_INLINE void dw_nhwc_dx_row_impl(const ConvGeom& g, const T* __restrict gm, const T* __restrict wd,
                                      T* __restrict dx, int64_t n, int64_t ih) {
  const int64_t C = g.C;
  T* __restrict dr = dx + (n * g.H + ih) * g.W * C;
  std::fill_n(dr, g.W * C, T(0));
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    const int64_t t = ih + g.ph - kh * g.dh;
    if (t < 0 || t % g.sh != 0 || t / g.sh >= g.OH) continue;
    const T* gr = gm + (n * g.OH + t / g.sh) * g.OW * C;
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const int64_t off = kw * g.dw - g.pw;
      int64_t lo, hi;
      valid_range(off, g.sw, g.W, g.OW, lo, hi);
      const T* __restrict wv = wd + (kh * g.KW + kw) * C;
      for (int64_t ow = lo; ow < hi; ++ow) {
        T* __restrict dp = dr + (ow * g.sw + off) * C;
        const T* __restrict gp = gr + ow * C;
        for (int64_t c = 0; c < C; ++c) dp[c] += gp[c] * wv[c];
      }
    }
  }
}
// NHWC depthwise weight gradient of one output row (n, oh), accumulated into acc [KH, KW, C].
template <typename T>
PYDLR_INLINE void dw_nhwc_dw_row_impl(const ConvGeom& g, const T* __restrict x, const T* __restrict gm,
                                      T* __restrict acc, int64_t n, int64_t oh) {
  const int64_t C = g.C;
  const T* gr = gm + (n * g.OH + oh) * g.OW * C;
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
    if (ih < 0 || ih >= g.H) continue;
    const T* xr = x + (n * g.H + ih) * g.W * C;
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const int64_t off = kw * g.dw - g.pw;
      int64_t lo, hi;
      valid_range(off, g.sw, g.W, g.OW, lo, hi);
      T* __restrict a = acc + (kh * g.KW + kw) * C;
      for (int64_t ow = lo; ow < hi; ++ow) {
        const T* __restrict xp = xr + (ow * g.sw + off) * C;
        const T* __restrict gp = gr + ow * C;
        for (int64_t c = 0; c < C; ++c) a[c] += gp[c] * xp[c];
      }
    }
  }
}
PYDLR_CLONES void dw_nhwc_dx_row_f(const ConvGeom& g, const float* gm, const float* wd, float* dx, int64_t n,
                                   int64_t ih) {
  dw_nhwc_dx_row_impl<float>(g, gm, wd, dx, n, ih);
}
PYDLR_CLONES void dw_nhwc_dw_row_f(const ConvGeom& g, const float* x, const float* gm, float* acc, int64_t n,
                                   int64_t oh) {
  dw_nhwc_dw_row_impl<float>(g, x, gm, acc, n, oh);
}
inline void dw_nhwc_dx_row(const ConvGeom& g, const float* gm, const float* wd, float* dx, int64_t n, int64_t ih) {
  dw_nhwc_dx_row_f(g, gm, wd, dx, n, ih);
}
inline void dw_nhwc_dx_row(const ConvGeom& g, const double* gm, const double* wd, double* dx, int64_t n, int64_t ih) {
  dw_nhwc_dx_row_impl<double>(g, gm, wd, dx, n, ih);
}
inline void dw_nhwc_dw_row(const ConvGeom& g, const float* x, const float* gm, float* acc, int64_t n, int64_t oh) {
  dw_nhwc_dw_row_f(g, x, gm, acc, n, oh);
}
inline void dw_nhwc_dw_row(const ConvGeom& g, const double* x, const double* gm, double* acc, int64_t n,
                           int64_t oh) {
  dw_nhwc_dw_row_impl<double>(g, x, gm, acc, n, oh);
}

// NCHW depthwise backward of one plane (n, c): dx plane (scatter within the plane) and weight grad into acc[KK].
template <typename T>
PYDLR_INLINE void dw_nchw_bwd_plane_impl(const ConvGeom& g, const T* __restrict x, const T* __restrict w,
                                         const T* __restrict gm, T* __restrict dx, T* __restrict acc, int64_t n,
                                         int64_t c) {
  const int64_t KK = g.KH * g.KW;
  const T* gp = gm + (n * g.C + c) * g.OH * g.OW;
  const T* xp = x + (n * g.C + c) * g.H * g.W;
  T* dp = dx ? dx + (n * g.C + c) * g.H * g.W : nullptr;
  if (dp) std::fill_n(dp, g.H * g.W, T(0));
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const T* __restrict gr = gp + oh * g.OW;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t off = kw * g.dw - g.pw;
        int64_t lo, hi;
        valid_range(off, g.sw, g.W, g.OW, lo, hi);
        const int64_t s = g.sw;
        if (acc) {
          const T* __restrict xr = xp + ih * g.W + off;
          T sum = T(0);
          if (s == 1) {  // unit stride: contiguous, vectorised
#pragma omp simd reduction(+ : sum)
            for (int64_t ow = lo; ow < hi; ++ow) sum += gr[ow] * xr[ow];
          } else {
#pragma omp simd reduction(+ : sum)
            for (int64_t ow = lo; ow < hi; ++ow) sum += gr[ow] * xr[ow * s];
          }
          acc[c * KK + kh * g.KW + kw] += sum;
        }
        if (dp) {
          T* __restrict dr = dp + ih * g.W + off;
          const T wv = w[c * KK + kh * g.KW + kw];
          if (s == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) dr[ow] += gr[ow] * wv;
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dr[ow * s] += gr[ow] * wv;
          }
        }
      }
    }
  }
}
PYDLR_CLONES void dw_nchw_bwd_plane_f(const ConvGeom& g, const float* x, const float* w, const float* gm, float* dx,
                                      float* acc, int64_t n, int64_t c) {
  dw_nchw_bwd_plane_impl<float>(g, x, w, gm, dx, acc, n, c);
}
inline void dw_nchw_bwd_plane(const ConvGeom& g, const float* x, const float* w, const float* gm, float* dx,
                              float* acc, int64_t n, int64_t c) {
  dw_nchw_bwd_plane_f(g, x, w, gm, dx, acc, n, c);
}
inline void dw_nchw_bwd_plane(const ConvGeom& g, const double* x, const double* w, const double* gm, double* dx,
                              double* acc, int64_t n, int64_t c) {
  dw_nchw_bwd_plane_impl<double>(g, x, w, gm, dx, acc, n, c);
}

}  // namespace

namespace detail {

bool dw3_tiled_ok(const ConvGeom& g, at::ScalarType t) {
  return t == at::kFloat && g.G == g.C && g.OC == g.C && g.C % 16 == 0 && g.KH == 3 && g.KW == 3 && g.dh == 1 &&
         g.dw == 1 && g.sh == g.sw && (g.sh == 1 || g.sh == 2) && g.ph <= 2 && g.pw <= 2;
}

void dw3_fwd_row(const ConvGeom& g, const float* x, const float* wd, const float* b, float* y, int act, int64_t n,
                 int64_t oh) {
  fwd_row_clone(g, x, wd, b, y, act, n, oh);
}

std::pair<at::Tensor, at::Tensor> dw3_backward(const ConvGeom& g, const float* x, const float* gm, const float* wd,
                                               float* dx, bool want_grads, const at::TensorOptions& opts) {
  const int64_t nt = at::get_num_threads(), KC = 9 * g.C;
  at::Tensor accs = want_grads ? at::zeros({nt, KC + g.C}, opts) : at::Tensor();
  float* ap = want_grads ? accs.mutable_data_ptr<float>() : nullptr;
  // Stride 1: dx is the forward kernel run on the gradient with the flipped kernel and padding 2 - p.
  std::vector<float> flipped(9 * g.C);
  for (int k = 0; k < 9; ++k) std::copy_n(wd + (8 - k) * g.C, g.C, flipped.data() + k * g.C);
  const ConvGeom t = input_grad_geometry(g);  // depthwise: C == OC, so only planes and padding change
  // One task per gradient row oh: the input-gradient rows it is the last to feed, then its weight-gradient
  // contribution, so each gradient row comes from memory once and is reused from cache.
  at::parallel_for(0, g.N * g.OH, 1, [&](int64_t b0, int64_t b1) {
    float* acc = ap ? ap + at::get_thread_num() * (KC + g.C) : nullptr;
    for (int64_t k = b0; k < b1; ++k) {
      const int64_t n = k / g.OH, oh = k % g.OH;
      if (dx) {
        const int64_t r0 = std::min(g.H, oh * g.sh);
        const int64_t r1 = oh == g.OH - 1 ? g.H : std::min(g.H, (oh + 1) * g.sh);
        for (int64_t ih = r0; ih < r1; ++ih) {
          if (g.sh == 1) {
            fwd_row_clone(t, gm, flipped.data(), nullptr, dx, 0, n, ih);
          } else {
            dx_row_s2_clone(g, gm, wd, dx, n, ih);
          }
        }
      }
      if (acc) dw_row_clone(g, x, gm, acc, acc + KC, n, oh);
    }
  });
  if (!want_grads) return {};
  const at::Tensor total = accs.sum(0);
  return {total.narrow(0, 0, KC).view({9, g.C}).t().reshape({g.C, 1, 3, 3}).contiguous(),
          total.narrow(0, KC, g.C).clone()};
}

void dw3_dx_row_s2(const ConvGeom& g, const float* gm, const float* wd, float* dx, int64_t n, int64_t ih) {
  dx_row_s2_clone(g, gm, wd, dx, n, ih);
}

void dw3_wgrad_row(const ConvGeom& g, const float* x, const float* gm, float* acc, float* accb, int64_t n,
                   int64_t oh) {
  dw_row_clone(g, x, gm, acc, accb, n, oh);
}

bool dw_nchw_phase_ok(const ConvGeom& g, at::ScalarType t) {
  return t == at::kFloat && g.G == g.C && g.OC == g.C && g.dh == 1 && g.dw == 1 && g.sh == g.sw &&
         (g.sh == 1 || g.sh == 2) && g.KH <= 7 && g.KW <= 7;
}

void dw_nchw_forward(const ConvGeom& g, const float* x, const float* w, const float* b, float* y, int act) {
  const PhaseGeom q = phase_geom(g);
  at::parallel_for(0, g.N * g.C, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> buf(q.s * q.s * q.plane + q.L + 32);
    for (int64_t t = b0; t < b1; ++t) nchw_fwd_plane(g, q, x, w, b, y, act, buf.data(), t / g.C, t % g.C);
  });
}

std::pair<at::Tensor, at::Tensor> dw_nchw_backward(const ConvGeom& g, const float* x, const float* gm, const float* w,
                                                   float* dx, bool want_grads, const at::TensorOptions& opts) {
  const PhaseGeom q = phase_geom(g);
  const int64_t nt = at::get_num_threads(), KK = g.KH * g.KW;
  at::Tensor accs = want_grads ? at::zeros({nt, g.C * KK + g.C}, opts) : at::Tensor();
  float* ap = want_grads ? accs.mutable_data_ptr<float>() : nullptr;
  at::parallel_for(0, g.N * g.C, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> buf(2 * q.s * q.s * q.plane + q.L);
    float* acc = ap ? ap + at::get_thread_num() * (g.C * KK + g.C) : nullptr;
    for (int64_t t = b0; t < b1; ++t) {
      nchw_bwd_plane(g, q, x, gm, w, dx, acc, acc ? acc + g.C * KK : nullptr, buf.data(), t / g.C, t % g.C);
    }
  });
  if (!want_grads) return {};
  const at::Tensor total = accs.sum(0);
  return {total.narrow(0, 0, g.C * KK).view({g.C, 1, g.KH, g.KW}).clone(), total.narrow(0, g.C * KK, g.C).clone()};
}


template <typename T>
void dw_nhwc_rows_forward(const ConvGeom& g, const T* x, const at::Tensor& weight, const T* b, T* y, int act) {
  const at::Tensor wd = weight.reshape({g.C, g.KH * g.KW}).t().contiguous();
  const T* wp = wd.const_data_ptr<T>();
  at::parallel_for(0, g.N * g.OH, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t t = b0; t < b1; ++t) dw_nhwc_row(g, x, wp, b, y, act, t / g.OH, t % g.OH);
  });
}

template <typename T>
at::Tensor dw_nhwc_rows_backward(const ConvGeom& g, const T* x, const T* gm, const at::Tensor& weight, T* dx,
                                 bool want_weight, const at::TensorOptions& opts) {
  const int64_t KK = g.KH * g.KW;
  const at::Tensor wd = weight.reshape({g.C, KK}).t().contiguous();
  const T* wp = wd.const_data_ptr<T>();
  if (dx) {
    at::parallel_for(0, g.N * g.H, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t t = b0; t < b1; ++t) dw_nhwc_dx_row(g, gm, wp, dx, t / g.H, t % g.H);
    });
  }
  if (!want_weight) return {};
  at::Tensor accs = at::zeros({at::get_num_threads(), KK * g.C}, opts);
  T* ap = accs.mutable_data_ptr<T>();
  at::parallel_for(0, g.N * g.OH, 1, [&](int64_t b0, int64_t b1) {
    T* acc = ap + at::get_thread_num() * KK * g.C;
    for (int64_t t = b0; t < b1; ++t) dw_nhwc_dw_row(g, x, gm, acc, t / g.OH, t % g.OH);
  });
  return accs.sum(0).view({KK, g.C}).t().reshape({g.C, 1, g.KH, g.KW}).contiguous();
}

template <typename T>
at::Tensor dw_nchw_planes_backward(const ConvGeom& g, const T* x, const T* gm, const at::Tensor& weight, T* dx,
                                   bool want_weight, const at::TensorOptions& opts) {
  const int64_t KK = g.KH * g.KW;
  const at::Tensor w = weight.contiguous();
  const T* wp = w.const_data_ptr<T>();
  at::Tensor accs = want_weight ? at::zeros({at::get_num_threads(), g.C * KK}, opts) : at::Tensor();
  T* ap = accs.defined() ? accs.mutable_data_ptr<T>() : nullptr;
  at::parallel_for(0, g.N * g.C, 1, [&](int64_t b0, int64_t b1) {
    T* acc = ap ? ap + at::get_thread_num() * g.C * KK : nullptr;
    for (int64_t t = b0; t < b1; ++t) dw_nchw_bwd_plane(g, x, wp, gm, dx, acc, t / g.C, t % g.C);
  });
  return ap ? accs.sum(0).view({g.C, 1, g.KH, g.KW}) : at::Tensor();
}

#define PYDLR_DEPTHWISE_INSTANCES(T)                                                                              \
  template void dw_nhwc_rows_forward<T>(const ConvGeom&, const T*, const at::Tensor&, const T*, T*, int);       \
  template at::Tensor dw_nhwc_rows_backward<T>(const ConvGeom&, const T*, const T*, const at::Tensor&, T*, bool, \
                                                const at::TensorOptions&);                                      \
  template at::Tensor dw_nchw_planes_backward<T>(const ConvGeom&, const T*, const T*, const at::Tensor&, T*, bool, \
                                                  const at::TensorOptions&);
PYDLR_DEPTHWISE_INSTANCES(float)
PYDLR_DEPTHWISE_INSTANCES(double)
#undef PYDLR_DEPTHWISE_INSTANCES

}  // namespace detail
}  // namespace pydlr
