// The GEMM family of pydlr's CPU convolution: blocked im2col + GEMM, for the shapes the direct, depthwise and
// Winograd kernels do not take (conv_cpu.cpp chooses). MKL's sgemm_/dgemm_ exported by libtorch are called per
// block on one thread, blocks spread over the cores, with bias + activation applied to each block while it is
// still in cache. Channels-last inputs use an NHWC im2col so the GEMM output is already NHWC; 1x1 stride-1
// convolutions skip im2col (the input rows are the GEMM operand).
#include "conv.h"

#include <ATen/Parallel.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
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

// Elements of one thread's im2col block (~256 KiB of float): stays in L2 between im2col and GEMM.
constexpr int64_t kColElems = 64 * 1024;

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

// Bias + activation of a GEMM block (epi_impl, conv.h), float in the ISA clones.
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


// Output rows of one NCHW block so that the im2col block holds ~kColElems elements.
inline int64_t nchw_block_rows(const ConvGeom& g, int64_t Kdim) {
  return std::clamp<int64_t>(kColElems / std::max<int64_t>(1, Kdim * g.OW), 1, g.OH);
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

}  // namespace

namespace detail {

template <typename T>
void gemm_nhwc_forward(const ConvGeom& g, const T* x, const at::Tensor& weight, const T* b, T* y, int act) {
  const at::Tensor wt = weight.permute({0, 2, 3, 1}).contiguous();
  fwd_gemm_nhwc<T>(g, x, wt.const_data_ptr<T>(), b, y, act);
}

template <typename T>
void gemm_nchw_forward(const ConvGeom& g, const T* x, const at::Tensor& weight, const T* b, T* y, int act) {
  const at::Tensor w = weight.contiguous();
  fwd_gemm_nchw<T>(g, x, w.const_data_ptr<T>(), b, y, act);
}

// Per-thread weight-gradient accumulators [threads, OC, KH * KW * C / G], zeroed (undefined when not wanted).
inline at::Tensor gemm_accumulators(const ConvGeom& g, bool want_weight, const at::TensorOptions& opts) {
  return want_weight ? at::zeros({at::get_num_threads(), g.OC * g.KH * g.KW * (g.C / g.G)}, opts) : at::Tensor();
}

template <typename T>
at::Tensor gemm_nhwc_backward(const ConvGeom& g, const T* x, const T* gm, const at::Tensor& weight, T* dx,
                              bool want_weight, const at::TensorOptions& opts) {
  at::Tensor accs = gemm_accumulators(g, want_weight, opts);
  const at::Tensor wt = weight.permute({0, 2, 3, 1}).contiguous();
  bwd_gemm_nhwc<T>(g, x, wt.const_data_ptr<T>(), gm, dx, want_weight ? accs.mutable_data_ptr<T>() : nullptr);
  if (!want_weight) return {};
  return accs.sum(0).view({g.OC, g.KH, g.KW, g.C / g.G}).permute({0, 3, 1, 2}).contiguous();
}

template <typename T>
at::Tensor gemm_nchw_backward(const ConvGeom& g, const T* x, const T* gm, const at::Tensor& weight, T* dx,
                              bool want_weight, const at::TensorOptions& opts) {
  at::Tensor accs = gemm_accumulators(g, want_weight, opts);
  const at::Tensor w = weight.contiguous();
  bwd_gemm_nchw<T>(g, x, w.const_data_ptr<T>(), gm, dx, want_weight ? accs.mutable_data_ptr<T>() : nullptr);
  if (!want_weight) return {};
  return accs.sum(0).view({g.OC, g.C / g.G, g.KH, g.KW});
}

#define PYDLR_GEMM_INSTANCES(T)                                                                                   \
  template void gemm_nhwc_forward<T>(const ConvGeom&, const T*, const at::Tensor&, const T*, T*, int);          \
  template void gemm_nchw_forward<T>(const ConvGeom&, const T*, const at::Tensor&, const T*, T*, int);          \
  template at::Tensor gemm_nhwc_backward<T>(const ConvGeom&, const T*, const T*, const at::Tensor&, T*, bool,   \
                                            const at::TensorOptions&);                                        \
  template at::Tensor gemm_nchw_backward<T>(const ConvGeom&, const T*, const T*, const at::Tensor&, T*, bool,   \
                                            const at::TensorOptions&);
PYDLR_GEMM_INSTANCES(float)
PYDLR_GEMM_INSTANCES(double)
#undef PYDLR_GEMM_INSTANCES

}  // namespace detail

bool direct_blas() { return sgemm_ != nullptr && dgemm_ != nullptr; }

}  // namespace pydlr
