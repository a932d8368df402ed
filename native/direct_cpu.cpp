// The direct family of pydlr's CPU convolution: kernels without im2col for short reductions (few input channels
// per group), where a GEMM cannot pay off. General kernels per NHWC output row (vectorised over output channels)
// and per NCHW output plane (over the width; also the general NCHW depthwise forward), the dense direct kernel
// (groups 1, OC a multiple of 16: accumulators in vector registers, the first layer of a CNN) and the NCHW "wide"
// kernel (stride 1, no padding: each tap one long multiply-add over the flattened plane).
#include "conv.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <vector>

namespace pydlr {
namespace {

// ---------------------------------------------------------------------------------------------- direct kernels
// NCHW direct convolution of output rows: plane (n, oc), rows [oh0, oh1); vectorised over the output width.
// Used for small reductions (few input channels per group) and depthwise. w: [OC, Cg, KH, KW].
template <typename T>
PYDLR_INLINE void direct_nchw_plane_impl(const ConvGeom& g, const T* __restrict x, const T* __restrict w,
                                         const T* b, T* __restrict y, int act, int64_t n, int64_t oc) {
  const int64_t Cg = g.C / g.G, OCg = g.OC / g.G, gi = oc / OCg, KK = g.KH * g.KW;
  T* __restrict yp = y + (n * g.OC + oc) * g.OH * g.OW;
  const T bv = b ? b[oc] : T(0);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    T* __restrict acc = yp + oh * g.OW;
    for (int64_t ow = 0; ow < g.OW; ++ow) acc[ow] = bv;
    for (int64_t c = 0; c < Cg; ++c) {
      const T* xc = x + (n * g.C + gi * Cg + c) * g.H * g.W;
      const T* wc = w + (oc * Cg + c) * KK;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
        if (ih < 0 || ih >= g.H) continue;
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const T wv = wc[kh * g.KW + kw];
          const int64_t off = kw * g.dw - g.pw;
          int64_t lo, hi;
          valid_range(off, g.sw, g.W, g.OW, lo, hi);
          const T* __restrict xr = xc + ih * g.W + off;
          if (g.sw == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) acc[ow] += wv * xr[ow];
          } else if (g.sw == 2) {
            for (int64_t ow = lo; ow < hi; ++ow) acc[ow] += wv * xr[2 * ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) acc[ow] += wv * xr[ow * g.sw];
          }
        }
      }
    }
    if (act != 0) act_span(acc, acc, g.OW, act);
  }
}
PYDLR_CLONES void direct_nchw_plane_f(const ConvGeom& g, const float* x, const float* w, const float* b, float* y,
                                      int act, int64_t n, int64_t oc) {
  direct_nchw_plane_impl<float>(g, x, w, b, y, act, n, oc);
}
inline void direct_nchw_plane(const ConvGeom& g, const float* x, const float* w, const float* b, float* y, int act,
                              int64_t n, int64_t oc) {
  direct_nchw_plane_f(g, x, w, b, y, act, n, oc);
}
inline void direct_nchw_plane(const ConvGeom& g, const double* x, const double* w, const double* b, double* y,
                              int act, int64_t n, int64_t oc) {
  direct_nchw_plane_impl<double>(g, x, w, b, y, act, n, oc);
}

// NHWC dense direct convolution (groups == 1, small C), one output row (n, oh); vectorised over OC.
// wk: [KH, KW, C, OC].
template <typename T, int OCC>
PYDLR_INLINE void direct_nhwc_row_impl(const ConvGeom& g, const T* __restrict x, const T* __restrict wk,
                                       const T* b, T* __restrict y, int act, int64_t n, int64_t oh) {
  const int64_t OC = OCC > 0 ? OCC : g.OC;
  constexpr int64_t kMaxOC = 256;
  T acc[OCC > 0 ? OCC : kMaxOC];
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    for (int64_t oc = 0; oc < OC; ++oc) acc[oc] = b ? b[oc] : T(0);
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t iw = ow * g.sw - g.pw + kw * g.dw;
        if (iw < 0 || iw >= g.W) continue;
        const T* xp = x + ((n * g.H + ih) * g.W + iw) * g.C;
        const T* wp = wk + (kh * g.KW + kw) * g.C * OC;
        for (int64_t c = 0; c < g.C; ++c) {
          const T xv = xp[c];
          for (int64_t oc = 0; oc < OC; ++oc) acc[oc] += xv * wp[c * OC + oc];
        }
      }
    }
    T* yp = y + ((n * g.OH + oh) * g.OW + ow) * OC;
    if (act == 1) {
      for (int64_t oc = 0; oc < OC; ++oc) yp[oc] = act_fn<T, 1>(acc[oc]);
    } else if (act == 2) {
      for (int64_t oc = 0; oc < OC; ++oc) yp[oc] = act_fn<T, 2>(acc[oc]);
    } else {
      for (int64_t oc = 0; oc < OC; ++oc) yp[oc] = acc[oc];
    }
  }
}
template <typename T>
PYDLR_INLINE void direct_nhwc_row_any(const ConvGeom& g, const T* x, const T* wk, const T* b, T* y, int act,
                                      int64_t n, int64_t oh) {
  switch (g.OC) {
    case 8: direct_nhwc_row_impl<T, 8>(g, x, wk, b, y, act, n, oh); break;
    case 16: direct_nhwc_row_impl<T, 16>(g, x, wk, b, y, act, n, oh); break;
    case 32: direct_nhwc_row_impl<T, 32>(g, x, wk, b, y, act, n, oh); break;
    case 64: direct_nhwc_row_impl<T, 64>(g, x, wk, b, y, act, n, oh); break;
    default: direct_nhwc_row_impl<T, 0>(g, x, wk, b, y, act, n, oh); break;
  }
}
PYDLR_CLONES void direct_nhwc_row_f(const ConvGeom& g, const float* x, const float* wk, const float* b, float* y,
                                    int act, int64_t n, int64_t oh) {
  direct_nhwc_row_any<float>(g, x, wk, b, y, act, n, oh);
}
inline void direct_nhwc_row(const ConvGeom& g, const float* x, const float* wk, const float* b, float* y, int act,
                            int64_t n, int64_t oh) {
  direct_nhwc_row_f(g, x, wk, b, y, act, n, oh);
}
inline void direct_nhwc_row(const ConvGeom& g, const double* x, const double* wk, const double* b, double* y,
                            int act, int64_t n, int64_t oh) {
  direct_nhwc_row_any<double>(g, x, wk, b, y, act, n, oh);
}

// ---------------------------------------------------------------------------------------------- dense direct (SIMD)
// Dense (groups == 1) convolution with few input channels (the 1->32 first layer, RGB stems): K = C*KH*KW is too
// short for a GEMM to pay off, so each output pixel's OC = 16*NV accumulators stay in vector registers, 4 pixels
// at a time. Written with GCC vector extensions so every target clone gets its own ISA (zmm, ymm or xmm).
// The input is read through its strides (any layout, no copy).

// Output row (n, oh) into tile [OW, OC] with bias and activation. wk: [KH, KW, C, OC].
template <int NV>
PYDLR_INLINE void dense_row_v(const ConvGeom& g, const float* x, Strides4 xs, const float* wk, const float* b,
                              float* tile, int act, int64_t n, int64_t oh) {
  constexpr int64_t OC = 16 * NV;
  vf16 bias[NV];
  for (int j = 0; j < NV; ++j) bias[j] = b ? vload(b + 16 * j) : vf16{};
  int64_t lo, hi;
  interior_columns(g, lo, hi);
  const float* xn = x + n * xs.n;
  auto generic = [&](int64_t ow) __attribute__((always_inline)) {
    vf16 acc[NV];
    for (int j = 0; j < NV; ++j) acc[j] = bias[j];
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t iw = ow * g.sw - g.pw + kw * g.dw;
        if (iw < 0 || iw >= g.W) continue;
        for (int64_t c = 0; c < g.C; ++c) {
          const float xv = xn[c * xs.c + ih * xs.h + iw * xs.w];
          const float* wp = wk + ((kh * g.KW + kw) * g.C + c) * OC;
          for (int j = 0; j < NV; ++j) acc[j] += xv * vload(wp + 16 * j);
        }
      }
    }
    for (int j = 0; j < NV; ++j) vstore(tile + ow * OC + 16 * j, acc[j]);
  };
  for (int64_t ow = 0; ow < lo; ++ow) generic(ow);
  int64_t ow = lo;
  const int64_t ps = g.sw * xs.w;
  for (; ow + 4 <= hi; ow += 4) {
    vf16 acc[4][NV];
    for (int p = 0; p < 4; ++p)
      for (int j = 0; j < NV; ++j) acc[p][j] = bias[j];
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const float* xb = xn + ih * xs.h + (ow * g.sw - g.pw + kw * g.dw) * xs.w;
        for (int64_t c = 0; c < g.C; ++c) {
          const float* wp = wk + ((kh * g.KW + kw) * g.C + c) * OC;
          vf16 wv[NV];
          for (int j = 0; j < NV; ++j) wv[j] = vload(wp + 16 * j);
          const float* xc = xb + c * xs.c;
          for (int p = 0; p < 4; ++p) {
            const float xv = xc[p * ps];
            for (int j = 0; j < NV; ++j) acc[p][j] += xv * wv[j];
          }
        }
      }
    }
    for (int p = 0; p < 4; ++p)
      for (int j = 0; j < NV; ++j) vstore(tile + (ow + p) * OC + 16 * j, acc[p][j]);
  }
  for (; ow < g.OW; ++ow) generic(ow);
  if (act != 0) epi_impl<float>(false, tile, g.OW, OC, OC, nullptr, act);
}

// Weight and bias gradient of output row (n, oh): grow / yrow are [OW, OC] rows of the incoming gradient and
// of the activated output (masked here: no separate pass); acc: [KH, KW, C, OC], dbacc: [OC].
template <int NV>
PYDLR_INLINE void dense_bwd_row_v(const ConvGeom& g, const float* x, Strides4 xs, const float* grow,
                                  const float* yrow, int act, float* acc, float* dbacc, float* gtile, int64_t n,
                                  int64_t oh) {
  constexpr int64_t OC = 16 * NV;
  const float* xn = x + n * xs.n;
  // 1) masked gradient row into gtile (L1-resident) and bias gradient.
  vf16 db[NV];
  for (int j = 0; j < NV; ++j) db[j] = vload(dbacc + 16 * j);
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    for (int j = 0; j < NV; ++j) {
      vf16 gv = vload(grow + ow * OC + 16 * j);
      if (act != 0) {
        const vf16 yv = vload(yrow + ow * OC + 16 * j);
        // Bitwise select (a vector ?: gets scalarised by GCC in some clones).
        const vi16 keep = act == 1 ? (yv > 0.0f) : ((yv > 0.0f) & (yv < 6.0f));
        gv = (vf16)((vi16)gv & keep);
      }
      db[j] += gv;
      vstore(gtile + ow * OC + 16 * j, gv);
    }
  }
  for (int j = 0; j < NV; ++j) vstore(dbacc + 16 * j, db[j]);
  // 2) per tap: the weight gradient's accumulators stay in registers over the row.
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
    if (ih < 0 || ih >= g.H) continue;
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const int64_t off = kw * g.dw - g.pw;
      int64_t lo, hi;
      valid_range(off, g.sw, g.W, g.OW, lo, hi);
      for (int64_t c = 0; c < g.C; ++c) {
        float* a = acc + ((kh * g.KW + kw) * g.C + c) * OC;
        const float* xr = xn + c * xs.c + ih * xs.h + off * xs.w;
        const int64_t ps = g.sw * xs.w;
        vf16 s0[NV], s1[NV];
        for (int j = 0; j < NV; ++j) {
          s0[j] = vload(a + 16 * j);
          s1[j] = vf16{};
        }
        int64_t ow = lo;
        for (; ow + 2 <= hi; ow += 2) {
          const float x0 = xr[ow * ps], x1 = xr[(ow + 1) * ps];
          for (int j = 0; j < NV; ++j) {
            s0[j] += x0 * vload(gtile + ow * OC + 16 * j);
            s1[j] += x1 * vload(gtile + (ow + 1) * OC + 16 * j);
          }
        }
        for (; ow < hi; ++ow) {
          const float x0 = xr[ow * ps];
          for (int j = 0; j < NV; ++j) s0[j] += x0 * vload(gtile + ow * OC + 16 * j);
        }
        for (int j = 0; j < NV; ++j) vstore(a + 16 * j, s0[j] + s1[j]);
      }
    }
  }
}

PYDLR_CLONES void dense_row_f(const ConvGeom& g, const float* x, Strides4 xs, const float* wk, const float* b,
                              float* tile, int act, int64_t n, int64_t oh) {
  switch (g.OC / 16) {
    case 1: dense_row_v<1>(g, x, xs, wk, b, tile, act, n, oh); break;
    case 2: dense_row_v<2>(g, x, xs, wk, b, tile, act, n, oh); break;
    case 3: dense_row_v<3>(g, x, xs, wk, b, tile, act, n, oh); break;
    default: dense_row_v<4>(g, x, xs, wk, b, tile, act, n, oh); break;
  }
}
PYDLR_CLONES void dense_bwd_row_f(const ConvGeom& g, const float* x, Strides4 xs, const float* grow,
                                  const float* yrow, int act, float* acc, float* dbacc, float* gtile, int64_t n,
                                  int64_t oh) {
  switch (g.OC / 16) {
    case 1: dense_bwd_row_v<1>(g, x, xs, grow, yrow, act, acc, dbacc, gtile, n, oh); break;
    case 2: dense_bwd_row_v<2>(g, x, xs, grow, yrow, act, acc, dbacc, gtile, n, oh); break;
    case 3: dense_bwd_row_v<3>(g, x, xs, grow, yrow, act, acc, dbacc, gtile, n, oh); break;
    default: dense_bwd_row_v<4>(g, x, xs, grow, yrow, act, acc, dbacc, gtile, n, oh); break;
  }
}

// ---------------------------------------------------------------------------------------------- NCHW "wide" direct
// NCHW, groups 1, stride 1, no padding, few input channels (the 1->32 first layer fed NCHW): computed on the
// flattened plane at input width W ("wide" rows: columns ow >= OW are junk and dropped), so every tap is one
// long contiguous multiply-add of length L = (OH - 1) * W + OW instead of OH short rows.
// One output plane (n, oc); wide: thread buffer of L elements.
template <typename T>
PYDLR_INLINE void wide_fwd_plane_impl(const ConvGeom& g, const T* __restrict x, const T* __restrict w, const T* b,
                                      T* __restrict y, T* __restrict wide, int act, int64_t n, int64_t oc) {
  const int64_t L = (g.OH - 1) * g.W + g.OW, HW = g.H * g.W;
  const T bv = b ? b[oc] : T(0);
  for (int64_t i = 0; i < L; ++i) wide[i] = bv;
  for (int64_t c = 0; c < g.C; ++c) {
    const T* xc = x + (n * g.C + c) * HW;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const T wv = w[((oc * g.C + c) * g.KH + kh) * g.KW + kw];
        const T* __restrict xs = xc + kh * g.dh * g.W + kw * g.dw;
        for (int64_t i = 0; i < L; ++i) wide[i] += wv * xs[i];
      }
    }
  }
  T* yp = y + (n * g.OC + oc) * g.OH * g.OW;
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    act_span(wide + oh * g.W, yp + oh * g.OW, g.OW, act);
  }
}

// Weight and bias gradient of plane (n, oc): the masked gradient is laid out wide (zeros in junk columns), then
// each tap is one long dot product. acc: [OC, C, KH, KW] + [OC] bias.
template <typename T>
PYDLR_INLINE void wide_bwd_plane_impl(const ConvGeom& g, const T* __restrict x, const T* __restrict go,
                                      const T* __restrict yv, T* __restrict wide, int act, T* __restrict acc,
                                      T* __restrict dbacc, int64_t n, int64_t oc) {
  const int64_t L = (g.OH - 1) * g.W + g.OW, HW = g.H * g.W, P = g.OH * g.OW;
  const T* gp = go + (n * g.OC + oc) * P;
  const T* yp = yv ? yv + (n * g.OC + oc) * P : nullptr;
  T db = T(0);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    T* dst = wide + oh * g.W;
    const T* gr = gp + oh * g.OW;
    if (act == 0) {
      for (int64_t ow = 0; ow < g.OW; ++ow) dst[ow] = gr[ow];
    } else {
      const T* yr = yp + oh * g.OW;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const bool keep = act == 1 ? yr[ow] > T(0) : (yr[ow] > T(0) && yr[ow] < T(6));
        dst[ow] = keep ? gr[ow] : T(0);
      }
    }
    for (int64_t ow = 0; ow < g.OW; ++ow) db += dst[ow];
    if (oh + 1 < g.OH)
      for (int64_t ow = g.OW; ow < g.W; ++ow) dst[ow] = T(0);
  }
  dbacc[oc] += db;
  for (int64_t c = 0; c < g.C; ++c) {
    const T* xc = x + (n * g.C + c) * HW;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const T* __restrict xs = xc + kh * g.dh * g.W + kw * g.dw;
        T sum = T(0);
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < L; ++i) sum += wide[i] * xs[i];
        acc[((oc * g.C + c) * g.KH + kh) * g.KW + kw] += sum;
      }
    }
  }
}
PYDLR_CLONES void wide_fwd_plane_f(const ConvGeom& g, const float* x, const float* w, const float* b, float* y,
                                   float* wide, int act, int64_t n, int64_t oc) {
  wide_fwd_plane_impl<float>(g, x, w, b, y, wide, act, n, oc);
}
PYDLR_CLONES void wide_bwd_plane_f(const ConvGeom& g, const float* x, const float* go, const float* yv, float* wide,
                                   int act, float* acc, float* dbacc, int64_t n, int64_t oc) {
  wide_bwd_plane_impl<float>(g, x, go, yv, wide, act, acc, dbacc, n, oc);
}
inline void wide_fwd_plane(const ConvGeom& g, const float* x, const float* w, const float* b, float* y, float* wide,
                           int act, int64_t n, int64_t oc) {
  wide_fwd_plane_f(g, x, w, b, y, wide, act, n, oc);
}
inline void wide_fwd_plane(const ConvGeom& g, const double* x, const double* w, const double* b, double* y,
                           double* wide, int act, int64_t n, int64_t oc) {
  wide_fwd_plane_impl<double>(g, x, w, b, y, wide, act, n, oc);
}
inline void wide_bwd_plane(const ConvGeom& g, const float* x, const float* go, const float* yv, float* wide, int act,
                           float* acc, float* dbacc, int64_t n, int64_t oc) {
  wide_bwd_plane_f(g, x, go, yv, wide, act, acc, dbacc, n, oc);
}
inline void wide_bwd_plane(const ConvGeom& g, const double* x, const double* go, const double* yv, double* wide,
                           int act, double* acc, double* dbacc, int64_t n, int64_t oc) {
  wide_bwd_plane_impl<double>(g, x, go, yv, wide, act, acc, dbacc, n, oc);
}

}  // namespace

namespace detail {

template <typename T>
void direct_nhwc_forward(const ConvGeom& g, const T* x, const at::Tensor& weight, const T* b, T* y, int act) {
  const at::Tensor wk = weight.permute({2, 3, 1, 0}).contiguous();
  const T* wp = wk.const_data_ptr<T>();
  at::parallel_for(0, g.N * g.OH, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t t = b0; t < b1; ++t) direct_nhwc_row(g, x, wp, b, y, act, t / g.OH, t % g.OH);
  });
}

template <typename T>
void direct_nchw_forward(const ConvGeom& g, const T* x, const at::Tensor& weight, const T* b, T* y, int act) {
  const at::Tensor w = weight.contiguous();
  const T* wp = w.const_data_ptr<T>();
  at::parallel_for(0, g.N * g.OC, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t t = b0; t < b1; ++t) direct_nchw_plane(g, x, wp, b, y, act, t / g.OC, t % g.OC);
  });
}

bool nchw_wide_ok(const ConvGeom& g) {
  return g.G == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 && g.C * g.KH * g.KW <= kDenseDirectMaxK;
}

template <typename T>
void wide_nchw_forward(const ConvGeom& g, const T* x, const at::Tensor& weight, const T* b, T* y, int act) {
  const at::Tensor w = weight.contiguous();
  const T* wp = w.const_data_ptr<T>();
  const int64_t L = (g.OH - 1) * g.W + g.OW;
  at::parallel_for(0, g.N * g.OC, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> wide(L);
    for (int64_t t = b0; t < b1; ++t) wide_fwd_plane(g, x, wp, b, y, wide.data(), act, t / g.OC, t % g.OC);
  });
}

std::pair<at::Tensor, at::Tensor> wide_nchw_grads(const ConvGeom& g, const at::Tensor& input,
                                                  const at::Tensor& grad, const at::Tensor& out, int act,
                                                  bool want_bias) {
  const int64_t nt = at::get_num_threads(), WK = g.OC * g.C * g.KH * g.KW;
  const int64_t L = (g.OH - 1) * g.W + g.OW;
  at::Tensor accs = at::zeros({nt, WK + g.OC}, input.options());
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "pydlr_conv2d_wide_bwd", [&] {
    scalar_t* ap = accs.mutable_data_ptr<scalar_t>();
    const scalar_t* xp = input.const_data_ptr<scalar_t>();
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    const scalar_t* yp = out.defined() ? out.const_data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, g.N * g.OC, 1, [&](int64_t b0, int64_t b1) {
      scalar_t* acc = ap + at::get_thread_num() * (WK + g.OC);
      std::vector<scalar_t> wide(L);
      for (int64_t t = b0; t < b1; ++t) {
        wide_bwd_plane(g, xp, gp, yp, wide.data(), act, acc, acc + WK, t / g.OC, t % g.OC);
      }
    });
  });
  const at::Tensor total = accs.sum(0);
  at::Tensor gw = total.narrow(0, 0, WK).view({g.OC, g.C, g.KH, g.KW}).clone();
  return {gw, want_bias ? total.narrow(0, WK, g.OC).clone() : at::Tensor()};
}

#define PYDLR_DIRECT_INSTANCES(T)                                                                                 \
  template void direct_nhwc_forward<T>(const ConvGeom&, const T*, const at::Tensor&, const T*, T*, int);        \
  template void direct_nchw_forward<T>(const ConvGeom&, const T*, const at::Tensor&, const T*, T*, int);        \
  template void wide_nchw_forward<T>(const ConvGeom&, const T*, const at::Tensor&, const T*, T*, int);
PYDLR_DIRECT_INSTANCES(float)
PYDLR_DIRECT_INSTANCES(double)
#undef PYDLR_DIRECT_INSTANCES

bool dense_direct_ok(const ConvGeom& g, at::ScalarType t) {
  return t == at::kFloat && g.G == 1 && g.OC % 16 == 0 && g.OC <= 64 && g.C * g.KH * g.KW <= kDenseDirectMaxK;
}
void dense_conv_row(const ConvGeom& g, const float* x, Strides4 xs, const float* wk, const float* b, float* tile,
                    int act, int64_t n, int64_t oh) {
  dense_row_f(g, x, xs, wk, b, tile, act, n, oh);
}
std::pair<at::Tensor, at::Tensor> dense_grads_summed(const ConvGeom& g, const at::TensorOptions& opts, int64_t ntasks,
                                                     const DenseGradTasks& tasks) {
  const int64_t nt = at::get_num_threads(), taps = g.KH * g.KW, KC = taps * g.C, slot = KC * g.OC + g.OC;
  // Each thread zeroes its own partial when it first runs a task; the sum skips the partials of threads that ran
  // none. Summing and permuting to [OC][C][KH][KW] in one pass: torch's zeros + sum over threads + permuted copy
  // took ~80 us a step for the seed's 64 -> 64 layer (four passes over 2 x 37,000 floats).
  std::vector<float> accs(nt * slot);
  std::vector<char> used(nt, 0);
  at::parallel_for(0, ntasks, 1, [&](int64_t b0, int64_t b1) {
    const int64_t t = at::get_thread_num();
    float* acc = accs.data() + t * slot;
    if (!used[t]) {
      std::fill(acc, acc + slot, 0.0f);
      used[t] = 1;
    }
    tasks(b0, b1, acc, acc + KC * g.OC);
  });
  std::vector<const float*> parts;
  for (int64_t t = 0; t < nt; ++t) {
    if (used[t]) parts.push_back(accs.data() + t * slot);
  }
  at::Tensor dw = at::empty({g.OC, g.C, g.KH, g.KW}, opts), db = at::empty({g.OC}, opts);
  float* dwp = dw.mutable_data_ptr<float>();
  float* dbp = db.mutable_data_ptr<float>();
  at::parallel_for(0, g.OC, 16, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      float* out = dwp + o * KC;  // [C][KH][KW] of output channel o, from the partials' [KH][KW][C][OC]
      for (int64_t c = 0; c < g.C; ++c) {
        for (int64_t k = 0; k < taps; ++k) {
          const int64_t at = (k * g.C + c) * g.OC + o;
          float sum = 0.0f;
          for (const float* p : parts) sum += p[at];
          out[c * taps + k] = sum;
        }
      }
      float sum = 0.0f;
      for (const float* p : parts) sum += p[KC * g.OC + o];
      dbp[o] = sum;
    }
  });
  return {dw, db};
}
std::pair<at::Tensor, at::Tensor> dense_direct_grads(const ConvGeom& g, const at::Tensor& input, int act,
                                                     int64_t ntasks, const DenseGradRows& rows) {
  const float* xp = input.const_data_ptr<float>();
  const Strides4 xs = strides_of(input);
  return dense_grads_summed(g, input.options(), ntasks, [&](int64_t b0, int64_t b1, float* dw, float* db) {
    std::vector<float> tile(g.OW * g.OC);
    const DenseGradRow add = [&](const float* grow, const float* yrow, int64_t n, int64_t oh) {
      dense_bwd_row_f(g, xp, xs, grow, yrow, act, dw, db, tile.data(), n, oh);
    };
    rows(b0, b1, add);
  });
}

// Forward of the dense direct path; y is NHWC (cl) or NCHW.
void dense_direct_forward(const ConvGeom& g, const at::Tensor& input, const at::Tensor& weight, const float* b,
                          float* y, bool cl, int act) {
  const at::Tensor wk = weight.permute({2, 3, 1, 0}).contiguous();
  const float* wp = wk.const_data_ptr<float>();
  const float* xp = input.const_data_ptr<float>();
  const Strides4 xs = strides_of(input);
  at::parallel_for(0, g.N * g.OH, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> tile(cl ? 0 : g.OW * g.OC);
    for (int64_t t = b0; t < b1; ++t) {
      const int64_t n = t / g.OH, oh = t % g.OH;
      float* tp = cl ? y + t * g.OW * g.OC : tile.data();
      dense_row_f(g, xp, xs, wp, b, tp, act, n, oh);
      if (!cl) {
        for (int64_t oc = 0; oc < g.OC; ++oc) {
          float* yr = y + ((n * g.OC + oc) * g.OH + oh) * g.OW;
          for (int64_t ow = 0; ow < g.OW; ++ow) yr[ow] = tp[ow * g.OC + oc];
        }
      }
    }
  });
}

// Weight (and bias) gradient of the dense direct path, gradient masked on the fly. Returns dW [OC, C, KH, KW]
// and db [OC].
std::pair<at::Tensor, at::Tensor> dense_direct_backward(const ConvGeom& g, const at::Tensor& input,
                                                        const at::Tensor& grad, const at::Tensor& out, bool cl,
                                                        int act) {
  const float* gp = grad.const_data_ptr<float>();
  const float* yp = act != 0 ? out.const_data_ptr<float>() : nullptr;
  return dense_direct_grads(g, input, act, g.N * g.OH,
                                    [&](int64_t b0, int64_t b1, const DenseGradRow& add) {
    std::vector<float> gt(cl ? 0 : g.OW * g.OC), yt(cl || !yp ? 0 : g.OW * g.OC);
    for (int64_t t = b0; t < b1; ++t) {
      const int64_t n = t / g.OH, oh = t % g.OH;
      const float* grow = gp + t * g.OW * g.OC;
      const float* yrow = yp ? yp + t * g.OW * g.OC : nullptr;
      if (!cl) {  // NCHW: gather the row's channels into [OW, OC] tiles
        for (int64_t oc = 0; oc < g.OC; ++oc) {
          const int64_t base = ((n * g.OC + oc) * g.OH + oh) * g.OW;
          for (int64_t ow = 0; ow < g.OW; ++ow) gt[ow * g.OC + oc] = gp[base + ow];
          if (yp)
            for (int64_t ow = 0; ow < g.OW; ++ow) yt[ow * g.OC + oc] = yp[base + ow];
        }
        grow = gt.data();
        yrow = yp ? yt.data() : nullptr;
      }
      add(grow, yrow, n, oh);
    }
  });
}

}  // namespace detail
}  // namespace pydlr
