// Winograd F(4x4, 3x3) for float32 3x3 stride-1 convolutions (Lavin & Gray 2016): the forward and the weight and
// bias gradients.
//
// Each 4x4 block of outputs comes from a 6x6 input patch: Y = A^T [ (G g G^T) . (B^T d B) ] A. The elementwise
// product over 36 positions, summed over input channels, is 36 independent GEMMs [tiles x C] x [C x OC]: 2.25 x 4
// = 4x fewer multiplies than the direct convolution, the input and output transforms being additions and small
// constant multiplies, vectorised over 16 channels (channels-last makes them contiguous). The weight gradient is
// the adjoint: dU = sum over tiles of (A dY A^T) . (B^T d B), 36 GEMMs [C x tiles] x [tiles x OC], then
// dW = G^T dU G. Threads take blocks of tiles; a block's transformed data stays in L2 between the stages, and the
// GEMMs are register-tiled loops here rather than MKL calls (see outer_accumulate).
#include "conv.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <memory>
#include <vector>

namespace pydlr {
namespace {

// Tiles a block: its transformed input and products or gradients (36 x (C + OC) floats a tile, 221 KB for the seed's
// 32->64) stay in L2 between the stages. Seed 32->64 forward at 32 / 64 / 144 tiles: 0.88 / 0.72 / 0.84 ms.
constexpr int64_t kTilesPerBlock = 64;
// Fewer tiles than this (small batches): the weight transform and thread start-up are not repaid; other paths.
constexpr int64_t kMinTiles = 128;
// More input channels than this: the error of F(4x4, 3x3) grows with the reduction (max error relative to the
// output's magnitude, random data: 5-9e-6 at C = 32 and 64, 1.0e-5 at 128, 1.2-1.6e-5 at 256; issue 5's bar is
// 1e-5), and at 256 the transformed weight no longer stays in L2 (0.6-0.7x oneDNN's forward).
constexpr int64_t kMaxChannels = 64;

// Input transform of one 6x6 patch for 16 channels: v = B^T d B (d and v indexed [row][col]).
PYDLR_INLINE void input_transform(const vf16 d[6][6], vf16 v[6][6]) {
  vf16 t[6][6];
  for (int c = 0; c < 6; ++c) {  // t = B^T d (columns)
    const vf16 d0 = d[0][c], d1 = d[1][c], d2 = d[2][c], d3 = d[3][c], d4 = d[4][c], d5 = d[5][c];
    t[0][c] = 4.0f * d0 - 5.0f * d2 + d4;
    t[1][c] = -4.0f * d1 - 4.0f * d2 + d3 + d4;
    t[2][c] = 4.0f * d1 - 4.0f * d2 - d3 + d4;
    t[3][c] = -2.0f * d1 - d2 + 2.0f * d3 + d4;
    t[4][c] = 2.0f * d1 - d2 - 2.0f * d3 + d4;
    t[5][c] = 4.0f * d1 - 5.0f * d3 + d5;
  }
  for (int r = 0; r < 6; ++r) {  // v = t B (rows)
    const vf16 t0 = t[r][0], t1 = t[r][1], t2 = t[r][2], t3 = t[r][3], t4 = t[r][4], t5 = t[r][5];
    v[r][0] = 4.0f * t0 - 5.0f * t2 + t4;
    v[r][1] = -4.0f * t1 - 4.0f * t2 + t3 + t4;
    v[r][2] = 4.0f * t1 - 4.0f * t2 - t3 + t4;
    v[r][3] = -2.0f * t1 - t2 + 2.0f * t3 + t4;
    v[r][4] = 2.0f * t1 - t2 - 2.0f * t3 + t4;
    v[r][5] = 4.0f * t1 - 5.0f * t3 + t5;
  }
}

// Output transform of one tile for 16 channels: y = A^T m A (4x4 from 6x6).
PYDLR_INLINE void output_transform(const vf16 m[6][6], vf16 y[4][4]) {
  vf16 t[4][6];
  for (int c = 0; c < 6; ++c) {
    const vf16 m0 = m[0][c], m1 = m[1][c], m2 = m[2][c], m3 = m[3][c], m4 = m[4][c], m5 = m[5][c];
    t[0][c] = m0 + m1 + m2 + m3 + m4;
    t[1][c] = m1 - m2 + 2.0f * (m3 - m4);
    t[2][c] = m1 + m2 + 4.0f * (m3 + m4);
    t[3][c] = m1 - m2 + 8.0f * (m3 - m4) + m5;
  }
  for (int r = 0; r < 4; ++r) {
    const vf16 t0 = t[r][0], t1 = t[r][1], t2 = t[r][2], t3 = t[r][3], t4 = t[r][4], t5 = t[r][5];
    y[r][0] = t0 + t1 + t2 + t3 + t4;
    y[r][1] = t1 - t2 + 2.0f * (t3 - t4);
    y[r][2] = t1 + t2 + 4.0f * (t3 + t4);
    y[r][3] = t1 - t2 + 8.0f * (t3 - t4) + t5;
  }
}

// Gradient transform of one tile for 16 channels, the adjoint of output_transform: z = A dy A^T (6x6 from 4x4).
PYDLR_INLINE void grad_transform(const vf16 dy[4][4], vf16 z[6][6]) {
  vf16 t[6][4];
  for (int c = 0; c < 4; ++c) {  // t = A dy (columns)
    const vf16 y0 = dy[0][c], y1 = dy[1][c], y2 = dy[2][c], y3 = dy[3][c];
    t[0][c] = y0;
    t[1][c] = y0 + y1 + y2 + y3;
    t[2][c] = y0 - y1 + y2 - y3;
    t[3][c] = y0 + 2.0f * y1 + 4.0f * y2 + 8.0f * y3;
    t[4][c] = y0 - 2.0f * y1 + 4.0f * y2 - 8.0f * y3;
    t[5][c] = y3;
  }
  for (int r = 0; r < 6; ++r) {  // z = t A^T (rows)
    const vf16 t0 = t[r][0], t1 = t[r][1], t2 = t[r][2], t3 = t[r][3];
    z[r][0] = t0;
    z[r][1] = t0 + t1 + t2 + t3;
    z[r][2] = t0 - t1 + t2 - t3;
    z[r][3] = t0 + 2.0f * t1 + 4.0f * t2 + 8.0f * t3;
    z[r][4] = t0 - 2.0f * t1 + 4.0f * t2 - 8.0f * t3;
    z[r][5] = t3;
  }
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

// Output columns in chunks of 64, then one chunk of the 16-48 left; rows so that 12-24 accumulators are live.
PYDLR_INLINE void small_gemm(int64_t nt, int64_t C, int64_t OC, const float* u, const float* w, float* m) {
  int64_t o0 = 0;
  for (; o0 + 64 <= OC; o0 += 64) gemm_cols<6, 4>(nt, C, OC, u, w, m, o0);
  switch ((OC - o0) / 16) {
    case 3: gemm_cols<6, 3>(nt, C, OC, u, w, m, o0); break;
    case 2: gemm_cols<8, 2>(nt, C, OC, u, w, m, o0); break;
    case 1: gemm_cols<12, 1>(nt, C, OC, u, w, m, o0); break;
    default: break;
  }
}

// Tiles: p = (n * TH + th) * TW + tw covers outputs [th*4, th*4+4) x [tw*4, tw*4+4) of image n.
struct Tiling {
  int64_t TH, TW, P;
  explicit Tiling(const ConvGeom& g) : TH((g.OH + 3) / 4), TW((g.OW + 3) / 4), P(g.N * TH * TW) {}
};

// Input transform of tiles [p0, p1) into u [36][p1 - p0][C] (zero padding outside the input).
PYDLR_CLONES void transform_inputs(const ConvGeom& g, const Tiling& t, const float* x, int64_t p0, int64_t p1,
                                   float* u) {
  const int64_t C = g.C, nt = p1 - p0, T = t.TH * t.TW;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n = p / T, th = (p % T) / t.TW, tw = p % t.TW;
    const int64_t ih0 = th * 4 - g.ph, iw0 = tw * 4 - g.pw;
    for (int64_t cb = 0; cb < C; cb += 16) {
      vf16 d[6][6], v[6][6];
      for (int r = 0; r < 6; ++r) {
        const int64_t ih = ih0 + r;
        for (int c = 0; c < 6; ++c) {
          const int64_t iw = iw0 + c;
          d[r][c] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? vload(x + ((n * g.H + ih) * g.W + iw) * C + cb)
                                                               : vf16{};
        }
      }
      input_transform(d, v);
      for (int k = 0; k < 36; ++k) vstore(u + (k * nt + (p - p0)) * C + cb, v[k / 6][k % 6]);
    }
  }
}

// One forward block of tiles [p0, p1): input transform into u [36][tiles][C], 36 GEMMs into m [36][tiles][OC]
// with the transformed weight wt [36][C][OC], output transform with bias and activation into y (NHWC).
PYDLR_CLONES void forward_block(const ConvGeom& g, const Tiling& t, const float* x, const float* wt, const float* b,
                                float* y, int act, int64_t p0, int64_t p1, float* u, float* m) {
  const int64_t C = g.C, OC = g.OC, nt = p1 - p0, T = t.TH * t.TW;
  transform_inputs(g, t, x, p0, p1, u);
  for (int k = 0; k < 36; ++k) small_gemm(nt, C, OC, u + k * nt * C, wt + k * C * OC, m + k * nt * OC);
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n = p / T, th = (p % T) / t.TW, tw = p % t.TW;
    for (int64_t ob = 0; ob < OC; ob += 16) {
      vf16 mm[6][6], yy[4][4];
      for (int k = 0; k < 36; ++k) mm[k / 6][k % 6] = vload(m + (k * nt + (p - p0)) * OC + ob);
      output_transform(mm, yy);
      const vf16 bv = b ? vload(b + ob) : vf16{};
      for (int r = 0; r < 4; ++r) {
        const int64_t oh = th * 4 + r;
        if (oh >= g.OH) break;
        for (int c = 0; c < 4; ++c) {
          const int64_t ow = tw * 4 + c;
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

// C % 16 == 0 and OC % 16 == 0 (winograd_ok): output columns in chunks of 64, then one chunk of the 16-48 left;
// rows per pass so that 16-24 accumulators are live.
PYDLR_INLINE void outer_accumulate(int64_t nt, int64_t C, int64_t OC, const float* u, const float* z, float* du) {
  int64_t o0 = 0;
  for (; o0 + 64 <= OC; o0 += 64) outer_accumulate_cols<4, 4>(nt, C, OC, u, z, du, o0);
  switch ((OC - o0) / 16) {
    case 3: outer_accumulate_cols<8, 3>(nt, C, OC, u, z, du, o0); break;
    case 2: outer_accumulate_cols<8, 2>(nt, C, OC, u, z, du, o0); break;
    case 1: outer_accumulate_cols<16, 1>(nt, C, OC, u, z, du, o0); break;
    default: break;
  }
}

// One weight-gradient block of tiles [p0, p1): the input transform into u [36][tiles][C], the gradient transform
// into z [36][tiles][OC] (outputs past the edge count as zero), then du_k[C, OC] += u_k^T z_k for the 36 positions;
// db[OC] += the block's gradient sum.
PYDLR_CLONES void weight_grad_block(const ConvGeom& g, const Tiling& t, const float* x, const float* gm, int64_t p0,
                                    int64_t p1, float* u, float* z, float* du, float* db, float* block_db) {
  const int64_t C = g.C, OC = g.OC, nt = p1 - p0, T = t.TH * t.TW;
  transform_inputs(g, t, x, p0, p1, u);
  std::fill(block_db, block_db + OC, 0.0f);  // the block's own sum first: a shorter running sum rounds less
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n = p / T, th = (p % T) / t.TW, tw = p % t.TW;
    for (int64_t ob = 0; ob < OC; ob += 16) {
      vf16 dy[4][4], zz[6][6], sum{};
      for (int r = 0; r < 4; ++r) {
        const int64_t oh = th * 4 + r;
        for (int c = 0; c < 4; ++c) {
          const int64_t ow = tw * 4 + c;
          dy[r][c] = (oh < g.OH && ow < g.OW) ? vload(gm + ((n * g.OH + oh) * g.OW + ow) * OC + ob) : vf16{};
          sum += dy[r][c];
        }
      }
      grad_transform(dy, zz);
      for (int k = 0; k < 36; ++k) vstore(z + (k * nt + (p - p0)) * OC + ob, zz[k / 6][k % 6]);
      vstore(block_db + ob, vload(block_db + ob) + sum);
    }
  }
  if (db != nullptr)
    for (int64_t o = 0; o < OC; ++o) db[o] += block_db[o];
  for (int k = 0; k < 36; ++k) outer_accumulate(nt, C, OC, u + k * nt * C, z + k * nt * OC, du + k * C * OC);
}

// Winograd's weight matrix G (6x3) of F(4x4, 3x3): U = G g G^T.
constexpr float kG[6][3] = {{0.25f, 0.0f, 0.0f},
                            {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                            {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                            {1.0f / 24, 1.0f / 12, 1.0f / 6},
                            {1.0f / 24, -1.0f / 12, 1.0f / 6},
                            {0.0f, 0.0f, 1.0f}};

// dW = G^T dU G for input channels [c0, c1) and every output channel, 16 at a time: dU [36][C][OC] -> gw [C][9][OC].
PYDLR_CLONES void weight_grad_from_du(int64_t C, int64_t OC, const float* dU, float* gw, int64_t c0, int64_t c1) {
  for (int64_t c = c0; c < c1; ++c) {
    for (int64_t ob = 0; ob < OC; ob += 16) {
      vf16 t[3][6];  // G^T dU
      for (int a = 0; a < 3; ++a)
        for (int j = 0; j < 6; ++j) t[a][j] = vf16{};
      for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j) {
          const vf16 d = vload(dU + ((i * 6 + j) * C + c) * OC + ob);
          for (int a = 0; a < 3; ++a)
            if (kG[i][a] != 0.0f) t[a][j] += kG[i][a] * d;
        }
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) {
          vf16 s{};
          for (int j = 0; j < 6; ++j)
            if (kG[j][b] != 0.0f) s += t[a][j] * kG[j][b];
          vstore(gw + (c * 9 + a * 3 + b) * OC + ob, s);
        }
    }
  }
}

constexpr double kGd[6][3] = {{0.25, 0.0, 0.0},        {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                              {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0.0, 0.0, 1.0}};

// Splits P tiles into blocks of ~target tiles, a whole number of blocks per thread (equal work); returns
// (blocks, tiles per block).
std::pair<int64_t, int64_t> tile_blocks(int64_t P, int64_t target) {
  const int64_t nt = at::get_num_threads();
  const int64_t nblocks = nt * std::max<int64_t>(1, (P + nt * target / 2) / (nt * target));
  return {nblocks, (P + nblocks - 1) / nblocks};
}

}  // namespace

namespace detail {

bool winograd_ok(const ConvGeom& g, at::ScalarType t) {
  return t == at::kFloat && g.G == 1 && g.KH == 3 && g.KW == 3 && g.sh == 1 && g.sw == 1 &&
         g.dh == 1 && g.dw == 1 && g.C % 16 == 0 && g.C <= kMaxChannels && g.OC % 16 == 0 && g.OH >= 4 && g.OW >= 4 &&
         g.N * ((g.OH + 3) / 4) * ((g.OW + 3) / 4) >= kMinTiles;
}

void winograd_fwd(const ConvGeom& g, const float* x, const at::Tensor& weight, const float* b, float* y, int act) {
  // Weight transform G w G^T, laid out [36][C][OC] (the GEMMs' right operand).
  const int64_t C = g.C, OC = g.OC;
  const at::Tensor w = weight.contiguous();
  const float* wp = w.const_data_ptr<float>();
  std::vector<float> wt(36 * C * OC);
  at::parallel_for(0, OC, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t oc = o0; oc < o1; ++oc) {
      for (int64_t c = 0; c < C; ++c) {
        const float* k = wp + (oc * C + c) * 9;
        double t[6][3];  // in double: the transformed weight rounded once
        for (int i = 0; i < 6; ++i)
          for (int j = 0; j < 3; ++j) t[i][j] = kGd[i][0] * k[j] + kGd[i][1] * k[3 + j] + kGd[i][2] * k[6 + j];
        for (int i = 0; i < 6; ++i)
          for (int j = 0; j < 6; ++j)
            wt[((i * 6 + j) * C + c) * OC + oc] =
                static_cast<float>(t[i][0] * kGd[j][0] + t[i][1] * kGd[j][1] + t[i][2] * kGd[j][2]);
      }
    }
  });
  const Tiling t(g);
  const auto blocks = tile_blocks(t.P, kTilesPerBlock);
  const int64_t nblocks = blocks.first, per = blocks.second;
  at::parallel_for(0, nblocks, 1, [&](int64_t b0, int64_t b1) {
    std::unique_ptr<float[]> u(new float[36 * per * C]), m(new float[36 * per * OC]);  // written before read
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t p0 = blk * per, p1 = std::min(t.P, p0 + per);
      if (p0 < p1) forward_block(g, t, x, wt.data(), b, y, act, p0, p1, u.get(), m.get());
    }
  });
}

std::pair<at::Tensor, at::Tensor> winograd_bwd_weight(const ConvGeom& g, const float* x, const float* gm,
                                                      bool want_bias, const at::TensorOptions& opts) {
  // dL/dU = sum over tiles of (A dy A^T) . (B^T d B), per thread in du [36][C][OC] (+ db [OC]); dW = G^T dU G.
  const int64_t C = g.C, OC = g.OC, DU = 36 * C * OC, nthreads = at::get_num_threads();
  const Tiling t(g);
  const auto blocks = tile_blocks(t.P, kTilesPerBlock);
  const int64_t nblocks = blocks.first, per = blocks.second;
  at::Tensor acc = at::zeros({nthreads, DU + OC}, opts);
  float* ap = acc.mutable_data_ptr<float>();
  at::parallel_for(0, nblocks, 1, [&](int64_t b0, int64_t b1) {
    float* du = ap + at::get_thread_num() * (DU + OC);
    // Scratch left uninitialised (every element is written before it is read).
    std::unique_ptr<float[]> u(new float[36 * per * C]), z(new float[36 * per * OC]), block_db(new float[OC]);
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t p0 = blk * per, p1 = std::min(t.P, p0 + per);
      if (p0 < p1) {
        weight_grad_block(g, t, x, gm, p0, p1, u.get(), z.get(), du, want_bias ? du + DU : nullptr, block_db.get());
      }
    }
  });
  const at::Tensor total = nthreads > 1 ? acc.sum(0) : acc[0];
  const float* dU = total.const_data_ptr<float>();
  at::Tensor gw = at::empty({C, 9, OC}, opts);  // [C][kh * 3 + kw][OC], permuted to [OC, C, 3, 3] at the end
  float* gwp = gw.mutable_data_ptr<float>();
  at::parallel_for(0, C, 1, [&](int64_t c0, int64_t c1) { weight_grad_from_du(C, OC, dU, gwp, c0, c1); });
  at::Tensor gb = want_bias ? total.narrow(0, DU, OC).clone() : at::Tensor();
  return {gw.permute({2, 0, 1}).reshape({OC, C, 3, 3}), gb};
}

}  // namespace detail
}  // namespace pydlr
