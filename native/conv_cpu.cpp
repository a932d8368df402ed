// CPU kernels of pydlr's convolution: forward with fused bias + activation, and backward.
//
// Paths (chosen per shape in conv2d_act_cpu / conv2d_backward_cpu):
//   * depthwise (groups == C == OC): direct kernels, NHWC (vectorised over channels) or NCHW (over width);
//   * small reduction (C/G * KH * KW <= kDirectMaxK, e.g. the 1->32 first layer): direct kernels;
//   * everything else: blocked im2col + GEMM (MKL's sgemm_/dgemm_ exported by libtorch, called per block on
//     one thread, blocks spread over the cores), with bias + activation applied to each block while it is
//     still in cache. Channels-last inputs use an NHWC im2col so the GEMM output is already NHWC; 1x1 stride-1
//     convolutions skip im2col (the input rows are the GEMM operand).
// Layout: the output follows the input's suggested memory format, as torch's conv2d does. Other strides
// (non-contiguous views) are copied once into that layout.
#include "conv.h"

#include <ATen/Parallel.h>
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/hardtanh_backward.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/threshold_backward.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <type_traits>
#include <vector>

// MKL's Fortran GEMMs, statically linked into libtorch_cpu on x86 wheels. Weak: builds of torch without them
// still load the extension and fall back to at::mm.
extern "C" {
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*,
            const float*, const int*, const float*, float*, const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*, const int*,
            const double*, const int*, const double*, double*, const int*) __attribute__((weak));
}


namespace pydlr {
namespace {

// Above this reduction length (C/G * KH * KW) the GEMM path wins over the direct kernels.
constexpr int64_t kDirectMaxK = 16;
// Output positions per image below which a GEMM convolution is "small" (batched over images; pydlr's own path).
constexpr int64_t kSmallPlane = 64;
// Below this, pydlr's own channels-last GEMM path beats oneDNN (3x3 output planes: the seed's 64->64 at 5x5 and
// MobileNetV2's last stages, 1.03-1.09x); at 6x6 oneDNN is ahead (0.89-1.05x), so those take the oneDNN route.
constexpr int64_t kTinyPlane = 16;
// Elements of one thread's im2col block (~256 KiB of float): stays in L2 between im2col and GEMM.
constexpr int64_t kColElems = 64 * 1024;

// ---------------------------------------------------------------------------------------------- GEMM
// Row-major C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C. op(A) = A^T when ta (A stored [K,M]).
template <typename T>
void gemm_rm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
             int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  constexpr bool is_f = std::is_same_v<T, float>;
  const bool blas = is_f ? (sgemm_ != nullptr) : (dgemm_ != nullptr);
  if (blas && K > 0) {
    // Column-major view: C^T = op(B)^T op(A)^T.
    const char tA = tb ? 'T' : 'N', tB = ta ? 'T' : 'N';
    const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
    const int la = static_cast<int>(ldb), lb = static_cast<int>(lda), lc = static_cast<int>(ldc);
    if constexpr (is_f) {
      sgemm_(&tA, &tB, &m, &n, &k, &alpha, B, &la, A, &lb, &beta, C, &lc);
    } else {
      dgemm_(&tA, &tB, &m, &n, &k, &alpha, B, &la, A, &lb, &beta, C, &lc);
    }
    return;
  }
  auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor c = at::from_blob(C, {M, N}, {ldc, 1}, opts);
  if (K == 0) {
    c.mul_(beta);
    return;
  }
  at::Tensor a = ta ? at::from_blob(const_cast<T*>(A), {K, M}, {lda, 1}, opts).t()
                    : at::from_blob(const_cast<T*>(A), {M, K}, {lda, 1}, opts);
  at::Tensor b = tb ? at::from_blob(const_cast<T*>(B), {N, K}, {ldb, 1}, opts).t()
                    : at::from_blob(const_cast<T*>(B), {K, N}, {ldb, 1}, opts);
  at::Tensor r = at::mm(a, b);
  if (beta == T(0)) {
    c.copy_(r.mul_(alpha));
  } else {
    c.mul_(beta).add_(r, alpha);
  }
}

// ---------------------------------------------------------------------------------------------- helpers
// Output positions o in [lo, hi) read input index o * s + off inside [0, in).
inline void valid_range(int64_t off, int64_t s, int64_t in, int64_t out, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = (in - 1 - off) < 0 ? 0 : (in - 1 - off) / s + 1;
  hi = std::min(hi, out);
  lo = std::min(lo, hi);
}

template <typename T, int ACT>
PYDLR_INLINE T act_fn(T v) {
  if constexpr (ACT == 1) return v < T(0) ? T(0) : v;
  if constexpr (ACT == 2) return v < T(0) ? T(0) : (v > T(6) ? T(6) : v);
  return v;
}

// dst[i] = act(src[i]) for i < n (dst may be src). float rows of >= 16 go in vectors of 16 with the last one
// overlapping the one before (the activations are idempotent, and dst is recomputed from src): the scalar
// remainder GCC emits for the plain loop branches on every element (relu6 on NCHW depthwise rows of 28: +7 ms
// on a 29 MB output, 25% of the convolution).
template <typename T>
PYDLR_INLINE void act_span(const T* src, T* dst, int64_t n, int act) {
  if constexpr (std::is_same_v<T, float>) {
    if (n >= 16) {
      for (int64_t i = 0;; i += 16) {
        const int64_t at = std::min(i, n - 16);
        vstore(dst + at, act_v(vload(src + at), act));
        if (at == n - 16) return;
      }
    }
  }
  if (act == 1) {
    for (int64_t i = 0; i < n; ++i) dst[i] = act_fn<T, 1>(src[i]);
  } else if (act == 2) {
    for (int64_t i = 0; i < n; ++i) dst[i] = act_fn<T, 2>(src[i]);
  } else if (dst != src) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

// y[r, c] = act(y[r, c] + b[c]) over `rows` rows of length n (stride ld).
template <typename T, int ACT>
PYDLR_INLINE void epi_rows_impl(T* __restrict y, int64_t rows, int64_t n, int64_t ld, const T* __restrict b) {
  for (int64_t r = 0; r < rows; ++r) {
    T* __restrict yr = y + r * ld;
    if (b) {
      for (int64_t c = 0; c < n; ++c) yr[c] = act_fn<T, ACT>(yr[c] + b[c]);
    } else if (ACT != 0) {
      for (int64_t c = 0; c < n; ++c) yr[c] = act_fn<T, ACT>(yr[c]);
    }
  }
}
// y[r, c] = act(y[r, c] + b[r]) (NCHW: one bias per row).
template <typename T, int ACT>
PYDLR_INLINE void epi_cols_impl(T* __restrict y, int64_t rows, int64_t n, int64_t ld, const T* __restrict b) {
  for (int64_t r = 0; r < rows; ++r) {
    T* __restrict yr = y + r * ld;
    const T bv = b ? b[r] : T(0);
    if (b || ACT != 0) {
      for (int64_t c = 0; c < n; ++c) yr[c] = act_fn<T, ACT>(yr[c] + bv);
    }
  }
}
template <typename T>
PYDLR_INLINE void epi_impl(bool per_row, T* y, int64_t rows, int64_t n, int64_t ld, const T* b, int act) {
  if (per_row) {
    if (act == 1) epi_cols_impl<T, 1>(y, rows, n, ld, b);
    else if (act == 2) epi_cols_impl<T, 2>(y, rows, n, ld, b);
    else epi_cols_impl<T, 0>(y, rows, n, ld, b);
  } else {
    if (act == 1) epi_rows_impl<T, 1>(y, rows, n, ld, b);
    else if (act == 2) epi_rows_impl<T, 2>(y, rows, n, ld, b);
    else epi_rows_impl<T, 0>(y, rows, n, ld, b);
  }
}
PYDLR_CLONES void epi_f(bool per_row, float* y, int64_t rows, int64_t n, int64_t ld, const float* b, int act) {
  epi_impl<float>(per_row, y, rows, n, ld, b, act);
}
inline void epi(bool per_row, float* y, int64_t rows, int64_t n, int64_t ld, const float* b, int act) {
  epi_f(per_row, y, rows, n, ld, b, act);
}
inline void epi(bool per_row, double* y, int64_t rows, int64_t n, int64_t ld, const double* b, int act) {
  epi_impl<double>(per_row, y, rows, n, ld, b, act);
}

// ---------------------------------------------------------------------------------------------- im2col
// NHWC: rows m in [m0, m1) of the flattened (n, oh, ow) output, channels [c0, c0 + Cg): col[m - m0, (kh, kw, c)].
template <typename T>
void im2col_nhwc(const ConvGeom& g, const T* x, int64_t c0, int64_t Cg, int64_t m0, int64_t m1, T* col) {
  const int64_t Kdim = g.KH * g.KW * Cg, P = g.OH * g.OW;
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t n = m / P, r = m % P, oh = r / g.OW, ow = r % g.OW;
    T* dst = col + (m - m0) * Kdim;
    const T* xn = x + n * g.H * g.W * g.C + c0;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
      T* d = dst + kh * g.KW * Cg;
      if (ih < 0 || ih >= g.H) {
        std::fill_n(d, g.KW * Cg, T(0));
        continue;
      }
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t iw = ow * g.sw - g.pw + kw * g.dw;
        if (iw < 0 || iw >= g.W) {
          std::fill_n(d + kw * Cg, Cg, T(0));
        } else {
          std::copy_n(xn + (ih * g.W + iw) * g.C, Cg, d + kw * Cg);
        }
      }
    }
  }
}
// Inverse (accumulating) of im2col_nhwc into dx (NHWC, zeroed by the caller).
template <typename T>
void col2im_nhwc(const ConvGeom& g, const T* col, int64_t c0, int64_t Cg, int64_t m0, int64_t m1, T* dx) {
  const int64_t Kdim = g.KH * g.KW * Cg, P = g.OH * g.OW;
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t n = m / P, r = m % P, oh = r / g.OW, ow = r % g.OW;
    const T* src = col + (m - m0) * Kdim;
    T* dn = dx + n * g.H * g.W * g.C + c0;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t iw = ow * g.sw - g.pw + kw * g.dw;
        if (iw < 0 || iw >= g.W) continue;
        T* __restrict d = dn + (ih * g.W + iw) * g.C;
        const T* __restrict s = src + (kh * g.KW + kw) * Cg;
        for (int64_t c = 0; c < Cg; ++c) d[c] += s[c];
      }
    }
  }
}
// NCHW, one image: col[(c, kh, kw), (oh - oh0, ow)] for channels [c0, c0 + Cg) and output rows [oh0, oh1).
template <typename T>
void im2col_nchw(const ConvGeom& g, const T* xn, int64_t c0, int64_t Cg, int64_t oh0, int64_t oh1, T* col) {
  const int64_t cols = (oh1 - oh0) * g.OW;
  for (int64_t c = 0; c < Cg; ++c) {
    const T* xc = xn + (c0 + c) * g.H * g.W;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        T* d = col + ((c * g.KH + kh) * g.KW + kw) * cols;
        const int64_t off = kw * g.dw - g.pw;
        int64_t lo, hi;
        valid_range(off, g.sw, g.W, g.OW, lo, hi);
        for (int64_t oh = oh0; oh < oh1; ++oh, d += g.OW) {
          const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
          if (ih < 0 || ih >= g.H) {
            std::fill_n(d, g.OW, T(0));
            continue;
          }
          const T* xr = xc + ih * g.W + off;
          std::fill_n(d, lo, T(0));
          if (g.sw == 1) {
            std::copy(xr + lo, xr + hi, d + lo);
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) d[ow] = xr[ow * g.sw];
          }
          std::fill(d + hi, d + g.OW, T(0));
        }
      }
    }
  }
}
template <typename T>
void col2im_nchw(const ConvGeom& g, const T* col, int64_t c0, int64_t Cg, int64_t oh0, int64_t oh1, T* dxn) {
  const int64_t cols = (oh1 - oh0) * g.OW;
  for (int64_t c = 0; c < Cg; ++c) {
    T* dc = dxn + (c0 + c) * g.H * g.W;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const T* s = col + ((c * g.KH + kh) * g.KW + kw) * cols;
        const int64_t off = kw * g.dw - g.pw;
        int64_t lo, hi;
        valid_range(off, g.sw, g.W, g.OW, lo, hi);
        for (int64_t oh = oh0; oh < oh1; ++oh, s += g.OW) {
          const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          T* dr = dc + ih * g.W + off;
          for (int64_t ow = lo; ow < hi; ++ow) dr[ow * g.sw] += s[ow];
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------- GEMM path
inline bool is_pointwise(const ConvGeom& g) {
  return g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

// NHWC forward. wt: [OC, KH, KW, Cg]; y: [N, OH, OW, OC].
template <typename T>
void fwd_gemm_nhwc(const ConvGeom& g, const T* x, const T* wt, const T* b, T* y, int act) {
  const int64_t Cg = g.C / g.G, OCg = g.OC / g.G, Kdim = g.KH * g.KW * Cg, M = g.N * g.OH * g.OW;
  const bool pw = is_pointwise(g);
  // Row blocks of ~kColElems (the im2col block stays in L2). A small convolution (at most 4 such blocks a thread,
  // e.g. 576 rows in all) runs as one GEMM per thread instead of many tiny ones.
  const int64_t base = std::max<int64_t>(8, kColElems / (Kdim + g.OC)), nt = at::get_num_threads();
  const int64_t RB = M <= 4 * base * nt ? std::max(base, (M + nt - 1) / nt) : base;
  const int64_t nchunks = (M + RB - 1) / RB;
  at::parallel_for(0, nchunks, 1, [&](int64_t cb, int64_t ce) {
    std::vector<T> col(pw ? 0 : RB * Kdim);
    for (int64_t ch = cb; ch < ce; ++ch) {
      const int64_t m0 = ch * RB, m1 = std::min(M, m0 + RB), rows = m1 - m0;
      for (int64_t gi = 0; gi < g.G; ++gi) {
        const T* A = x + m0 * g.C + gi * Cg;
        int64_t lda = g.C;
        if (!pw) {
          im2col_nhwc(g, x, gi * Cg, Cg, m0, m1, col.data());
          A = col.data();
          lda = Kdim;
        }
        gemm_rm<T>(false, true, rows, OCg, Kdim, T(1), A, lda, wt + gi * OCg * Kdim, Kdim, T(0),
                   y + m0 * g.OC + gi * OCg, g.OC);
      }
      epi(false, y + m0 * g.OC, rows, g.OC, g.OC, b, act);
    }
  });
}

// Output rows of one NCHW block so that the im2col block holds ~kColElems elements.
inline int64_t nchw_block_rows(const ConvGeom& g, int64_t Kdim) {
  return std::clamp<int64_t>(kColElems / std::max<int64_t>(1, Kdim * g.OW), 1, g.OH);
}

// NCHW forward. w: [OC, Cg, KH, KW]; y: [N, OC, OH, OW].
template <typename T>
void fwd_gemm_nchw(const ConvGeom& g, const T* x, const T* w, const T* b, T* y, int act) {
  const int64_t Cg = g.C / g.G, OCg = g.OC / g.G, Kdim = g.KH * g.KW * Cg, P = g.OH * g.OW;
  const bool pw = is_pointwise(g);
  const int64_t OB = pw ? g.OH : nchw_block_rows(g, Kdim), nb = (g.OH + OB - 1) / OB;
  at::parallel_for(0, g.N * nb, 1, [&](int64_t tb, int64_t te) {
    std::vector<T> col(pw ? 0 : OB * g.OW * Kdim);
    for (int64_t t = tb; t < te; ++t) {
      const int64_t n = t / nb, oh0 = (t % nb) * OB, oh1 = std::min(g.OH, oh0 + OB), cols = (oh1 - oh0) * g.OW;
      const T* xn = x + n * g.C * g.H * g.W;
      T* yn = y + n * g.OC * P + oh0 * g.OW;
      for (int64_t gi = 0; gi < g.G; ++gi) {
        const T* B = xn + gi * Cg * P + oh0 * g.OW;
        int64_t ldb = P;
        if (!pw) {
          im2col_nchw(g, xn, gi * Cg, Cg, oh0, oh1, col.data());
          B = col.data();
          ldb = cols;
        }
        gemm_rm<T>(false, false, OCg, cols, Kdim, T(1), w + gi * OCg * Kdim, Kdim, B, ldb, T(0), yn + gi * OCg * P, P);
      }
      epi(true, yn, g.OC, cols, P, b, act);
    }
  });
}

// NHWC backward. gm: masked grad [N*OH*OW, OC]; dx: NHWC (zeroed unless pointwise) or null; dw_acc:
// [threads, OC, KH, KW, Cg] zeroed, or null.
template <typename T>
void bwd_gemm_nhwc(const ConvGeom& g, const T* x, const T* wt, const T* gm, T* dx, T* dw_acc) {
  const int64_t Cg = g.C / g.G, OCg = g.OC / g.G, Kdim = g.KH * g.KW * Cg, P = g.OH * g.OW;
  const bool pw = is_pointwise(g);
  const int64_t RB = std::max<int64_t>(8, kColElems / (Kdim + g.OC));
  // Blocks of rows: part of one image when its output is large, else several whole images (small outputs such
  // as 3x3 would otherwise make GEMMs of 9 rows, far from BLAS speed). Threads own whole images, so col2im
  // never races.
  const int64_t IB = std::max<int64_t>(1, RB / P), PB = std::min(P, RB);
  at::parallel_for(0, g.N, 1, [&](int64_t nb, int64_t ne) {
    const int64_t block = IB > 1 ? IB * P : PB;
    std::vector<T> col(pw || !dw_acc ? 0 : block * Kdim), gcol(pw || !dx ? 0 : block * Kdim);
    T* acc = dw_acc ? dw_acc + at::get_thread_num() * g.OC * Kdim : nullptr;
    for (int64_t n = nb; n < ne; n += IB) {
      for (int64_t r0 = 0; r0 < P; r0 += PB) {
        const int64_t m0 = n * P + r0, rows = IB > 1 ? (std::min(ne, n + IB) - n) * P : std::min(P - r0, PB);
        const int64_t m1 = m0 + rows;
        for (int64_t gi = 0; gi < g.G; ++gi) {
          const T* Ag = gm + m0 * g.OC + gi * OCg;
          const T* wg = wt + gi * OCg * Kdim;
          if (acc) {
            const T* cp = x + m0 * g.C + gi * Cg;
            int64_t ldc = g.C;
            if (!pw) {
              im2col_nhwc(g, x, gi * Cg, Cg, m0, m1, col.data());
              cp = col.data();
              ldc = Kdim;
            }
            gemm_rm<T>(true, false, OCg, Kdim, rows, T(1), Ag, g.OC, cp, ldc, T(1), acc + gi * OCg * Kdim, Kdim);
          }
          if (dx) {
            if (pw) {
              gemm_rm<T>(false, false, rows, Cg, OCg, T(1), Ag, g.OC, wg, Kdim, T(0), dx + m0 * g.C + gi * Cg, g.C);
            } else {
              gemm_rm<T>(false, false, rows, Kdim, OCg, T(1), Ag, g.OC, wg, Kdim, T(0), gcol.data(), Kdim);
              col2im_nhwc(g, gcol.data(), gi * Cg, Cg, m0, m1, dx);
            }
          }
        }
      }
    }
  });
}

// NCHW backward. gm: masked grad [N, OC, OH, OW]; w: [OC, Cg, KH, KW]; dx zeroed unless pointwise.
template <typename T>
void bwd_gemm_nchw(const ConvGeom& g, const T* x, const T* w, const T* gm, T* dx, T* dw_acc) {
  const int64_t Cg = g.C / g.G, OCg = g.OC / g.G, Kdim = g.KH * g.KW * Cg, P = g.OH * g.OW, HW = g.H * g.W;
  const bool pw = is_pointwise(g);
  const int64_t OB = pw ? g.OH : nchw_block_rows(g, Kdim);
  at::parallel_for(0, g.N, 1, [&](int64_t nb, int64_t ne) {
    std::vector<T> col(pw || !dw_acc ? 0 : OB * g.OW * Kdim), gcol(pw || !dx ? 0 : OB * g.OW * Kdim);
    T* acc = dw_acc ? dw_acc + at::get_thread_num() * g.OC * Kdim : nullptr;
    for (int64_t n = nb; n < ne; ++n) {
      const T* xn = x + n * g.C * HW;
      for (int64_t oh0 = 0; oh0 < g.OH; oh0 += OB) {
        const int64_t oh1 = std::min(g.OH, oh0 + OB), cols = (oh1 - oh0) * g.OW;
        for (int64_t gi = 0; gi < g.G; ++gi) {
          const T* Gg = gm + (n * g.OC + gi * OCg) * P + oh0 * g.OW;
          const T* wg = w + gi * OCg * Kdim;
          if (acc) {
            const T* cp = xn + gi * Cg * HW + oh0 * g.OW;
            int64_t ldc = HW;
            if (!pw) {
              im2col_nchw(g, xn, gi * Cg, Cg, oh0, oh1, col.data());
              cp = col.data();
              ldc = cols;
            }
            gemm_rm<T>(false, true, OCg, Kdim, cols, T(1), Gg, P, cp, ldc, T(1), acc + gi * OCg * Kdim, Kdim);
          }
          if (dx) {
            T* dxn = dx + n * g.C * HW;
            if (pw) {
              gemm_rm<T>(true, false, Cg, cols, OCg, T(1), wg, Kdim, Gg, P, T(0), dxn + gi * Cg * HW + oh0 * g.OW, HW);
            } else {
              gemm_rm<T>(true, false, Kdim, cols, OCg, T(1), wg, Kdim, Gg, P, T(0), gcol.data(), cols);
              col2im_nchw(g, gcol.data(), gi * Cg, Cg, oh0, oh1, dxn);
            }
          }
        }
      }
    }
  });
}

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
void dw_nhwc_row_vf(const ConvGeom& g, const float* x, const float* wd, const float* b, float* y, int act, int64_t n,
                    int64_t oh);
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

// ---------------------------------------------------------------------------------------------- dense direct (SIMD)
// Dense (groups == 1) convolution with few input channels (the 1->32 first layer, RGB stems): K = C*KH*KW is too
// short for a GEMM to pay off, so each output pixel's OC = 16*NV accumulators stay in vector registers, 4 pixels
// at a time. Written with GCC vector extensions so every target clone gets its own ISA (zmm, ymm or xmm).
// The input is read through its strides (any layout, no copy).

constexpr int64_t kDenseDirectMaxK = 32;

inline bool dense_direct_ok(const ConvGeom& g, at::ScalarType t) {
  return t == at::kFloat && g.G == 1 && g.OC % 16 == 0 && g.OC <= 64 && g.C * g.KH * g.KW <= kDenseDirectMaxK;
}

// Output row (n, oh) into tile [OW, OC] with bias and activation. wk: [KH, KW, C, OC].
template <int NV>
PYDLR_INLINE void dense_row_v(const ConvGeom& g, const float* x, Strides4 xs, const float* wk, const float* b,
                              float* tile, int act, int64_t n, int64_t oh) {
  constexpr int64_t OC = 16 * NV;
  vf16 bias[NV];
  for (int j = 0; j < NV; ++j) bias[j] = b ? vload(b + 16 * j) : vf16{};
  int64_t lo = 0, hi = g.OW;
  for (int64_t kw = 0; kw < g.KW; ++kw) {
    int64_t l, h;
    valid_range(kw * g.dw - g.pw, g.sw, g.W, g.OW, l, h);
    lo = std::max(lo, l);
    hi = std::min(hi, h);
  }
  hi = std::max(lo, hi);
  const float* xn = x + n * xs.n;
  auto generic = [&](int64_t ow) {
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

// Forward of the dense direct path; y is NHWC (cl) or NCHW.
void dense_direct_fwd(const ConvGeom& g, const at::Tensor& input, const at::Tensor& weight, const float* b, float* y,
                      bool cl, int act) {
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
std::pair<at::Tensor, at::Tensor> dense_direct_bwd(const ConvGeom& g, const at::Tensor& input,
                                                   const at::Tensor& grad, const at::Tensor& out, bool cl, int act) {
  const float* gp = grad.const_data_ptr<float>();
  const float* yp = act != 0 ? out.const_data_ptr<float>() : nullptr;
  return detail::dense_direct_grads(g, input, act, g.N * g.OH,
                                    [&](int64_t b0, int64_t b1, const detail::DenseGradRow& add) {
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

// ---------------------------------------------------------------------------------------------- NCHW "wide" direct
// NCHW, groups 1, stride 1, no padding, few input channels (the 1->32 first layer fed NCHW): computed on the
// flattened plane at input width W ("wide" rows: columns ow >= OW are junk and dropped), so every tap is one
// long contiguous multiply-add of length L = (OH - 1) * W + OW instead of OH short rows.
inline bool nchw_wide_ok(const ConvGeom& g) {
  return g.G == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 && g.C * g.KH * g.KW <= kDenseDirectMaxK;
}

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

// ---------------------------------------------------------------------------------------------- depthwise NHWC (SIMD)
// Register-tiled depthwise forward for C % 16 == 0: 4 output pixels x 16 channels accumulate in registers over
// all taps and are stored once with bias and activation (the plain kernel above re-reads and re-writes the
// output row per tap, which is store-bound).
PYDLR_INLINE void dw_nhwc_row_v(const ConvGeom& g, const float* x, const float* wd, const float* b, float* y, int act,
                                int64_t n, int64_t oh) {
  const int64_t C = g.C;
  float* yr = y + (n * g.OH + oh) * g.OW * C;
  const float* xn = x + n * g.H * g.W * C;
  int64_t lo = 0, hi = g.OW;
  for (int64_t kw = 0; kw < g.KW; ++kw) {
    int64_t l, h;
    valid_range(kw * g.dw - g.pw, g.sw, g.W, g.OW, l, h);
    lo = std::max(lo, l);
    hi = std::min(hi, h);
  }
  hi = std::max(lo, hi);
  auto pixel = [&](int64_t ow, int64_t cb, vf16 bv) {
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

std::string describe(const at::Tensor& t) {
  std::ostringstream s;
  s << t.dim() << "-d tensor of shape " << t.sizes() << ", dtype " << t.scalar_type() << ", device " << t.device();
  return s.str();
}

inline bool channels_last(const at::Tensor& input) {
  return input.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
}

// NCHW inputs with tiny output planes (e.g. 64->64 at 5x5) take the NHWC GEMM path: one GEMM over many images'
// rows instead of one tiny GEMM per image. The layout conversions are cheap at these sizes.
inline bool nchw_via_nhwc(const ConvGeom& g) {
  const bool depthwise = g.C == g.G && g.OC == g.G;
  return !depthwise && (g.C / g.G) * g.KH * g.KW > 32 && g.OH * g.OW < kSmallPlane;
}

}  // namespace

// ---------------------------------------------------------------------------------------------- public
Act parse_act(c10::string_view name) {
  if (name == "none") return Act::None;
  if (name == "relu") return Act::Relu;
  if (name == "relu6") return Act::Relu6;
  TORCH_CHECK(false, "pydlr::conv2d_act: activation must be one of \"none\", \"relu\", \"relu6\"; got \"",
              std::string(name), "\"");
}

ConvGeom check_conv_args(const char* op, const at::Tensor& input, const at::Tensor& weight,
                         const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                         at::IntArrayRef dilation, int64_t groups) {
  TORCH_CHECK(input.defined() && weight.defined(), op, ": input and weight must be defined tensors");
  TORCH_CHECK(input.dim() == 4, op, ": input must be a 4-d (N, C, H, W) tensor; got a ", describe(input));
  TORCH_CHECK(weight.dim() == 4, op, ": weight must be a 4-d (out_channels, in_channels / groups, kH, kW) tensor; got a ",
              describe(weight));
  TORCH_CHECK(input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble, op,
              ": input dtype must be float32 or float64; got ", input.scalar_type());
  TORCH_CHECK(weight.scalar_type() == input.scalar_type(), op, ": dtype mismatch: input is ", input.scalar_type(),
              " but weight is ", weight.scalar_type());
  TORCH_CHECK(weight.device() == input.device(), op, ": device mismatch: input is on ", input.device(),
              " but weight is on ", weight.device());
  TORCH_CHECK(stride.size() == 2 && padding.size() == 2 && dilation.size() == 2, op,
              ": stride, padding and dilation must have 2 elements each; got ", stride, ", ", padding, ", ", dilation);
  TORCH_CHECK(stride[0] > 0 && stride[1] > 0, op, ": stride must be positive; got ", stride);
  TORCH_CHECK(dilation[0] > 0 && dilation[1] > 0, op, ": dilation must be positive; got ", dilation);
  TORCH_CHECK(padding[0] >= 0 && padding[1] >= 0, op, ": padding must be non-negative; got ", padding);
  TORCH_CHECK(groups > 0, op, ": groups must be positive; got ", groups);
  ConvGeom g{};
  g.N = input.size(0);
  g.C = input.size(1);
  g.H = input.size(2);
  g.W = input.size(3);
  g.OC = weight.size(0);
  g.KH = weight.size(2);
  g.KW = weight.size(3);
  g.sh = stride[0];
  g.sw = stride[1];
  g.ph = padding[0];
  g.pw = padding[1];
  g.dh = dilation[0];
  g.dw = dilation[1];
  g.G = groups;
  TORCH_CHECK(g.N > 0, op, ": empty batch: input has batch size 0 (shape ", input.sizes(), ")");
  TORCH_CHECK(g.C > 0 && g.H > 0 && g.W > 0, op, ": input has a zero-sized dimension: shape ", input.sizes());
  TORCH_CHECK(g.OC > 0 && g.KH > 0 && g.KW > 0 && weight.size(1) > 0, op,
              ": weight has a zero-sized dimension: shape ", weight.sizes());
  TORCH_CHECK(g.C % groups == 0, op, ": input channels (", g.C, ") must be divisible by groups (", groups, ")");
  TORCH_CHECK(g.OC % groups == 0, op, ": output channels (weight.size(0) = ", g.OC, ") must be divisible by groups (",
              groups, ")");
  TORCH_CHECK(weight.size(1) == g.C / groups, op, ": weight expects ", weight.size(1) * groups,
              " input channels (weight.size(1) = ", weight.size(1), " x groups = ", groups, ") but input has ", g.C,
              " channels");
  if (bias.has_value() && bias->defined()) {
    const at::Tensor& b = *bias;
    TORCH_CHECK(b.dim() == 1 && b.size(0) == g.OC, op, ": bias must be 1-d with ", g.OC, " elements; got a ",
                describe(b));
    TORCH_CHECK(b.scalar_type() == input.scalar_type(), op, ": dtype mismatch: input is ", input.scalar_type(),
                " but bias is ", b.scalar_type());
    TORCH_CHECK(b.device() == input.device(), op, ": device mismatch: input is on ", input.device(),
                " but bias is on ", b.device());
  }
  const int64_t eh = g.dh * (g.KH - 1) + 1, ew = g.dw * (g.KW - 1) + 1;
  TORCH_CHECK(g.H + 2 * g.ph >= eh && g.W + 2 * g.pw >= ew, op, ": input (", g.H, " x ", g.W, ", padded by ", padding,
              ") is smaller than the dilated kernel (", eh, " x ", ew, ")");
  g.OH = (g.H + 2 * g.ph - eh) / g.sh + 1;
  g.OW = (g.W + 2 * g.pw - ew) / g.sw + 1;
  return g;
}

namespace {

// The gradient w.r.t. the convolution's output (before the activation), in layout fmt: grad_output masked by the
// activation's derivative, read from the activated output (relu: y > 0; relu6: 0 < y < 6, the same set as for
// the pre-activation value). ATen's threshold_backward / hardtanh_backward: one vectorised pass. (A hand-written
// select loop here ran 4-10x slower than them: 175-500 us vs 40 us on the seed's 32->64 gradient.)
at::Tensor masked_grad(const at::Tensor& grad_output, const std::optional<at::Tensor>& output, int act,
                       at::MemoryFormat fmt) {
  if (act == 0) return grad_output.contiguous(fmt);
  const at::Tensor g = grad_output.contiguous(fmt), y = output->contiguous(fmt);
  const at::Tensor gm = act == 1 ? at::threshold_backward(g, y, 0) : at::hardtanh_backward(g, y, 0, 6);
  return gm.contiguous(fmt);
}

enum class CpuPath { DepthwiseNhwc, WideNchw, DenseDirect, DirectNhwc, DirectNchw, GemmNhwc, GemmNchw };

// The forward kernel for a shape, in order of preference; the one place that decides it.
CpuPath forward_path(const ConvGeom& g, bool cl, at::ScalarType t) {
  const int64_t Cg = g.C / g.G, OCg = g.OC / g.G;
  const bool depthwise = Cg == 1 && OCg == 1;
  const bool small = Cg * g.KH * g.KW <= kDirectMaxK;
  if (cl && depthwise) return CpuPath::DepthwiseNhwc;
  if (!cl && nchw_wide_ok(g)) return CpuPath::WideNchw;
  if (dense_direct_ok(g, t)) return CpuPath::DenseDirect;
  if (cl && small && g.G == 1) return CpuPath::DirectNhwc;
  if (!cl && (depthwise || small)) return CpuPath::DirectNchw;
  return cl ? CpuPath::GemmNhwc : CpuPath::GemmNchw;
}

// Whether oneDNN (conv_onednn.cpp) runs the forward instead of pydlr's own kernel `own`: float32 GEMM-bound
// shapes where it measured faster (bench_conv, batch 64, 2 threads; times oneDNN vs own):
//   * NCHW few-channel "wide" (1->32 at 28x28 fed NCHW): 0.27 vs 0.51 ms;
//   * NCHW GEMM (32->64 at 13x13: 1.5 vs 2.2 ms), except pointwise with OC > 16 (96->24: 14.6 vs 8.7 ms, own);
//   * NCHW with a small plane, run via NHWC (64->64 at 5x5): 0.29 vs 0.32 ms;
//   * channels-last GEMM with >= kTinyPlane output positions (32->64 at 13x13: 1.36 vs 1.95 ms; pointwise 96->24:
//     9.3 vs 11.7 ms), except pointwise with OC <= 16 (32->16: 10.1 vs 5.3 ms, own);
//   * channels-last pointwise on the direct kernel (16->96 at 48x48, MobileNetV2: fwd+bwd 7.4 vs 8.6 ms).
// Other direct, depthwise and tiny-plane channels-last kernels stay pydlr's own (faster there).
bool onednn_forward(const ConvGeom& g, bool cl_in, CpuPath own, at::ScalarType t) {
  if (t != at::kFloat || !onednn_available()) return false;
  const bool pw = is_pointwise(g);
  const int64_t OCg = g.OC / g.G;
  switch (own) {
    case CpuPath::WideNchw: return true;
    case CpuPath::GemmNchw: return !(pw && OCg > 16);
    case CpuPath::GemmNhwc:
      if (!cl_in) return true;
      return g.OH * g.OW >= kTinyPlane && !(pw && OCg <= 16);
    case CpuPath::DirectNhwc: return cl_in && pw && g.OH * g.OW >= kTinyPlane;
    default: return false;
  }
}

// Whether oneDNN computes the weight and input gradients (after pydlr masks the gradient): the same shapes, except
// that pydlr's own backward stays where it measured faster: tiny planes (64->64 at 5x5, images batched into one
// GEMM: 1.30 vs 1.55 ms), NCHW inputs with small planes, and NCHW pointwise with OC > 16. Also channels-last pointwise convolutions whose forward
// is the dense direct kernel (32->16 at 112x112: backward 17 vs 25 ms), while their forward stays pydlr's (2x).
bool onednn_backward(const ConvGeom& g, bool cl_in, CpuPath own, at::ScalarType t) {
  if (t != at::kFloat || !onednn_available()) return false;
  const bool pw = is_pointwise(g);
  switch (own) {
    case CpuPath::DenseDirect: return cl_in && pw && g.OH * g.OW >= kSmallPlane;
    case CpuPath::DirectNhwc: return cl_in && pw && g.OH * g.OW >= kTinyPlane;
    case CpuPath::WideNchw: return true;
    case CpuPath::GemmNchw: return !(pw && g.OC / g.G > 16);
    case CpuPath::GemmNhwc: return cl_in && g.OH * g.OW >= kTinyPlane;
    default: return false;
  }
}

// Whether a convolution runs Winograd F(4x4, 3x3) or F(3x3, 3x3) (winograd_cpu.cpp): 3x3 stride-1 GEMM shapes with
// at most 64 input channels and enough tiles (winograd_ok), for inference and training alike: the forward and the
// weight gradient, and the input gradient where its own geometry qualifies (conv2d_backward_cpu).
// The seed's 32->64 at 13x13, batch 64, channels-last: forward 0.67-0.84 ms vs oneDNN's 1.4-1.5, weight gradient
// 0.7 vs 1.5-2.1 ms (4x fewer multiplies, register-tiled GEMMs); NCHW inputs pay layout copies and still win.
bool winograd_shape(const ConvGeom& g, CpuPath own, at::ScalarType t) {
  return (own == CpuPath::GemmNhwc || own == CpuPath::GemmNchw) && detail::winograd_ok(g, t);
}

// The geometry of the input gradient of a Winograd shape as a convolution (input_grad_geometry), when that
// convolution is a Winograd shape too.
std::optional<ConvGeom> winograd_input_grad(const ConvGeom& g) {
  if (g.ph > 2 || g.pw > 2) return std::nullopt;
  const ConvGeom d = input_grad_geometry(g);
  if (!detail::winograd_ok(d, at::kFloat)) return std::nullopt;
  return d;
}

const char* path_name(CpuPath p) {
  switch (p) {
    case CpuPath::DepthwiseNhwc: return "depthwise_nhwc";
    case CpuPath::WideNchw: return "wide_nchw";
    case CpuPath::DenseDirect: return "dense_direct";
    case CpuPath::DirectNhwc: return "direct_nhwc";
    case CpuPath::DirectNchw: return "direct_nchw";
    case CpuPath::GemmNhwc: return "gemm_nhwc";
    case CpuPath::GemmNchw: return "gemm_nchw";
  }
  return "unknown";
}

}  // namespace

std::string conv2d_cpu_path(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  const ConvGeom g = check_conv_args("pydlr::conv2d", input, weight, std::nullopt, stride, padding, dilation, groups);
  const bool cl_in = channels_last(input), cl = cl_in || nchw_via_nhwc(g);
  const CpuPath own = forward_path(g, cl, input.scalar_type());
  if (winograd_shape(g, own, input.scalar_type())) {
    return detail::winograd_tile(g) == 3 ? "winograd_f33" : "winograd_f43";
  }
  return onednn_forward(g, cl_in, own, input.scalar_type()) ? "onednn" : path_name(own);
}

at::Tensor conv2d_act_cpu(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                          c10::string_view activation) {
  const ConvGeom g = check_conv_args("pydlr::conv2d", input, weight, bias, stride, padding, dilation, groups);
  const int act = static_cast<int>(parse_act(activation));
  TORCH_CHECK(input.device().is_cpu(), "pydlr::conv2d: CPU kernel called with a ", input.device(), " tensor");
  const bool cl_in = channels_last(input);
  const bool cl = cl_in || nchw_via_nhwc(g);
  const CpuPath path = forward_path(g, cl, input.scalar_type());
  at::Tensor b = bias.has_value() && bias->defined() ? bias->contiguous() : at::Tensor();
  if (winograd_shape(g, path, input.scalar_type())) {  // channels-last inside (vectors over channels)
    const at::Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor y = at::empty({g.N, g.OC, g.OH, g.OW}, input.options().memory_format(at::MemoryFormat::ChannelsLast));
    detail::winograd_fwd(g, x.const_data_ptr<float>(), weight, b.defined() ? b.const_data_ptr<float>() : nullptr,
                         y.mutable_data_ptr<float>(), act);
    return cl_in ? y : y.contiguous();
  }
  if (onednn_forward(g, cl_in, path, input.scalar_type())) return onednn_conv2d_act(g, input, weight, b, act);
  const auto fmt = cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const at::Tensor x = input.contiguous(fmt);
  at::Tensor y = at::empty({g.N, g.OC, g.OH, g.OW}, input.options().memory_format(fmt));
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "pydlr_conv2d", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.defined() ? b.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    if (path == CpuPath::DepthwiseNhwc) {
      const at::Tensor wd = weight.reshape({g.C, g.KH * g.KW}).t().contiguous();
      const scalar_t* wp = wd.const_data_ptr<scalar_t>();
      if (detail::dw3_tiled_ok(g, input.scalar_type())) {  // float only: the casts are no-ops
        const auto* xf = reinterpret_cast<const float*>(xp);
        const auto* wf = reinterpret_cast<const float*>(wp);
        const auto* bf = reinterpret_cast<const float*>(bp);
        auto* yf = reinterpret_cast<float*>(yp);
        at::parallel_for(0, g.N * g.OH, 1, [&](int64_t b0, int64_t b1) {
          for (int64_t t = b0; t < b1; ++t) detail::dw3_fwd_row(g, xf, wf, bf, yf, act, t / g.OH, t % g.OH);
        });
        return;
      }
      at::parallel_for(0, g.N * g.OH, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t t = b0; t < b1; ++t) dw_nhwc_row(g, xp, wp, bp, yp, act, t / g.OH, t % g.OH);
      });
    } else if (path == CpuPath::WideNchw) {
      const at::Tensor w = weight.contiguous();
      const scalar_t* wp = w.const_data_ptr<scalar_t>();
      const int64_t L = (g.OH - 1) * g.W + g.OW;
      at::parallel_for(0, g.N * g.OC, 1, [&](int64_t b0, int64_t b1) {
        std::vector<scalar_t> wide(L);
        for (int64_t t = b0; t < b1; ++t) wide_fwd_plane(g, xp, wp, bp, yp, wide.data(), act, t / g.OC, t % g.OC);
      });
    } else if (path == CpuPath::DenseDirect) {
      // Reads the input through its strides: no layout copy.
      // (float only: dense_direct_ok checked the dtype)
      dense_direct_fwd(g, input, weight, reinterpret_cast<const float*>(bp), reinterpret_cast<float*>(yp), cl, act);
    } else if (path == CpuPath::DirectNhwc) {
      const at::Tensor wk = weight.permute({2, 3, 1, 0}).contiguous();
      const scalar_t* wp = wk.const_data_ptr<scalar_t>();
      at::parallel_for(0, g.N * g.OH, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t t = b0; t < b1; ++t) direct_nhwc_row(g, xp, wp, bp, yp, act, t / g.OH, t % g.OH);
      });
    } else if (path == CpuPath::DirectNchw) {
      const at::Tensor w = weight.contiguous();
      const scalar_t* wp = w.const_data_ptr<scalar_t>();
      // Depthwise, stride 1, rows that are not whole vectors (56 wide: 3.5): the phase-plane kernel (144 channels
      // at 56x56: 1.21x torch vs 1.07x); whole-vector rows and stride 2 measured faster here (32 at 112x112: 1.53x
      // vs 1.26x; stride 2: 1.65-2.19x vs 1.34-1.36x). float only (dw_nchw_phase_ok): the casts are no-ops.
      if (g.sw == 1 && g.OW % 16 != 0 && detail::dw_nchw_phase_ok(g, input.scalar_type())) {
        detail::dw_nchw_forward(g, reinterpret_cast<const float*>(xp), reinterpret_cast<const float*>(wp),
                                reinterpret_cast<const float*>(bp), reinterpret_cast<float*>(yp), act);
        return;
      }
      at::parallel_for(0, g.N * g.OC, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t t = b0; t < b1; ++t) direct_nchw_plane(g, xp, wp, bp, yp, act, t / g.OC, t % g.OC);
      });
    } else if (path == CpuPath::GemmNhwc) {
      const at::Tensor wt = weight.permute({0, 2, 3, 1}).contiguous();
      fwd_gemm_nhwc<scalar_t>(g, xp, wt.const_data_ptr<scalar_t>(), bp, yp, act);
    } else {
      const at::Tensor w = weight.contiguous();
      fwd_gemm_nchw<scalar_t>(g, xp, w.const_data_ptr<scalar_t>(), bp, yp, act);
    }
  });
  return cl == cl_in ? y : y.contiguous();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
    const std::optional<at::Tensor>& output, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef dilation, int64_t groups, c10::string_view activation, std::array<bool, 3> output_mask) {
  const ConvGeom g = check_conv_args("pydlr::conv2d_backward", input, weight, std::nullopt, stride, padding, dilation,
                                     groups);
  const int act = static_cast<int>(parse_act(activation));
  TORCH_CHECK(grad_output.dim() == 4 && grad_output.size(0) == g.N && grad_output.size(1) == g.OC &&
                  grad_output.size(2) == g.OH && grad_output.size(3) == g.OW,
              "pydlr::conv2d_backward: grad_output must have shape [", g.N, ", ", g.OC, ", ", g.OH, ", ", g.OW,
              "]; got ", grad_output.sizes());
  TORCH_CHECK(act == 0 || (output.has_value() && output->defined()),
              "pydlr::conv2d_backward: the activated output is needed for activation \"", std::string(activation),
              "\"");
  const bool cl_in = channels_last(input);
  const bool cl = cl_in || nchw_via_nhwc(g);
  const CpuPath own = forward_path(g, cl, input.scalar_type());
  if (output_mask[1] && winograd_shape(g, own, input.scalar_type())) {
    // Weight and bias gradients in the Winograd domain (channels-last inside). The input gradient, where the oneDNN
    // route would take it, is a Winograd convolution too (forward + backward against oneDNN's input gradient,
    // interleaved in one process: the seed's 32->64 1.05-1.09x, 64->64 at 56x56 1.25-1.39x, 16->32 at 30x30
    // 1.09-1.14x); elsewhere pydlr's GEMM path (tiny planes, where it beats both: 64->64 at 5x5, Winograd 0.85-0.90x;
    // the route switched off).
    const auto in_fmt = cl_in ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    const at::Tensor gm = masked_grad(grad_output, output, act, in_fmt);
    const at::Tensor gm_cl = gm.contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor x_cl = input.contiguous(at::MemoryFormat::ChannelsLast);
    auto [gw, gb] = detail::winograd_bwd_weight(g, x_cl.const_data_ptr<float>(), gm_cl.const_data_ptr<float>(),
                                                output_mask[2], input.options());
    at::Tensor gi;
    const bool onednn_dx = onednn_backward(g, cl_in, own, input.scalar_type());
    const std::optional<ConvGeom> wdx = winograd_input_grad(g);
    if (output_mask[0] && onednn_dx && wdx.has_value()) {
      gi = at::empty({g.N, g.C, g.H, g.W}, input.options().memory_format(at::MemoryFormat::ChannelsLast));
      detail::winograd_fwd(*wdx, gm_cl.const_data_ptr<float>(), weight.flip({2, 3}).transpose(0, 1), nullptr,
                           gi.mutable_data_ptr<float>(), 0);
      if (!cl_in) gi = gi.contiguous();
    } else if (output_mask[0] && onednn_dx) {
      gi = std::get<0>(onednn_conv2d_backward(g, gm, input.contiguous(in_fmt), weight, {true, false, false}));
    } else if (output_mask[0]) {
      gi = std::get<0>(conv2d_backward_cpu(gm, input, weight, std::nullopt, stride, padding, dilation, groups, "none",
                                           {true, false, false}));
    }
    return {gi, gw, gb};
  }
  if (onednn_backward(g, cl_in, own, input.scalar_type())) {
    const auto in_fmt = cl_in ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    return onednn_conv2d_backward(g, masked_grad(grad_output, output, act, in_fmt), input.contiguous(in_fmt),
                                  weight, output_mask);
  }
  const auto fmt = cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  at::Tensor gi, gw, gb;
  if (output_mask[1] && !cl && nchw_wide_ok(g)) {
    // NCHW, few input channels: weight and bias gradients from long per-plane dot products, masked on the fly.
    const at::Tensor xw = input.contiguous();
    const at::Tensor go = grad_output.contiguous();
    const at::Tensor yv = act != 0 ? output->contiguous() : at::Tensor();
    const int64_t nt = at::get_num_threads(), WK = g.OC * g.C * g.KH * g.KW;
    const int64_t L = (g.OH - 1) * g.W + g.OW;
    at::Tensor accs = at::zeros({nt, WK + g.OC}, input.options());
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "pydlr_conv2d_wide_bwd", [&] {
      scalar_t* ap = accs.mutable_data_ptr<scalar_t>();
      const scalar_t* xp = xw.const_data_ptr<scalar_t>();
      const scalar_t* gp = go.const_data_ptr<scalar_t>();
      const scalar_t* yp = yv.defined() ? yv.const_data_ptr<scalar_t>() : nullptr;
      at::parallel_for(0, g.N * g.OC, 1, [&](int64_t b0, int64_t b1) {
        scalar_t* acc = ap + at::get_thread_num() * (WK + g.OC);
        std::vector<scalar_t> wide(L);
        for (int64_t t = b0; t < b1; ++t) {
          wide_bwd_plane(g, xp, gp, yp, wide.data(), act, acc, acc + WK, t / g.OC, t % g.OC);
        }
      });
    });
    const at::Tensor total = accs.sum(0);
    gw = total.narrow(0, 0, WK).view({g.OC, g.C, g.KH, g.KW}).clone();
    if (output_mask[2]) gb = total.narrow(0, WK, g.OC).clone();
    if (!output_mask[0]) return {gi, gw, gb};
    output_mask[1] = output_mask[2] = false;  // only the input gradient is left for the paths below
  } else if (output_mask[1] && dense_direct_ok(g, input.scalar_type())) {
    // Few input channels: weight and bias gradients in one pass that also masks the gradient.
    const at::Tensor go = grad_output.contiguous(fmt);
    std::tie(gw, gb) = dense_direct_bwd(g, input, go, act != 0 ? output->contiguous(fmt) : at::Tensor(), cl, act);
    if (!output_mask[2]) gb = at::Tensor();
    if (!output_mask[0]) return {gi, gw, gb};
    output_mask[1] = output_mask[2] = false;  // only the input gradient is left for the paths below
  }
  const at::Tensor x = input.contiguous(fmt);
  const at::Tensor gm = masked_grad(grad_output, output, act, fmt);
  // Depthwise with a one-pass float32 kernel (depthwise_cpu.cpp): input, weight and bias gradients together.
  // Channels-last 3x3: tiled rows, weight as [3, 3, C]; NCHW: phase planes, weight as is.
  const auto one_pass = cl ? (detail::dw3_tiled_ok(g, input.scalar_type()) ? &detail::dw3_backward : nullptr)
                           : (detail::dw_nchw_phase_ok(g, input.scalar_type()) ? &detail::dw_nchw_backward : nullptr);
  if (one_pass != nullptr) {
    const at::Tensor w = cl ? weight.reshape({g.C, 9}).t().contiguous() : weight.contiguous();
    if (output_mask[0]) gi = at::empty({g.N, g.C, g.H, g.W}, input.options().memory_format(fmt));
    std::tie(gw, gb) = one_pass(g, x.const_data_ptr<float>(), gm.const_data_ptr<float>(), w.const_data_ptr<float>(),
                                gi.defined() ? gi.mutable_data_ptr<float>() : nullptr,
                                output_mask[1] || output_mask[2], input.options());
    if (!output_mask[1]) gw = at::Tensor();
    if (!output_mask[2]) gb = at::Tensor();
    return {cl != cl_in && gi.defined() ? gi.contiguous() : gi, gw, gb};
  }
  if (output_mask[2]) gb = gm.sum({0, 2, 3});
  if (!output_mask[0] && !output_mask[1]) return {gi, gw, gb};

  const int64_t Cg = g.C / g.G, OCg = g.OC / g.G, KK = g.KH * g.KW;
  const bool depthwise = Cg == 1 && OCg == 1;
  const bool pw = is_pointwise(g);
  const int64_t nt = at::get_num_threads();
  auto opts = input.options();
  if (output_mask[0]) {
    // Kernels that write every element (pointwise GEMM, depthwise) need no zeroing.
    gi = (pw || depthwise) ? at::empty({g.N, g.C, g.H, g.W}, opts.memory_format(fmt))
                            : at::empty({g.N, g.C, g.H, g.W}, opts.memory_format(fmt)).zero_();
  }
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "pydlr_conv2d_backward", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* gp = gm.const_data_ptr<scalar_t>();
    scalar_t* dxp = gi.defined() ? gi.mutable_data_ptr<scalar_t>() : nullptr;
    if (depthwise && cl) {
      const at::Tensor wd = weight.reshape({g.C, KK}).t().contiguous();
      const scalar_t* wp = wd.const_data_ptr<scalar_t>();
      if (dxp) {
        at::parallel_for(0, g.N * g.H, 1, [&](int64_t b0, int64_t b1) {
          for (int64_t t = b0; t < b1; ++t) dw_nhwc_dx_row(g, gp, wp, dxp, t / g.H, t % g.H);
        });
      }
      if (output_mask[1]) {
        at::Tensor accs = at::zeros({nt, KK * g.C}, opts);
        scalar_t* ap = accs.mutable_data_ptr<scalar_t>();
        at::parallel_for(0, g.N * g.OH, 1, [&](int64_t b0, int64_t b1) {
          scalar_t* acc = ap + at::get_thread_num() * KK * g.C;
          for (int64_t t = b0; t < b1; ++t) dw_nhwc_dw_row(g, xp, gp, acc, t / g.OH, t % g.OH);
        });
        gw = accs.sum(0).view({KK, g.C}).t().reshape({g.C, 1, g.KH, g.KW}).contiguous();
      }
    } else if (depthwise) {
      const at::Tensor w = weight.contiguous();
      const scalar_t* wp = w.const_data_ptr<scalar_t>();
      at::Tensor accs = output_mask[1] ? at::zeros({nt, g.C * KK}, opts) : at::Tensor();
      scalar_t* ap = accs.defined() ? accs.mutable_data_ptr<scalar_t>() : nullptr;
      at::parallel_for(0, g.N * g.C, 1, [&](int64_t b0, int64_t b1) {
        scalar_t* acc = ap ? ap + at::get_thread_num() * g.C * KK : nullptr;
        for (int64_t t = b0; t < b1; ++t) dw_nchw_bwd_plane(g, xp, wp, gp, dxp, acc, t / g.C, t % g.C);
      });
      if (ap) gw = accs.sum(0).view({g.C, 1, g.KH, g.KW});
    } else {
      const int64_t Kdim = KK * Cg;
      at::Tensor accs = output_mask[1] ? at::zeros({nt, g.OC * Kdim}, opts) : at::Tensor();
      scalar_t* ap = accs.defined() ? accs.mutable_data_ptr<scalar_t>() : nullptr;
      if (cl) {
        const at::Tensor wt = weight.permute({0, 2, 3, 1}).contiguous();
        bwd_gemm_nhwc<scalar_t>(g, xp, wt.const_data_ptr<scalar_t>(), gp, dxp, ap);
        if (ap) gw = accs.sum(0).view({g.OC, g.KH, g.KW, Cg}).permute({0, 3, 1, 2}).contiguous();
      } else {
        const at::Tensor w = weight.contiguous();
        bwd_gemm_nchw<scalar_t>(g, xp, w.const_data_ptr<scalar_t>(), gp, dxp, ap);
        if (ap) gw = accs.sum(0).view({g.OC, Cg, g.KH, g.KW});
      }
    }
  });
  if (gi.defined() && cl != cl_in) gi = gi.contiguous();
  return {gi, gw, gb};
}

namespace detail {
bool dense_direct_ok(const ConvGeom& g, at::ScalarType t) { return ::pydlr::dense_direct_ok(g, t); }
void dense_conv_row(const ConvGeom& g, const float* x, Strides4 xs, const float* wk, const float* b, float* tile,
                    int act, int64_t n, int64_t oh) {
  dense_row_f(g, x, xs, wk, b, tile, act, n, oh);
}
std::pair<at::Tensor, at::Tensor> dense_direct_grads(const ConvGeom& g, const at::Tensor& input, int act,
                                                     int64_t ntasks, const DenseGradRows& rows) {
  const int64_t nt = at::get_num_threads(), KC = g.KH * g.KW * g.C;
  at::Tensor accs = at::zeros({nt, KC * g.OC + g.OC}, input.options());
  float* ap = accs.mutable_data_ptr<float>();
  const float* xp = input.const_data_ptr<float>();
  const Strides4 xs = strides_of(input);
  at::parallel_for(0, ntasks, 1, [&](int64_t b0, int64_t b1) {
    float* acc = ap + at::get_thread_num() * (KC * g.OC + g.OC);
    std::vector<float> tile(g.OW * g.OC);
    const DenseGradRow add = [&](const float* grow, const float* yrow, int64_t n, int64_t oh) {
      dense_bwd_row_f(g, xp, xs, grow, yrow, act, acc, acc + KC * g.OC, tile.data(), n, oh);
    };
    rows(b0, b1, add);
  });
  const at::Tensor total = accs.sum(0);
  at::Tensor dw = total.narrow(0, 0, KC * g.OC).view({g.KH, g.KW, g.C, g.OC}).permute({3, 2, 0, 1}).contiguous();
  return {dw, total.narrow(0, KC * g.OC, g.OC).clone()};
}
}  // namespace detail

std::string simd_level() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  if (__builtin_cpu_supports("x86-64-v4")) return "avx512 (x86-64-v4 kernel clones)";
  if (__builtin_cpu_supports("x86-64-v3")) return "avx2+fma (x86-64-v3 kernel clones)";
  return "baseline x86-64 (sse2)";
#else
  return "compiler default (no runtime dispatch)";
#endif
}

bool direct_blas() { return sgemm_ != nullptr && dgemm_ != nullptr; }

}  // namespace pydlr
