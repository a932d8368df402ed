// Winograd F(4x4, 3x3) forward for channels-last float32 3x3 stride-1 convolutions (Lavin & Gray 2016).
//
// Each 4x4 block of outputs comes from a 6x6 input patch: Y = A^T [ (G g G^T) . (B^T d B) ] A. The elementwise
// product over 36 positions, summed over input channels, is 36 independent GEMMs [tiles x C] x [C x OC]: 2.25 x 4
// = 4x fewer multiplies than the direct convolution, the input and output transforms being additions and small
// constant multiplies, vectorised over 16 channels (channels-last makes them contiguous). Threads take blocks of
// tiles; a block's transformed input and GEMM results stay in L2 between the three stages.
#include "conv.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

namespace pydlr {
namespace {

constexpr int64_t kTilesPerBlock = 144;  // target tiles a block (see winograd_fwd)
// Fewer tiles than this (small batches): the weight transform and thread start-up are not repaid; other paths.
constexpr int64_t kMinTiles = 128;



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

// One block of tiles [p0, p1): input transform into u [36][tiles][C], 36 GEMMs into m [36][tiles][OC] with the
// transformed weight wt [36][C][OC], output transform with bias and activation into y (NHWC).
PYDLR_CLONES void block(const ConvGeom& g, int64_t TH, int64_t TW, const float* x, const float* wt, const float* b,
                        float* y, int act, int64_t p0, int64_t p1, float* u, float* m) {
  const int64_t C = g.C, OC = g.OC, nt = p1 - p0, T = TH * TW;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n = p / T, th = (p % T) / TW, tw = p % TW;
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
  for (int k = 0; k < 36; ++k) {  // m_k[nt, OC] = u_k[nt, C] x wt_k[C, OC]
    detail::gemm(nt, OC, C, u + k * nt * C, C, wt + k * C * OC, OC, m + k * nt * OC, OC);
  }
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n = p / T, th = (p % T) / TW, tw = p % TW;
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

}  // namespace

namespace detail {

bool winograd_ok(const ConvGeom& g, at::ScalarType t) {
  // direct_blas(): the 36 small GEMMs a block run inside a parallel region, where an at::mm fallback would not pay.
  return t == at::kFloat && direct_blas() && g.G == 1 && g.KH == 3 && g.KW == 3 && g.sh == 1 && g.sw == 1 &&
         g.dh == 1 && g.dw == 1 && g.C % 16 == 0 && g.OC % 16 == 0 && g.OH >= 4 && g.OW >= 4 &&
         g.N * ((g.OH + 3) / 4) * ((g.OW + 3) / 4) >= kMinTiles;
}

void winograd_fwd(const ConvGeom& g, const float* x, const at::Tensor& weight, const float* b, float* y, int act) {
  // Weight transform G w G^T, laid out [36][C][OC] (the GEMMs' right operand).
  const int64_t C = g.C, OC = g.OC;
  const at::Tensor w = weight.contiguous();
  const float* wp = w.const_data_ptr<float>();
  std::vector<float> wt(36 * C * OC);
  static const float G[6][3] = {{0.25f, 0.0f, 0.0f},
                                {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                {0.0f, 0.0f, 1.0f}};
  at::parallel_for(0, OC, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t oc = o0; oc < o1; ++oc) {
      for (int64_t c = 0; c < C; ++c) {
        const float* k = wp + (oc * C + c) * 9;
        float t[6][3];
        for (int i = 0; i < 6; ++i)
          for (int j = 0; j < 3; ++j) t[i][j] = G[i][0] * k[j] + G[i][1] * k[3 + j] + G[i][2] * k[6 + j];
        for (int i = 0; i < 6; ++i)
          for (int j = 0; j < 6; ++j)
            wt[((i * 6 + j) * C + c) * OC + oc] = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
      }
    }
  });
  const int64_t TH = (g.OH + 3) / 4, TW = (g.OW + 3) / 4, P = g.N * TH * TW;
  // Blocks of ~kTilesPerBlock tiles, a whole number of them per thread: the 36 GEMMs of a block need ~100+ rows to
  // run near MKL's speed (32x32x64 calls: 1.40 ms for the seed's 32->64 layer; 144-row blocks: 0.98 ms).
  const int64_t nt = at::get_num_threads();
  const int64_t nblocks = nt * std::max<int64_t>(1, (P + nt * kTilesPerBlock / 2) / (nt * kTilesPerBlock));
  const int64_t per = (P + nblocks - 1) / nblocks;
  at::parallel_for(0, nblocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> u(36 * per * C), m(36 * per * OC);
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t p0 = blk * per, p1 = std::min(P, p0 + per);
      if (p0 >= p1) continue;
      block(g, TH, TW, x, wt.data(), b, y, act, p0, p1, u.data(), m.data());
    }
  });
}

}  // namespace detail
}  // namespace pydlr
