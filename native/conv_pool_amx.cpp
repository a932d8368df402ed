// bfloat16 3x3 convolution + bias + activation, with or without a 2x2 max pooling after it, on AMX tiles (Intel
// Sapphire Rapids and later), for CPU autocast to bfloat16: the seed CNN's Conv2D(64, 3, relu) -> MaxPool(2) and
// Conv2D(64, 3, relu) under fit(precision = "bfloat16"). Forward, input gradient and weight gradient.
//
// Why: an AMX tile multiply (TDPBF16PS) does 16 x 16 x 32 bf16 multiply-adds into float32, about 4x what AVX-512
// float32 FMAs give per cycle on these cores; oneDNN's bf16 convolution is that fast too, but the casts around it
// (float32 activations in, bf16 out, torch's pooling after it) cost what it saves. Here the casts happen in the
// passes that already copy the data, and the pooling is the float32 epilogue of the tiles.
//
// Layout trick: the input, padded and cast to bf16, is a flat run of pixels [Hp * Wp][C]. An output at flat
// position p = oh * Wp + ow reads input p + kh * Wp + kw, so 16 consecutive outputs read 16 consecutive input pixels
// for every tap: each tap is one tile load straight from the bf16 input (rows C * 2 bytes apart), no im2col. The
// outputs at ow >= OW (Wp - OW = 2 a row) are computed and ignored. The backward uses the same flat runs: the input
// gradient reads the output gradient shifted back by each tap (with 2 * Wp + 2 zero rows in front), the weight
// gradient sums output gradient x input over flat positions (K) with the input transposed ([C][flat]) and the
// gradient in pairs of positions (AMX's VNNI layout); the ignored columns hold zero gradient.
//
// Precision: inputs, weights and the output gradient are rounded to bf16 (round to nearest even, as torch's casts);
// products are summed in float32 and the outputs, pooled values and gradients are float32 (autocast's convolution
// would also round its output to bf16). The pooling takes the window's maximum before the activation (equal for
// the non-decreasing activations fused here), so where activated values tie at 0 (or 6) the argmax may name
// another element of the window than max_pool2d(relu(...)) would: those elements get no gradient either way.
#include "conv.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <type_traits>
#include <vector>

#define PYDLR_AMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-bf16")))

namespace pydlr {
namespace {

using bf16 = uint16_t;

bool cpu_has_amx_bf16() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool amx = ((d >> 22) & 1) && ((d >> 24) & 1);  // AMX-BF16, AMX-TILE
  const bool avx512 = ((b >> 16) & 1) && ((b >> 30) & 1) && ((b >> 17) & 1) && ((b >> 31) & 1);  // F, BW, DQ, VL
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  return amx && avx512 && ((a >> 5) & 1);  // AVX512_BF16
}

// Linux gives a process AMX's 8 KB of tile state only once asked for it (arch_prctl ARCH_REQ_XCOMP_PERM with
// XFEATURE_XTILEDATA); the request fails where the kernel or a hypervisor does not enable the tiles.
bool os_grants_amx() {
  constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
}

// Every tile of every kernel here is 16 rows of 64 bytes: A (16 x 32 bf16), B (16 pairs x 16 x 2 bf16), C (16 x 16
// float32). Tiles 0-3 accumulate; A in 4 and B in 5-7 (1 x NT blocks), or A in 4-5 and B in 6-7 (2 x 2 blocks).
struct TileConfig {
  uint8_t palette, start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

PYDLR_AMX void tiles_on() {
  TileConfig cfg{};
  cfg.palette = 1;
  for (int i = 0; i < 8; ++i) {
    cfg.colsb[i] = 64;
    cfg.rows[i] = 16;
  }
  _tile_loadconfig(&cfg);
}

// Geometry of one image in flat runs (see the file's comment).
struct Flat {
  int64_t N, C, H, W, OC, pad, act;
  bool pooled;              // 2x2 / 2 max pooling after the activation, or the activated convolution itself
  int64_t Hp, Wp, OH, OW, PH, PW;
  int64_t CB, CT, OCT, OB;  // C / 32 and C / 16 tiles, OC / 16 and OC / 32
  int64_t P;                // flat outputs an image: OH * Wp (the last row's 2 ignored ones included)
  int64_t Pt;               // P in whole 16-row tiles
  int64_t Q, Qt;            // flat input pixels Hp * Wp, in whole pairs of 16-row tiles
  int64_t dy_rows;          // rows of the output-gradient run: lead + max(Qt, K)
  int64_t lead;             // zero rows before the output gradient: the farthest tap, 2 * Wp + 2
  int64_t xrows;            // rows of the bf16 input run: Pt + lead (the last tile's farthest tap)
  int64_t K;                // flat outputs in whole 32-position steps of the weight gradient
  int64_t xt_len;           // length of a row of the transposed input: K + lead
};

Flat flat_geometry(const ConvGeom& g, int act, bool pooled) {
  Flat f{};
  f.N = g.N, f.C = g.C, f.H = g.H, f.W = g.W, f.OC = g.OC, f.pad = g.ph, f.act = act, f.pooled = pooled;
  f.Hp = g.H + 2 * g.ph, f.Wp = g.W + 2 * g.pw, f.OH = g.OH, f.OW = g.OW;
  f.PH = pooled ? g.OH / 2 : g.OH, f.PW = pooled ? g.OW / 2 : g.OW;  // the operator's output plane
  f.CB = g.C / 32, f.CT = g.C / 16, f.OCT = g.OC / 16, f.OB = g.OC / 32;
  f.P = f.OH * f.Wp;
  f.Pt = (f.P + 15) / 16 * 16;
  f.Q = f.Hp * f.Wp;
  f.Qt = (f.Q + 31) / 32 * 32;
  f.lead = 2 * f.Wp + 2;
  f.xrows = std::max(f.Pt + f.lead, f.Q);
  f.K = (f.P + 31) / 32 * 32;
  f.xt_len = f.K + f.lead;
  f.dy_rows = f.lead + std::max(f.Qt, f.K);
  return f;
}

// 32 float32 -> 32 bf16, rounded to nearest even (NaN stays NaN).
PYDLR_AMX inline void to_bf16_32(const float* s, bf16* d) {
  const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + 16), _mm512_loadu_ps(s));
  _mm512_storeu_si512(d, (__m512i)v);
}

// One float32 -> bf16, rounded to nearest even as to_bf16_32 (and torch's casts): NaN stays a quiet NaN.
inline bf16 to_bf16(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16>((u >> 16) | 0x40u);
  return static_cast<bf16>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Image n's input, padded and cast, as the run xb [xrows][C] (zeros in the padding and after the last pixel).
PYDLR_AMX void input_run(const Flat& f, const float* x, int64_t n, bf16* xb) {
  if (f.pad > 0) std::memset(xb, 0, f.xrows * f.C * sizeof(bf16));
  else std::memset(xb + f.Q * f.C, 0, (f.xrows - f.Q) * f.C * sizeof(bf16));
  const float* xn = x + n * f.H * f.W * f.C;
  for (int64_t ih = 0; ih < f.H; ++ih) {
    bf16* row = xb + ((ih + f.pad) * f.Wp + f.pad) * f.C;
    const float* src = xn + ih * f.W * f.C;
    for (int64_t i = 0; i < f.W * f.C; i += 32) to_bf16_32(src + i, row + i);
  }
}

// 16 x 16 32-bit elements transposed in registers: r[k] becomes column k.
PYDLR_AMX inline void transpose16_epi32(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int b = 0; b < 16; b += 4) {
    r[b] = _mm512_unpacklo_epi64(t[b], t[b + 2]);
    r[b + 1] = _mm512_unpackhi_epi64(t[b], t[b + 2]);
    r[b + 2] = _mm512_unpacklo_epi64(t[b + 1], t[b + 3]);
    r[b + 3] = _mm512_unpackhi_epi64(t[b + 1], t[b + 3]);
  }
  for (int b = 0; b < 16; b += 8) {
    for (int j = 0; j < 4; ++j) {
      t[b + j] = _mm512_shuffle_i32x4(r[b + j], r[b + j + 4], 0x88);
      t[b + j + 4] = _mm512_shuffle_i32x4(r[b + j], r[b + j + 4], 0xdd);
    }
  }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0xdd);
  }
}

// Image n's input transposed, xt [C][xt_len]: xt[c][q] = the run's pixel q, channel c (zeros past the image). Up to
// 16 pixels of a row at a time: each pixel's 32 channels cast to one vector of bf16 pairs, the 16 x 16 pairs
// transposed, each pair row split into its two channels' rows.
PYDLR_AMX void input_transposed(const Flat& f, const float* x, int64_t n, bf16* xt) {
  std::memset(xt, 0, f.C * f.xt_len * sizeof(bf16));
  const float* xn = x + n * f.H * f.W * f.C;
  const __m512i split = _mm512_set_epi16(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1, 30, 28, 26, 24,
                                         22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  for (int64_t ih = 0; ih < f.H; ++ih) {
    for (int64_t iw0 = 0; iw0 < f.W; iw0 += 16) {
      const int64_t count = std::min<int64_t>(16, f.W - iw0);
      const __mmask16 keep = static_cast<__mmask16>((1u << count) - 1u);
      const float* px = xn + (ih * f.W + iw0) * f.C;
      bf16* dst = xt + (ih + f.pad) * f.Wp + f.pad + iw0;
      for (int64_t cb = 0; cb < f.C; cb += 32) {
        __m512i r[16];
        for (int64_t i = 0; i < 16; ++i) {
          r[i] = i < count ? (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(px + i * f.C + cb + 16),
                                                          _mm512_loadu_ps(px + i * f.C + cb))
                           : _mm512_setzero_si512();
        }
        transpose16_epi32(r);  // r[k]: channels cb + 2k, cb + 2k + 1 of the 16 pixels, interleaved
        for (int64_t k = 0; k < 16; ++k) {
          const __m512i v = _mm512_permutexvar_epi16(split, r[k]);
          _mm256_mask_storeu_epi16(dst + (cb + 2 * k) * f.xt_len, keep, _mm512_castsi512_si256(v));
          _mm256_mask_storeu_epi16(dst + (cb + 2 * k + 1) * f.xt_len, keep, _mm512_extracti64x4_epi64(v, 1));
        }
      }
    }
  }
}

// W's B tiles for every tap, [tap][K / 32][N / 16] tiles of 16 K-pairs x 16 columns x 2: the forward sums over
// input channels (K = C, N = OC: W[n][2r + e]), the input gradient over outputs (transposed: K = OC, N = C).
std::vector<bf16> weight_tiles(const Flat& f, const at::Tensor& w, bool transposed) {
  const at::Tensor wc = w.contiguous();
  const float* wp = wc.const_data_ptr<float>();
  const int64_t KB = (transposed ? f.OC : f.C) / 32, NT = (transposed ? f.C : f.OC) / 16, per_tap = KB * NT * 512;
  std::vector<bf16> out(9 * per_tap);
  for (int64_t o = 0; o < f.OC; ++o) {
    for (int64_t c = 0; c < f.C; ++c) {
      const int64_t k = transposed ? o : c, n = transposed ? c : o;
      const int64_t at = ((k / 32 * NT + n / 16) * 16 + (k % 32) / 2) * 32 + (n % 16) * 2 + k % 2;
      const float* src = wp + (o * f.C + c) * 9;
      for (int64_t t = 0; t < 9; ++t) out[t * per_tap + at] = to_bf16(src[t]);
    }
  }
  return out;
}

// The tiles' register numbers are part of the instructions: NT (1-4) accumulators 0..NT-1, A in 4, B in 5-7.
template <int NT>
PYDLR_AMX inline void dp_row(const bf16* a, int64_t a_stride, const bf16* b, int64_t b_step, int64_t b_stride) {
  _tile_loadd(4, a, a_stride);
  _tile_loadd(5, b, b_stride);
  _tile_dpbf16ps(0, 4, 5);
  if constexpr (NT > 1) {
    _tile_loadd(6, b + b_step, b_stride);
    _tile_dpbf16ps(1, 4, 6);
  }
  if constexpr (NT > 2) {
    _tile_loadd(7, b + 2 * b_step, b_stride);
    _tile_dpbf16ps(2, 4, 7);
  }
  if constexpr (NT > 3) {
    _tile_loadd(5, b + 3 * b_step, b_stride);
    _tile_dpbf16ps(3, 4, 5);
  }
}

template <int NT>
PYDLR_AMX inline void load_acc(const float* c, int64_t step, int64_t stride) {
  _tile_loadd(0, c, stride);
  if constexpr (NT > 1) _tile_loadd(1, c + step, stride);
  if constexpr (NT > 2) _tile_loadd(2, c + 2 * step, stride);
  if constexpr (NT > 3) _tile_loadd(3, c + 3 * step, stride);
}

template <int NT>
PYDLR_AMX inline void store_acc(float* c, int64_t step, int64_t stride) {
  _tile_stored(0, c, stride);
  if constexpr (NT > 1) _tile_stored(1, c + step, stride);
  if constexpr (NT > 2) _tile_stored(2, c + 2 * step, stride);
  if constexpr (NT > 3) _tile_stored(3, c + 3 * step, stride);
}

// One step of a 2 x 2 block: A tiles at a and a + a_next (two runs of 16 rows), B tiles at b and b + 512 (two
// column tiles), into accumulators 0 (a, b), 1 (a, b + 512), 2 (a + a_next, b), 3 (a + a_next, b + 512): each load
// feeds two multiplies and four chains overlap.
PYDLR_AMX inline void dp_2x2(const bf16* a, int64_t a_next, int64_t a_stride, const bf16* b) {
  _tile_loadd(4, a, a_stride);
  _tile_loadd(6, b, 64);
  _tile_dpbf16ps(0, 4, 6);
  _tile_loadd(7, b + 512, 64);
  _tile_dpbf16ps(1, 4, 7);
  _tile_loadd(5, a + a_next, a_stride);
  _tile_dpbf16ps(2, 5, 6);
  _tile_dpbf16ps(3, 5, 7);
}

// A 2 x 2 block's accumulators to c (float32 rows `stride` bytes apart): 16 columns right, 16 rows down.
PYDLR_AMX inline void store_2x2(float* c, int64_t stride) {
  const int64_t down = 16 * stride / static_cast<int64_t>(sizeof(float));
  _tile_stored(0, c, stride);
  _tile_stored(1, c + 16, stride);
  _tile_stored(2, c + down, stride);
  _tile_stored(3, c + down + 16, stride);
}

// Forward of 16 flat outputs [p0, p0 + 16) x output tiles [og, og + NT): y[p][o] = bias[o] + sum over taps.
template <int NT>
PYDLR_AMX void forward_block(const Flat& f, const bf16* xb, const bf16* wf, const float* bias_tiles, float* y,
                             int64_t p0, int64_t og) {
  load_acc<NT>(bias_tiles + og * 256, 256, 64);
  for (int64_t kh = 0; kh < 3; ++kh) {
    for (int64_t kw = 0; kw < 3; ++kw) {
      const int64_t t = kh * 3 + kw;
      for (int64_t cb = 0; cb < f.CB; ++cb) {
        dp_row<NT>(xb + (p0 + kh * f.Wp + kw) * f.C + cb * 32, f.C * 2,
                   wf + ((t * f.CB + cb) * f.OCT + og) * 512, 512, 64);
      }
    }
  }
  store_acc<NT>(y + p0 * f.OC + og * 16, 16, f.OC * 4);
}

// Forward of 32 flat outputs [p0, p0 + 32) x output tiles og, og + 1: two A tiles (positions) and two B tiles
// (outputs) feed four accumulators, one load a multiply (the 1 x 4 block above: 5 loads for 4).
PYDLR_AMX void forward_block_2x2(const Flat& f, const bf16* xb, const bf16* wf, const float* bias_tiles, float* y,
                                 int64_t p0, int64_t og) {
  _tile_loadd(0, bias_tiles + og * 256, 64);
  _tile_loadd(1, bias_tiles + (og + 1) * 256, 64);
  _tile_loadd(2, bias_tiles + og * 256, 64);
  _tile_loadd(3, bias_tiles + (og + 1) * 256, 64);
  for (int64_t kh = 0; kh < 3; ++kh) {
    for (int64_t kw = 0; kw < 3; ++kw) {
      for (int64_t cb = 0; cb < f.CB; ++cb) {
        dp_2x2(xb + (p0 + kh * f.Wp + kw) * f.C + cb * 32, 16 * f.C, f.C * 2,
               wf + (((kh * 3 + kw) * f.CB + cb) * f.OCT + og) * 512);
      }
    }
  }
  store_2x2(y + p0 * f.OC + og * 16, f.OC * 4);
}

// Calls fn(std::integral_constant<int, NT>, first tile) over tiles [0, n) in groups of NT <= 4.
template <typename Fn>
inline void tile_groups(int64_t n, Fn&& fn) {
  for (int64_t t0 = 0; t0 < n; t0 += 4) {
    switch (std::min<int64_t>(4, n - t0)) {
      case 4: fn(std::integral_constant<int, 4>{}, t0); break;
      case 3: fn(std::integral_constant<int, 3>{}, t0); break;
      case 2: fn(std::integral_constant<int, 2>{}, t0); break;
      default: fn(std::integral_constant<int, 1>{}, t0); break;
    }
  }
}

PYDLR_AMX void forward_images(const Flat& f, const float* x, const bf16* wf, const float* bias_tiles, float* out,
                              uint8_t* argmax, int64_t n0, int64_t n1) {
  tiles_on();
  std::vector<bf16> xb(f.xrows * f.C);
  std::vector<float> y(f.Pt * f.OC);
  const PoolGeom pg{1, f.OC, f.OH, f.OW, f.PH, f.PW, 2, 2, 2, 2};
  const Strides4 ys{0, 1, f.Wp * f.OC, f.OC}, os{0, 1, f.PW * f.OC, f.OC};
  for (int64_t n = n0; n < n1; ++n) {
    input_run(f, x, n, xb.data());
    int64_t p0 = 0;
    for (; p0 + 32 <= f.Pt; p0 += 32) {  // OC is a multiple of 32: output tiles in pairs
      for (int64_t og = 0; og < f.OCT; og += 2) forward_block_2x2(f, xb.data(), wf, bias_tiles, y.data(), p0, og);
    }
    if (p0 < f.Pt) {  // a last run of 16
      tile_groups(f.OCT, [&](auto nt, int64_t og) {
        forward_block<decltype(nt)::value>(f, xb.data(), wf, bias_tiles, y.data(), p0, og);
      });
    }
    float* on = out + n * f.PH * f.PW * f.OC;
    uint8_t* an = argmax ? argmax + n * f.PH * f.PW * f.OC : nullptr;
    for (int64_t ph = 0; ph < f.PH; ++ph) {
      float* row = on + ph * f.PW * f.OC;
      if (f.pooled) {
        detail::pool_fwd_row_cl(pg, y.data(), ys, on, an, os, 0, ph);
        act_span(row, row, f.PW * f.OC, static_cast<int>(f.act));
      } else {  // the row's OW outputs (the run's 2 ignored ones after them are dropped)
        act_span(y.data() + ph * f.Wp * f.OC, row, f.OW * f.OC, static_cast<int>(f.act));
      }
    }
  }
  _tile_release();
}

// 16 lanes of the gradient masked by the activation's derivative at the (activated) output y.
PYDLR_AMX inline __m512 masked_grad(const float* g, const float* y, int64_t act) {
  const __m512 gv = _mm512_loadu_ps(g);
  if (act == 0) return gv;
  const __m512 yv = _mm512_loadu_ps(y);
  __mmask16 keep = _mm512_cmp_ps_mask(yv, _mm512_setzero_ps(), _CMP_GT_OQ);
  if (act == 2) keep &= _mm512_cmp_ps_mask(yv, _mm512_set1_ps(6.0f), _CMP_LT_OQ);
  return _mm512_maskz_mov_ps(keep, gv);
}

// Output gradient of image n masked by the activation's derivative (read at the pooled value, or the output) and,
// pooled, sent to its argmax: dyp rows lead + p (zero elsewhere), in pairs of rows (VNNI) in dyv [K / 2][OC][2],
// and summed into db.
PYDLR_AMX void output_grad(const Flat& f, const float* g, const float* y, const uint8_t* a, int64_t n, bf16* dyp,
                           bf16* dyv, float* db) {
  std::memset(dyp, 0, f.dy_rows * f.OC * sizeof(bf16));
  bf16* d = dyp + f.lead * f.OC;
  const int64_t base = n * f.PH * f.PW * f.OC;
  for (int64_t ph = 0; ph < f.PH; ++ph) {
    for (int64_t pw = 0; pw < f.PW; ++pw) {
      const int64_t i = base + (ph * f.PW + pw) * f.OC;
      for (int64_t o = 0; o < f.OC; o += 16) {
        const __m512 gv = masked_grad(g + i + o, y ? y + i + o : nullptr, f.act);
        _mm512_storeu_ps(db + o, _mm512_add_ps(_mm512_loadu_ps(db + o), gv));
        const __m256i gb = (__m256i)_mm512_cvtneps_pbh(gv);
        if (!f.pooled) {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + (ph * f.Wp + pw) * f.OC + o), gb);
          continue;
        }
        const int64_t p = 2 * ph * f.Wp + 2 * pw;
        const __m128i at = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + o));
        const int64_t rows[4] = {p, p + 1, p + f.Wp, p + f.Wp + 1};
        for (int tap = 0; tap < 4; ++tap) {
          const __mmask16 here = _mm_cmpeq_epi8_mask(at, _mm_set1_epi8(static_cast<char>(tap)));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + rows[tap] * f.OC + o), _mm256_maskz_mov_epi16(here, gb));
        }
      }
    }
  }
  // Pairs of rows (2k, 2k + 1) interleaved element by element: 32 outputs of each row a step.
  const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6, 37,
                                      5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const __m512i hi = _mm512_set_epi16(63, 31, 62, 30, 61, 29, 60, 28, 59, 27, 58, 26, 57, 25, 56, 24, 55, 23, 54, 22,
                                      53, 21, 52, 20, 51, 19, 50, 18, 49, 17, 48, 16);
  for (int64_t k = 0; k < f.K; k += 2) {
    for (int64_t o = 0; o < f.OC; o += 32) {
      const __m512i r0 = _mm512_loadu_si512(d + k * f.OC + o), r1 = _mm512_loadu_si512(d + (k + 1) * f.OC + o);
      bf16* out = dyv + (k / 2 * f.OC + o) * 2;
      _mm512_storeu_si512(out, _mm512_permutex2var_epi16(r0, lo, r1));
      _mm512_storeu_si512(out + 32, _mm512_permutex2var_epi16(r0, hi, r1));
    }
  }
}

// Input gradient of 32 flat input pixels [q0, q0 + 32) x channel tiles ct, ct + 1: two A tiles (pixels) and two B
// tiles (channels) feed four accumulators, so every load serves two multiplies and four chains overlap.
PYDLR_AMX void input_grad_block(const Flat& f, const bf16* dyp, const bf16* wt, float* dx, int64_t q0, int64_t ct) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t kh = 0; kh < 3; ++kh) {
    for (int64_t kw = 0; kw < 3; ++kw) {
      for (int64_t ob = 0; ob < f.OB; ++ob) {
        dp_2x2(dyp + (f.lead + q0 - kh * f.Wp - kw) * f.OC + ob * 32, 16 * f.OC, f.OC * 2,
               wt + (((kh * 3 + kw) * f.OB + ob) * f.CT + ct) * 512);
      }
    }
  }
  store_2x2(dx + q0 * f.C + ct * 16, f.C * 4);
}

// Weight gradient of channel tile ct x output tiles [og, og + NT) for tap t over `count` images (their transposed
// inputs xt and paired gradients dyv one after the other), added into dw [9][C][OC]: the accumulators stay in the
// tiles over all the images (long chains; loading and storing them per image cost more than the multiplies).
template <int NT>
PYDLR_AMX void weight_grad_block(const Flat& f, const bf16* xt, const bf16* dyv, int64_t count, float* dw, int64_t t,
                                 int64_t ct, int64_t og) {
  const int64_t off = (t / 3) * f.Wp + t % 3;
  float* c = dw + (t * f.C + ct * 16) * f.OC + og * 16;
  load_acc<NT>(c, 16, f.OC * 4);
  for (int64_t i = 0; i < count; ++i) {
    const bf16* xi = xt + i * f.C * f.xt_len + ct * 16 * f.xt_len + off;
    const bf16* di = dyv + i * f.K * f.OC + og * 32;
    for (int64_t k0 = 0; k0 < f.K; k0 += 32) {
      dp_row<NT>(xi + k0, f.xt_len * 2, di + k0 / 2 * f.OC * 2, 32, f.OC * 4);
    }
  }
  store_acc<NT>(c, 16, f.OC * 4);
}

// A thread's scratch, kept between calls (the weight gradient's buffers, up to ~2 MB: allocating them anew each
// step page-faults).
template <typename T>
T* scratch(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(n);
  return v.data();
}

struct BackwardArgs {
  const float *x, *g, *y;
  const uint8_t* a;
  const bf16* wt;  // null: no input gradient
  float* gi;
  bool want_grads;
};

// Images per weight-gradient pass: their transposed inputs and paired gradients within ~2 MB (a core's share of
// L2 here), at least one; bounds what the thread keeps between calls.
int64_t images_per_pass(const Flat& f) {
  const int64_t bytes = (f.K * f.OC + f.C * f.xt_len) * static_cast<int64_t>(sizeof(bf16));
  return std::max<int64_t>(1, (int64_t{2} << 20) / bytes);
}

PYDLR_AMX void backward_images(const Flat& f, const BackwardArgs& b, float* dw, float* db, int64_t n0, int64_t n1) {
  thread_local std::vector<bf16> dyp_buf, dyv_buf, xt_buf;
  thread_local std::vector<float> dx_buf;
  const int64_t pass = std::min(n1 - n0, images_per_pass(f));
  bf16* dyp = scratch(dyp_buf, f.dy_rows * f.OC);
  bf16* dyv = scratch(dyv_buf, pass * f.K * f.OC);
  bf16* xt = b.want_grads ? scratch(xt_buf, pass * f.C * f.xt_len) : nullptr;
  float* dx = b.wt ? scratch(dx_buf, f.Qt * f.C) : nullptr;
  std::vector<float> db_local(f.OC, 0.0f);
  tiles_on();
  for (int64_t p0 = n0; p0 < n1; p0 += pass) {
    const int64_t count = std::min(pass, n1 - p0);
    for (int64_t n = p0; n < p0 + count; ++n) {
      output_grad(f, b.g, b.y, b.a, n, dyp, dyv + (n - p0) * f.K * f.OC, db_local.data());
      if (b.wt) {
        for (int64_t q0 = 0; q0 < f.Qt; q0 += 32) {
          for (int64_t ct = 0; ct < f.CT; ct += 2) input_grad_block(f, dyp, b.wt, dx, q0, ct);
        }
        float* gin = b.gi + n * f.H * f.W * f.C;
        for (int64_t ih = 0; ih < f.H; ++ih) {
          std::memcpy(gin + ih * f.W * f.C, dx + ((ih + f.pad) * f.Wp + f.pad) * f.C, f.W * f.C * sizeof(float));
        }
      }
      if (b.want_grads) input_transposed(f, b.x, n, xt + (n - p0) * f.C * f.xt_len);
    }
    if (b.want_grads) {
      for (int64_t t = 0; t < 9; ++t) {
        for (int64_t ct = 0; ct < f.CT; ++ct) {
          tile_groups(f.OCT, [&](auto nt, int64_t og) {
            weight_grad_block<decltype(nt)::value>(f, xt, dyv, count, dw, t, ct, og);
          });
        }
      }
    }
  }
  if (db) {
    for (int64_t o = 0; o < f.OC; ++o) db[o] += db_local[o];
  }
  _tile_release();
}

bool conv_shape_ok(const ConvGeom& g) {
  return g.KH == 3 && g.KW == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.G == 1 && g.ph == g.pw &&
         g.C % 32 == 0 && g.OC % 32 == 0 && g.C <= 256 && g.OC <= 256 && g.OH > 0 && g.OW > 0;
}

bool tensors_ok(const at::Tensor& input, const at::Tensor& weight) {
  return input.device().is_cpu() && input.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat;
}

}  // namespace

bool amx_bf16_usable() {
  static const bool ok = cpu_has_amx_bf16() && os_grants_amx();
  return ok;
}

namespace detail {

bool conv_pool_amx_ok(const ConvGeom& g, const PoolGeom& p, const at::Tensor& input, const at::Tensor& weight) {
  return tensors_ok(input, weight) && conv_shape_ok(g) && p.kh == 2 && p.kw == 2 && p.sh == 2 && p.sw == 2 &&
         p.OH > 0 && p.OW > 0 && amx_bf16_usable();
}

bool conv_amx_ok(const ConvGeom& g, const at::Tensor& input, const at::Tensor& weight) {
  return tensors_ok(input, weight) && conv_shape_ok(g) && amx_bf16_usable();
}

std::tuple<at::Tensor, at::Tensor> conv_pool_amx_forward(const ConvGeom& g, int act, const at::Tensor& input,
                                                         const at::Tensor& weight, const at::Tensor& bias,
                                                         bool with_argmax, bool pooled) {
  const Flat f = flat_geometry(g, act, pooled);
  const auto cl = at::MemoryFormat::ChannelsLast;
  const at::Tensor x = input.contiguous(cl);
  at::Tensor y = at::empty({g.N, g.OC, f.PH, f.PW}, input.options().memory_format(cl));
  at::Tensor a = with_argmax ? at::empty(y.sizes(), input.options().dtype(at::kByte).memory_format(cl)) : at::Tensor();
  const std::vector<bf16> wf = weight_tiles(f, weight, false);
  std::vector<float> bias_tiles(f.OCT * 256, 0.0f);  // each output tile's 16 biases on all 16 rows
  if (bias.defined()) {
    const at::Tensor bc = bias.contiguous();
    const float* bp = bc.const_data_ptr<float>();
    for (int64_t o = 0; o < g.OC; ++o)
      for (int64_t r = 0; r < 16; ++r) bias_tiles[(o / 16) * 256 + r * 16 + o % 16] = bp[o];
  }
  const float* xp = x.const_data_ptr<float>();
  float* yp = y.mutable_data_ptr<float>();
  uint8_t* ap = a.defined() ? a.mutable_data_ptr<uint8_t>() : nullptr;
  at::parallel_for(0, g.N, 1, [&](int64_t n0, int64_t n1) {
    forward_images(f, xp, wf.data(), bias_tiles.data(), yp, ap, n0, n1);
  });
  return {y, a};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_pool_amx_backward(const ConvGeom& g, int act,
                                                                      const at::Tensor& grad, const at::Tensor& argmax,
                                                                      const at::Tensor& output,
                                                                      const at::Tensor& input,
                                                                      const at::Tensor& weight,
                                                                      std::array<bool, 3> mask, bool pooled) {
  const Flat f = flat_geometry(g, act, pooled);
  const auto cl = at::MemoryFormat::ChannelsLast;
  // output: the activation's derivative (undefined for none); argmax: pooled only
  const at::Tensor x = input.contiguous(cl), gm = grad.contiguous(cl),
                   yv = output.defined() ? output.contiguous(cl) : at::Tensor(),
                   am = argmax.defined() ? argmax.contiguous(cl) : at::Tensor();
  at::Tensor gi = mask[0] ? at::empty(input.sizes(), input.options().memory_format(cl)) : at::Tensor();
  const std::vector<bf16> wt = mask[0] ? weight_tiles(f, weight, true) : std::vector<bf16>();
  BackwardArgs b{x.const_data_ptr<float>(), gm.const_data_ptr<float>(),
                 yv.defined() ? yv.const_data_ptr<float>() : nullptr,
                 am.defined() ? am.const_data_ptr<uint8_t>() : nullptr, mask[0] ? wt.data() : nullptr,
                 mask[0] ? gi.mutable_data_ptr<float>() : nullptr, mask[1] || mask[2]};
  at::Tensor gw, gb;
  if (b.want_grads) {
    std::tie(gw, gb) = detail::dense_grads_summed(g, input.options(), g.N, [&](int64_t n0, int64_t n1, float* dw, float* db) {
      backward_images(f, b, dw, db, n0, n1);
    });
    if (!mask[1]) gw = at::Tensor();
    if (!mask[2]) gb = at::Tensor();
  } else {
    at::parallel_for(0, g.N, 1, [&](int64_t n0, int64_t n1) { backward_images(f, b, nullptr, nullptr, n0, n1); });
  }
  if (gi.defined() && input.suggest_memory_format() != cl) gi = gi.contiguous();
  return {gi, gw, gb};
}

}  // namespace detail

namespace {
constexpr const char* kConvBf16 = "pydlr::conv2d_act_bf16";

ConvGeom check_conv_bf16(const char* op, const at::Tensor& input, const at::Tensor& weight,
                         const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                         at::IntArrayRef dilation, int64_t groups) {
  const ConvGeom g = check_conv_args(op, input, weight, bias, stride, padding, dilation, groups);
  TORCH_CHECK(detail::conv_amx_ok(g, input, weight), op,
              ": these arguments have no bfloat16 kernel (it needs AMX-BF16, CPU float32 tensors, a 3x3 stride-1 "
              "convolution with the same padding on both axes and input and output channels multiples of 32 up to "
              "256); check conv2d_act_bf16_fusable first");
  return g;
}
}  // namespace

bool conv2d_act_bf16_fusable(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef stride,
                             at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  const ConvGeom g = check_conv_args(kConvBf16, input, weight, std::nullopt, stride, padding, dilation, groups);
  return detail::conv_amx_ok(g, input, weight);
}

at::Tensor conv2d_act_bf16_cpu(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                               at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                               int64_t groups, c10::string_view activation) {
  const ConvGeom g = check_conv_bf16(kConvBf16, input, weight, bias, stride, padding, dilation, groups);
  const int act = static_cast<int>(parse_act(activation));
  const at::Tensor b = bias.has_value() && bias->defined() ? *bias : at::Tensor();
  return std::get<0>(detail::conv_pool_amx_forward(g, act, input, weight, b, false, false));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward_bf16_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
    const std::optional<at::Tensor>& output, at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    int64_t groups, c10::string_view activation, std::array<bool, 3> output_mask) {
  const char* op = "pydlr::conv2d_backward_bf16";
  const ConvGeom g = check_conv_bf16(op, input, weight, std::nullopt, stride, padding, dilation, groups);
  const int act = static_cast<int>(parse_act(activation));
  const bool has_out = output.has_value() && output->defined();
  TORCH_CHECK(act == 0 || has_out, op, ": the activation's derivative needs the output");
  for (const at::Tensor* t : {&grad_output, has_out ? &*output : &grad_output}) {
    TORCH_CHECK(t->dim() == 4 && t->size(0) == g.N && t->size(1) == g.OC && t->size(2) == g.OH && t->size(3) == g.OW &&
                    t->scalar_type() == at::kFloat && t->device() == input.device(),
                op, ": grad_output and output must be float32 [", g.N, ", ", g.OC, ", ", g.OH, ", ", g.OW, "] on ",
                input.device());
  }
  return detail::conv_pool_amx_backward(g, act, grad_output, at::Tensor(), act != 0 ? *output : at::Tensor(), input,
                                        weight, output_mask, false);
}

}  // namespace pydlr
