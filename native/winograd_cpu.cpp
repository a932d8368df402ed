// Winograd F(4x4, 3x3) and F(3x3, 3x3) for float32 3x3 stride-1 convolutions (Lavin & Gray 2016): the forward and
// the weight and bias gradients (conv_cpu.cpp also runs the forward for the input gradient, a convolution itself).
//
// F(4x4, 3x3): each 4x4 block of outputs comes from a 6x6 input patch: Y = A^T [ (G g G^T) . (B^T d B) ] A. The elementwise
// product over 36 positions, summed over input channels, is 36 independent GEMMs [tiles x C] x [C x OC]: 2.25 x 4
// = 4x fewer multiplies than the direct convolution, the input and output transforms being additions and small
// constant multiplies, vectorised over 16 channels (channels-last makes them contiguous). The weight gradient is
// the adjoint: dU = sum over tiles of (A dY A^T) . (B^T d B), 36 GEMMs [C x tiles] x [tiles x OC], then
// dW = G^T dU G. Threads take blocks of tiles; a block's transformed data stays in L2 between the stages, and the
// GEMMs are register-tiled loops here rather than MKL calls (see outer_accumulate). F(3x3, 3x3) (5x5 patches, 25
// GEMMs, 3.2x fewer multiplies) is the same with other matrices; it wastes less where the output plane is not a
// multiple of 4 (the seed's 64->64 at 5x5: one 3x3 tile an image).
#include "conv.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <c10/core/InferenceMode.h>
#include <c10/util/intrusive_ptr.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

namespace pydlr {
namespace {

// Tiles a block: its transformed input and products or gradients (36 x (C + OC) floats a tile, 221 KB for the seed's
// 32->64) stay in L2 between the stages. Seed 32->64 forward at 32 / 64 / 144 tiles: 0.88 / 0.72 / 0.84 ms.
constexpr int64_t kTilesPerBlock = 64;
// Fewer tiles than this (small batches) take other paths: the weight transform and thread start-up weigh more,
// and nothing below was measured. At 64-72 tiles (the seed's 64->64 at batch 64, its 32->64 at batch 8) Winograd
// measured 1.2-1.7x torch's forward and forward + backward.
constexpr int64_t kMinTiles = 64;
// More input channels than this: the error of F(4x4, 3x3) grows with the reduction (max error relative to the
// output's magnitude, random data: 5-9e-6 at C = 32 and 64, 1.0e-5 at 128, 1.2-1.6e-5 at 256; the
// accuracy bar is 1e-5), and at 256 the transformed weight no longer stays in L2 (0.6-0.7x oneDNN's forward).
constexpr int64_t kMaxChannels = 64;

// F(4x4, 3x3) on the points 0, 1, -1, 2, -2: 1-D transforms B^T (6 -> 6), A^T (6 -> 4), A (4 -> 6), and G (6x3).
struct F43 {
  static constexpr int M = 4, T = 6;
  static constexpr double G[6][3] = {{0.25, 0.0, 0.0},        {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0.0, 0.0, 1.0}};
  static PYDLR_INLINE void bt(const vf16* d, vf16* v) {
    v[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    v[1] = -4.0f * d[1] - 4.0f * d[2] + d[3] + d[4];
    v[2] = 4.0f * d[1] - 4.0f * d[2] - d[3] + d[4];
    v[3] = -2.0f * d[1] - d[2] + 2.0f * d[3] + d[4];
    v[4] = 2.0f * d[1] - d[2] - 2.0f * d[3] + d[4];
    v[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
  }
  static PYDLR_INLINE void at(const vf16* m, vf16* y) {
    y[0] = m[0] + m[1] + m[2] + m[3] + m[4];
    y[1] = m[1] - m[2] + 2.0f * (m[3] - m[4]);
    y[2] = m[1] + m[2] + 4.0f * (m[3] + m[4]);
    y[3] = m[1] - m[2] + 8.0f * (m[3] - m[4]) + m[5];
  }
  static PYDLR_INLINE void a(const vf16* y, vf16* z) {
    z[0] = y[0];
    z[1] = y[0] + y[1] + y[2] + y[3];
    z[2] = y[0] - y[1] + y[2] - y[3];
    z[3] = y[0] + 2.0f * y[1] + 4.0f * y[2] + 8.0f * y[3];
    z[4] = y[0] - 2.0f * y[1] + 4.0f * y[2] - 8.0f * y[3];
    z[5] = y[3];
  }
};

// F(3x3, 3x3) on the points 0, 1, -1, 2 (Toom-Cook; the matrices checked against a direct correlation).
struct F33 {
  static constexpr int M = 3, T = 5;
  static constexpr double G[5][3] = {
      {0.5, 0.0, 0.0}, {-0.5, -0.5, -0.5}, {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 6, 1.0 / 3, 2.0 / 3}, {0.0, 0.0, 1.0}};
  static PYDLR_INLINE void bt(const vf16* d, vf16* v) {
    v[0] = 2.0f * d[0] - d[1] - 2.0f * d[2] + d[3];
    v[1] = -2.0f * d[1] - d[2] + d[3];
    v[2] = 2.0f * d[1] - 3.0f * d[2] + d[3];
    v[3] = d[3] - d[1];
    v[4] = 2.0f * d[1] - d[2] - 2.0f * d[3] + d[4];
  }
  static PYDLR_INLINE void at(const vf16* m, vf16* y) {
    y[0] = m[0] + m[1] + m[2] + m[3];
    y[1] = m[1] - m[2] + 2.0f * m[3];
    y[2] = m[1] + m[2] + 4.0f * m[3] + m[4];
  }
  static PYDLR_INLINE void a(const vf16* y, vf16* z) {
    z[0] = y[0];
    z[1] = y[0] + y[1] + y[2];
    z[2] = y[0] - y[1] + y[2];
    z[3] = y[0] + 2.0f * y[1] + 4.0f * y[2];
    z[4] = y[2];
  }
};

// out = F in F^T for a 1-D transform f from N to K points (16 channels a lane): f on every column, then every row.
template <int N, int K, typename Fn>
PYDLR_INLINE void apply_2d(const vf16 (*in)[N], vf16 (*out)[K], Fn f) {
  vf16 t[K][N];
  for (int c = 0; c < N; ++c) {
    vf16 col[N], res[K];
    for (int r = 0; r < N; ++r) col[r] = in[r][c];
    f(col, res);
    for (int r = 0; r < K; ++r) t[r][c] = res[r];
  }
  for (int r = 0; r < K; ++r) f(t[r], out[r]);
}

// m[nt, OC] = u[nt, C] x w[C, OC]: R rows of m x NV vectors of 16 in registers over the reduction (the forward's
// 36 GEMMs; the same reason as outer_accumulate for not calling MKL).
template <int R, int NV>
PYDLR_INLINE void gemm_rows(int64_t C, int64_t OC, const float* u, const float* w, float* m, int64_t t0, int64_t o0) {
  vf16 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = vf16{};
  for (int64_t c = 0; c < C; ++c) {
    vf16 wv[NV];
    for (int v = 0; v < NV; ++v) wv[v] = vload(w + c * OC + o0 + 16 * v);
    for (int r = 0; r < R; ++r) {
      const float ur = u[(t0 + r) * C + c];
      for (int v = 0; v < NV; ++v) acc[r][v] += wv[v] * ur;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) vstore(m + (t0 + r) * OC + o0 + 16 * v, acc[r][v]);
}

template <int R, int NV>
PYDLR_INLINE void gemm_cols(int64_t nt, int64_t C, int64_t OC, const float* u, const float* w, float* m, int64_t o0) {
  int64_t t0 = 0;
  for (; t0 + R <= nt; t0 += R) gemm_rows<R, NV>(C, OC, u, w, m, t0, o0);
  for (; t0 < nt; ++t0) gemm_rows<1, NV>(C, OC, u, w, m, t0, o0);
}

// Calls f(o0, NV) for OC output columns (a multiple of 16, winograd_ok) in chunks of NV = 4 vectors of 16, then
// one chunk of the 1-3 vectors left; NV is a std::integral_constant, so each chunk width compiles to its own
// register tile.
template <typename F>
PYDLR_INLINE void column_chunks(int64_t OC, F&& f) {
  int64_t o0 = 0;
  for (; o0 + 64 <= OC; o0 += 64) f(o0, std::integral_constant<int, 4>{});
  switch ((OC - o0) / 16) {
    case 3: f(o0, std::integral_constant<int, 3>{}); break;
    case 2: f(o0, std::integral_constant<int, 2>{}); break;
    case 1: f(o0, std::integral_constant<int, 1>{}); break;
    default: break;
  }
}

// m = u w for all columns; rows a pass so that 12-24 accumulators are live.
PYDLR_INLINE void small_gemm(int64_t nt, int64_t C, int64_t OC, const float* u, const float* w, float* m) {
  column_chunks(OC, [&](int64_t o0, auto nv) __attribute__((always_inline)) {
    constexpr int NV = decltype(nv)::value, R = NV == 1 ? 12 : NV == 2 ? 8 : 6;
    gemm_cols<R, NV>(nt, C, OC, u, w, m, o0);
  });
}

// Tiles: p = (n * TH + th) * TW + tw covers outputs [th*M, th*M+M) x [tw*M, tw*M+M) of image n.
struct Tiling {
  int64_t M, TH, TW, P;
  Tiling(const ConvGeom& g, int64_t m) : M(m), TH((g.OH + m - 1) / m), TW((g.OW + m - 1) / m), P(g.N * TH * TW) {}
};

// Input transform of tiles [p0, p1) into u [T*T][p1 - p0][C] (zero padding outside the input).
template <typename W>
PYDLR_INLINE void transform_inputs(const ConvGeom& g, const Tiling& t, const float* x, int64_t p0, int64_t p1,
                                   float* u) {
  constexpr int T = W::T;
  const int64_t C = g.C, nt = p1 - p0, TT = t.TH * t.TW;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n = p / TT, th = (p % TT) / t.TW, tw = p % t.TW;
    const int64_t ih0 = th * W::M - g.ph, iw0 = tw * W::M - g.pw;
    for (int64_t cb = 0; cb < C; cb += 16) {
      vf16 d[T][T], v[T][T];
      for (int r = 0; r < T; ++r) {
        const int64_t ih = ih0 + r;
        for (int c = 0; c < T; ++c) {
          const int64_t iw = iw0 + c;
          d[r][c] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? vload(x + ((n * g.H + ih) * g.W + iw) * C + cb)
                                                               : vf16{};
        }
      }
      apply_2d<T, T>(d, v, W::bt);
      for (int k = 0; k < T * T; ++k) vstore(u + (k * nt + (p - p0)) * C + cb, v[k / T][k % T]);
    }
  }
}

// Where the forward's output transform writes: with `pool`, not the output itself but its 2x2 stride-2 max pooling
// (PH x PW, NHWC) and the one-byte window position of each maximum (a; null for inference). A 4x4 tile holds whole
// windows, so the full-resolution output is never stored: it is the largest tensor of a conv + pool pair.
struct PoolOut {
  bool pool;
  uint8_t* a;
  int64_t PH, PW;
};

// Max pooling of the 2x2 window at (r0, c0) of an activated 4x4 tile, with max_pool2d's rule (pool_cpu.cpp): taps in
// row-major order, a later one taken if greater or NaN. Per-lane loops of single-compare selects, as
// pool_fwd_row_cl_v (GCC scalarises compares of its float vector types in the AVX-512 clone).
PYDLR_INLINE void pool_window_2x2(const vf16 (*yy)[4], int r0, int c0, float* y, uint8_t* a) {
  alignas(64) float v[4][16];
  vstore(v[0], yy[r0][c0]);
  vstore(v[1], yy[r0][c0 + 1]);
  vstore(v[2], yy[r0 + 1][c0]);
  vstore(v[3], yy[r0 + 1][c0 + 1]);
  alignas(64) float mx[16];
  alignas(64) int am[16];
  for (int k = 0; k < 16; ++k) {
    mx[k] = v[0][k];
    am[k] = 0;
  }
  for (int tap = 1; tap < 4; ++tap) {
    for (int k = 0; k < 16; ++k) {
      const float x = v[tap][k];
      const float bigger = x > mx[k] ? x : mx[k];
      const int at = x > mx[k] ? tap : am[k];
      mx[k] = x != x ? x : bigger;
      am[k] = x != x ? tap : at;
    }
  }
  std::memcpy(y, mx, sizeof mx);
  if (a) {
    typedef uint8_t vu8x16 __attribute__((vector_size(16)));
    vi16 av;
    std::memcpy(&av, am, sizeof am);
    const vu8x16 bytes = __builtin_convertvector(av, vu8x16);
    std::memcpy(a, &bytes, sizeof bytes);
  }
}

// One forward block of tiles [p0, p1): input transform into u [T*T][tiles][C], T*T GEMMs into m [T*T][tiles][OC]
// with the transformed weight wt [T*T][C][OC], output transform with bias and activation into y (NHWC), or into its
// pooling (po.pool: F(4x4, 3x3) only).
template <typename W>
PYDLR_CLONES void forward_block(const ConvGeom& g, const Tiling& t, const float* x, const float* wt, const float* b,
                                float* y, int act, int64_t p0, int64_t p1, float* u, float* m, PoolOut po) {
  constexpr int T = W::T, M = W::M;
  const int64_t C = g.C, OC = g.OC, nt = p1 - p0, TT = t.TH * t.TW;
  transform_inputs<W>(g, t, x, p0, p1, u);
  for (int k = 0; k < T * T; ++k) small_gemm(nt, C, OC, u + k * nt * C, wt + k * C * OC, m + k * nt * OC);
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n = p / TT, th = (p % TT) / t.TW, tw = p % t.TW;
    for (int64_t ob = 0; ob < OC; ob += 16) {
      vf16 mm[T][T], yy[M][M];
      for (int k = 0; k < T * T; ++k) mm[k / T][k % T] = vload(m + (k * nt + (p - p0)) * OC + ob);
      apply_2d<T, M>(mm, yy, W::at);
      const vf16 bv = b ? vload(b + ob) : vf16{};
      if constexpr (M == 4) {
        if (po.pool) {
          for (int r = 0; r < M; ++r)
            for (int c = 0; c < M; ++c) yy[r][c] = act_v(yy[r][c] + bv, act);
          for (int pr = 0; pr < 2; ++pr) {
            const int64_t ph = th * 2 + pr;
            if (ph >= po.PH) break;
            for (int pc = 0; pc < 2; ++pc) {
              const int64_t pw = tw * 2 + pc;
              if (pw >= po.PW) break;
              const int64_t off = ((n * po.PH + ph) * po.PW + pw) * OC + ob;
              pool_window_2x2(yy, 2 * pr, 2 * pc, y + off, po.a ? po.a + off : nullptr);
            }
          }
          continue;
        }
      }
      for (int r = 0; r < M; ++r) {
        const int64_t oh = th * M + r;
        if (oh >= g.OH) break;
        for (int c = 0; c < M; ++c) {
          const int64_t ow = tw * M + c;
          if (ow >= g.OW) break;
          vstore(y + ((n * g.OH + oh) * g.OW + ow) * OC + ob, act_v(yy[r][c] + bv, act));
        }
      }
    }
  }
}

// du[C, OC] += u^T z for u [nt, C], z [nt, OC]: R rows of du x NV vectors of 16 in registers while the nt tiles
// stream by (a rank-nt update). MKL's sgemm runs its generic kernels on this AMD CPU (about half oneDNN's FMA rate)
// and costs a call per position and block; this loop is the whole GEMM.
template <int R, int NV>
PYDLR_INLINE void outer_accumulate_cols(int64_t nt, int64_t C, int64_t OC, const float* u, const float* z, float* du,
                                        int64_t o0) {
  for (int64_t c0 = 0; c0 < C; c0 += R) {
    vf16 acc[R][NV];
    for (int i = 0; i < R; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = vload(du + (c0 + i) * OC + o0 + 16 * v);
    for (int64_t t = 0; t < nt; ++t) {
      vf16 zv[NV];
      for (int v = 0; v < NV; ++v) zv[v] = vload(z + t * OC + o0 + 16 * v);
      const float* ut = u + t * C + c0;
      for (int i = 0; i < R; ++i) {
        const float ui = ut[i];
        for (int v = 0; v < NV; ++v) acc[i][v] += zv[v] * ui;
      }
    }
    for (int i = 0; i < R; ++i)
      for (int v = 0; v < NV; ++v) vstore(du + (c0 + i) * OC + o0 + 16 * v, acc[i][v]);
  }
}

// du += u^T z for all columns (C a multiple of 16); rows a pass so that 16-24 accumulators are live.
PYDLR_INLINE void outer_accumulate(int64_t nt, int64_t C, int64_t OC, const float* u, const float* z, float* du) {
  column_chunks(OC, [&](int64_t o0, auto nv) __attribute__((always_inline)) {
    constexpr int NV = decltype(nv)::value, R = NV == 1 ? 16 : NV == 4 ? 4 : 8;
    outer_accumulate_cols<R, NV>(nt, C, OC, u, z, du, o0);
  });
}

// One weight-gradient block of tiles [p0, p1): the input transform into u [T*T][tiles][C], the gradient transform
// into z [T*T][tiles][OC] (outputs past the edge count as zero), then du_k[C, OC] += u_k^T z_k for the T*T
// positions; db[OC] += the block's gradient sum.
template <typename W>
PYDLR_CLONES void weight_grad_block(const ConvGeom& g, const Tiling& t, const float* x, const float* gm, int64_t p0,
                                    int64_t p1, float* u, float* z, float* du, float* db, float* block_db) {
  constexpr int T = W::T, M = W::M;
  const int64_t C = g.C, OC = g.OC, nt = p1 - p0, TT = t.TH * t.TW;
  transform_inputs<W>(g, t, x, p0, p1, u);
  std::fill(block_db, block_db + OC, 0.0f);  // the block's own sum first: a shorter running sum rounds less
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n = p / TT, th = (p % TT) / t.TW, tw = p % t.TW;
    for (int64_t ob = 0; ob < OC; ob += 16) {
      vf16 dy[M][M], zz[T][T], sum{};
      for (int r = 0; r < M; ++r) {
        const int64_t oh = th * M + r;
        for (int c = 0; c < M; ++c) {
          const int64_t ow = tw * M + c;
          dy[r][c] = (oh < g.OH && ow < g.OW) ? vload(gm + ((n * g.OH + oh) * g.OW + ow) * OC + ob) : vf16{};
          sum += dy[r][c];
        }
      }
      apply_2d<M, T>(dy, zz, W::a);
      for (int k = 0; k < T * T; ++k) vstore(z + (k * nt + (p - p0)) * OC + ob, zz[k / T][k % T]);
      vstore(block_db + ob, vload(block_db + ob) + sum);
    }
  }
  if (db != nullptr)
    for (int64_t o = 0; o < OC; ++o) db[o] += block_db[o];
  for (int k = 0; k < T * T; ++k) outer_accumulate(nt, C, OC, u + k * nt * C, z + k * nt * OC, du + k * C * OC);
}

// dW = G^T dU G for input channels [c0, c1) and every output channel, 16 at a time, where dU [T*T][C][OC] is the sum
// of the nparts per-thread partials parts[0..nparts) (summed here, in the same pass: no reduction of its own). Written
// as gw [OC][C][3][3], the layout of the weight itself, so that autograd keeps it as the gradient without a copy.
template <typename W>
PYDLR_CLONES void weight_grad_from_du(int64_t C, int64_t OC, const float* const* parts, int64_t nparts, float* gw,
                                      int64_t c0, int64_t c1) {
  constexpr int T = W::T;
  alignas(64) float lanes[16];
  for (int64_t c = c0; c < c1; ++c) {
    for (int64_t ob = 0; ob < OC; ob += 16) {
      vf16 t[3][T];  // G^T dU
      for (int a = 0; a < 3; ++a)
        for (int j = 0; j < T; ++j) t[a][j] = vf16{};
      for (int i = 0; i < T; ++i)
        for (int j = 0; j < T; ++j) {
          const int64_t off = ((i * T + j) * C + c) * OC + ob;
          vf16 d = vload(parts[0] + off);
          for (int64_t q = 1; q < nparts; ++q) d += vload(parts[q] + off);
          for (int a = 0; a < 3; ++a)
            if (W::G[i][a] != 0.0) t[a][j] += static_cast<float>(W::G[i][a]) * d;
        }
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) {
          vf16 s{};
          for (int j = 0; j < T; ++j)
            if (W::G[j][b] != 0.0) s += t[a][j] * static_cast<float>(W::G[j][b]);
          vstore(lanes, s);
          for (int l = 0; l < 16; ++l) gw[((ob + l) * C + c) * 9 + a * 3 + b] = lanes[l];
        }
    }
  }
}

// The transformed weight G w G^T for input channels [c0, c1), 16 output channels at a time: wk [C][9][OC] (the kernel
// with output channels innermost) -> wt [T*T][C][OC] (the forward GEMMs' right operand).
template <typename W>
PYDLR_CLONES void transform_weight(int64_t C, int64_t OC, const float* wk, float* wt, int64_t c0, int64_t c1) {
  constexpr int T = W::T;
  for (int64_t c = c0; c < c1; ++c) {
    for (int64_t ob = 0; ob < OC; ob += 16) {
      vf16 k[3][3], t[T][3], u[T][T];
      for (int i = 0; i < 9; ++i) k[i / 3][i % 3] = vload(wk + (c * 9 + i) * OC + ob);
      for (int i = 0; i < T; ++i)  // t = G k
        for (int j = 0; j < 3; ++j) {
          vf16 acc{};
          for (int a = 0; a < 3; ++a)
            if (W::G[i][a] != 0.0) acc += static_cast<float>(W::G[i][a]) * k[a][j];
          t[i][j] = acc;
        }
      for (int i = 0; i < T; ++i)  // u = t G^T
        for (int j = 0; j < T; ++j) {
          vf16 acc{};
          for (int a = 0; a < 3; ++a)
            if (W::G[j][a] != 0.0) acc += t[i][a] * static_cast<float>(W::G[j][a]);
          u[i][j] = acc;
        }
      for (int q = 0; q < T * T; ++q) vstore(wt + (q * C + c) * OC + ob, u[q / T][q % T]);
    }
  }
}

// Splits P tiles into blocks of ~target tiles, a whole number of blocks per thread (equal work); returns
// (blocks, tiles per block).
std::pair<int64_t, int64_t> tile_blocks(int64_t P, int64_t target) {
  const int64_t nt = at::get_num_threads();
  const int64_t nblocks = nt * std::max<int64_t>(1, (P + nt * target / 2) / (nt * target));
  return {nblocks, (P + nblocks - 1) / nblocks};
}

using Transformed = std::shared_ptr<const std::vector<float>>;

template <typename W>
Transformed transformed_weight(const at::Tensor& weight, int64_t C, int64_t OC) {
  constexpr int T = W::T;
  const at::Tensor wk = weight.permute({1, 2, 3, 0}).contiguous();  // [C][3][3][OC]
  auto wt = std::make_shared<std::vector<float>>(T * T * C * OC);
  at::parallel_for(0, C, 1, [&](int64_t c0, int64_t c1) {
    transform_weight<W>(C, OC, wk.const_data_ptr<float>(), wt->data(), c0, c1);
  });
  return wt;
}

// predict (torch.inference_mode) runs the same weights batch after batch: their transforms are kept for the next
// call while the weight is unchanged. A weight is the same when it is the same tensor (a weak reference keeps
// its address from being reused while the entry lives, without keeping its memory), at the same version (every
// in-place update bumps it: torch's optimizers, load_state_dict, pydlr's Adam through pydlr.ops) and data
// pointer. Outside inference mode (training, whose weights change every step) nothing is kept or looked up.
class WeightCache {
 public:
  template <typename W>
  Transformed get(const at::Tensor& weight, int64_t C, int64_t OC) {
    if (!c10::InferenceMode::is_enabled() || weight.is_inference()) return transformed_weight<W>(weight, C, OC);
    const Key key{weight.unsafeGetTensorImpl(), weight._version(), weight.const_data_ptr(), W::T, C, OC};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (Entry& e : entries_) {
        if (e.key == key && !e.tensor.expired()) return e.wt;
      }
    }
    Transformed wt = transformed_weight<W>(weight, C, OC);
    std::lock_guard<std::mutex> lock(mutex_);
    for (Entry& e : entries_) {  // a tensor keeps one entry: its older versions are stale
      if (e.key.impl == key.impl || e.tensor.expired()) {
        e = Entry{key, Weak(weight.getIntrusivePtr()), wt};
        return wt;
      }
    }
    if (entries_.size() >= kEntries) entries_.erase(entries_.begin());  // the oldest
    entries_.push_back(Entry{key, Weak(weight.getIntrusivePtr()), wt});
    return wt;
  }

 private:
  // A model's Winograd layers (the seed CNN has 2), a few models at once.
  static constexpr size_t kEntries = 16;
  using Weak = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;
  struct Key {
    const c10::TensorImpl* impl;
    int64_t version;
    const void* data;
    int tile;
    int64_t C, OC;
    bool operator==(const Key& o) const {
      return impl == o.impl && version == o.version && data == o.data && tile == o.tile && C == o.C && OC == o.OC;
    }
  };
  struct Entry {
    Key key;
    Weak tensor;
    Transformed wt;
  };
  std::mutex mutex_;
  std::vector<Entry> entries_;
};

WeightCache& weight_cache() {
  static WeightCache* cache = new WeightCache();  // never destroyed: no order problem at exit
  return *cache;
}

template <typename W>
void forward(const ConvGeom& g, const float* x, const at::Tensor& weight, const float* b, float* y, int act,
             PoolOut po) {
  constexpr int T = W::T;
  const int64_t C = g.C, OC = g.OC;
  const Transformed wt = weight_cache().get<W>(weight, C, OC);
  const Tiling t(g, W::M);
  const auto blocks = tile_blocks(t.P, kTilesPerBlock);
  const int64_t nblocks = blocks.first, per = blocks.second;
  at::parallel_for(0, nblocks, 1, [&](int64_t b0, int64_t b1) {
    std::unique_ptr<float[]> u(new float[T * T * per * C]), m(new float[T * T * per * OC]);  // written before read
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t p0 = blk * per, p1 = std::min(t.P, p0 + per);
      if (p0 < p1) forward_block<W>(g, t, x, wt->data(), b, y, act, p0, p1, u.get(), m.get(), po);
    }
  });
}

template <typename W>
std::pair<at::Tensor, at::Tensor> weight_grad(const ConvGeom& g, const float* x, const float* gm, bool want_bias,
                                              const at::TensorOptions& opts) {
  // dL/dU = sum over tiles of (A dy A^T) . (B^T d B), per thread in du [T*T][C][OC] (+ db [OC]); dW = G^T dU G.
  constexpr int T = W::T;
  const int64_t C = g.C, OC = g.OC, DU = T * T * C * OC, nthreads = at::get_num_threads();
  const Tiling t(g, W::M);
  const auto blocks = tile_blocks(t.P, kTilesPerBlock);
  const int64_t nblocks = blocks.first, per = blocks.second;
  // One partial sum per thread, zeroed by the thread that first uses it (threads without a block leave theirs
  // unused and unread): no separate fill, and the reduction happens in weight_grad_from_du's pass.
  at::Tensor acc = at::empty({nthreads, DU + OC}, opts);
  float* ap = acc.mutable_data_ptr<float>();
  std::vector<uint8_t> used(static_cast<size_t>(nthreads), 0);
  at::parallel_for(0, nblocks, 1, [&](int64_t b0, int64_t b1) {
    const int tid = at::get_thread_num();
    float* du = ap + tid * (DU + OC);
    if (!used[tid]) {
      std::memset(du, 0, sizeof(float) * (DU + OC));
      used[tid] = 1;
    }
    // Scratch left uninitialised (every element is written before it is read).
    std::unique_ptr<float[]> u(new float[T * T * per * C]), z(new float[T * T * per * OC]), block_db(new float[OC]);
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t p0 = blk * per, p1 = std::min(t.P, p0 + per);
      if (p0 < p1) {
        weight_grad_block<W>(g, t, x, gm, p0, p1, u.get(), z.get(), du, want_bias ? du + DU : nullptr,
                             block_db.get());
      }
    }
  });
  std::vector<const float*> parts;
  for (int64_t q = 0; q < nthreads; ++q)
    if (used[q]) parts.push_back(ap + q * (DU + OC));
  at::Tensor gw = at::empty({OC, C, 3, 3}, opts);
  at::Tensor gb = want_bias ? at::zeros({OC}, opts) : at::Tensor();
  if (parts.empty()) return {gw.zero_(), gb};  // no tile at all
  float* gwp = gw.mutable_data_ptr<float>();
  const float* const* pp = parts.data();
  const int64_t np = static_cast<int64_t>(parts.size());
  at::parallel_for(0, C, 1, [&](int64_t c0, int64_t c1) { weight_grad_from_du<W>(C, OC, pp, np, gwp, c0, c1); });
  if (want_bias) {
    float* gbp = gb.mutable_data_ptr<float>();
    for (const float* part : parts)
      for (int64_t o = 0; o < OC; ++o) gbp[o] += part[DU + o];
  }
  return {gw, gb};
}

// The tile with fewer multiplies for this output plane: T^2 products a tile times the tiles covering it (an
// 11x11 plane: 4x4 tiles, 324 vs 400; 3x3 and 5x5 planes: 3x3 tiles, 25 vs 36 and 100 vs 144).
bool use_f33(const ConvGeom& g) {
  const auto cost = [&](int64_t m) { return (m + 2) * (m + 2) * ((g.OH + m - 1) / m) * ((g.OW + m - 1) / m); };
  return cost(3) < cost(4);
}

}  // namespace

namespace detail {

int winograd_tile(const ConvGeom& g) { return use_f33(g) ? 3 : 4; }

bool winograd_ok(const ConvGeom& g, at::ScalarType t) {
  if (!(t == at::kFloat && g.G == 1 && g.KH == 3 && g.KW == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
        g.C % 16 == 0 && g.C <= kMaxChannels && g.OC % 16 == 0 && g.OH >= 3 && g.OW >= 3)) {
    return false;
  }
  return Tiling(g, winograd_tile(g)).P >= kMinTiles;
}

void winograd_fwd(const ConvGeom& g, const float* x, const at::Tensor& weight, const float* b, float* y, int act) {
  const PoolOut none{false, nullptr, 0, 0};
  use_f33(g) ? forward<F33>(g, x, weight, b, y, act, none) : forward<F43>(g, x, weight, b, y, act, none);
}

void winograd_fwd_pool2(const ConvGeom& g, const float* x, const at::Tensor& weight, const float* b, float* y,
                        uint8_t* a, int act) {
  TORCH_CHECK(!use_f33(g), "pydlr: winograd_fwd_pool2 needs the F(4x4, 3x3) tile (winograd_tile 4)");
  forward<F43>(g, x, weight, b, y, act, PoolOut{true, a, g.OH / 2, g.OW / 2});
}

std::pair<at::Tensor, at::Tensor> winograd_bwd_weight(const ConvGeom& g, const float* x, const float* gm,
                                                      bool want_bias, const at::TensorOptions& opts) {
  return use_f33(g) ? weight_grad<F33>(g, x, gm, want_bias, opts) : weight_grad<F43>(g, x, gm, want_bias, opts);
}

}  // namespace detail
}  // namespace pydlr
