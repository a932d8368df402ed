// CPU kernels of pydlr's max pooling ("valid" windows: no padding, floor mode, dilation 1).
//
// Why not torch's max_pool2d: its forward stores int64 indices (8 bytes an output) and its backward
// zero-fills the whole input gradient before scattering into it. After a ReLU convolution that gradient
// is the largest tensor of the step (64x26x26x32 floats for the seed CNN). Here the forward stores the
// window position of each maximum in one byte (uint8 "argmax", same shape and layout as the output), and
// for non-overlapping windows (stride >= kernel, the Keras default) in channels-last the backward writes
// every element of the input gradient exactly once: the gradient at the argmax tap, zero at the others and
// in rows/columns no window covers. Other layouts and overlapping windows zero-fill and scatter-add.
//
// Ties and NaN as torch: the first maximum in row-major window order wins; a NaN replaces the max (so the
// output is NaN and the gradient goes to the last NaN of the window).
#include "conv.h"

#include <ATen/Parallel.h>
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>

#include <cstring>

namespace pydlr {
namespace {

inline at::MemoryFormat format_of(const at::Tensor& t) {
  return t.suggest_memory_format() == at::MemoryFormat::ChannelsLast ? at::MemoryFormat::ChannelsLast
                                                                      : at::MemoryFormat::Contiguous;
}

PoolGeom check_pool_args(const char* op, const at::Tensor& input, at::IntArrayRef kernel, at::IntArrayRef stride) {
  TORCH_CHECK(input.defined() && input.dim() == 4, op, ": input must be a 4-d (N, C, H, W) tensor; got ",
              input.defined() ? std::to_string(input.dim()) + "-d" : std::string("an undefined tensor"));
  TORCH_CHECK(input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble, op,
              ": input must be float32 or float64; got ", input.scalar_type());
  TORCH_CHECK(input.device().is_cpu(), op, ": CPU kernel called with a ", input.device(), " tensor");
  TORCH_CHECK(kernel.size() == 2 && stride.size() == 2, op, ": kernel_size and stride must have 2 values; got ",
              kernel.size(), " and ", stride.size());
  TORCH_CHECK(kernel[0] > 0 && kernel[1] > 0 && stride[0] > 0 && stride[1] > 0, op,
              ": kernel_size and stride must be positive; got kernel_size ", kernel, ", stride ", stride);
  TORCH_CHECK(kernel[0] * kernel[1] <= 255, op, ": windows of at most 255 elements (the argmax is one byte); got ",
              kernel);
  TORCH_CHECK(input.size(0) > 0 && input.size(1) > 0, op, ": batch and channels must be non-empty; got shape ",
              input.sizes());
  const PoolGeom g = detail::pool_geometry(input.size(0), input.size(1), input.size(2), input.size(3), kernel, stride);
  TORCH_CHECK(g.OH > 0 && g.OW > 0, op, ": the input (", g.H, "x", g.W, ") is smaller than the window (", g.kh, "x",
              g.kw, ")");
  return g;
}

// ------------------------------------------------------------------------------------------ forward
// Output row (n, oh): y = max over each window, a = its tap (i * kw + j) when `a` is not null. Channels
// innermost: with channel strides of 1 (channels-last) the loops vectorise.
template <typename T, bool CL>
PYDLR_INLINE void pool_fwd_row_impl(const PoolGeom& g, const T* __restrict x, Strides4 xs, T* __restrict y,
                                    uint8_t* __restrict a, Strides4 ys, int64_t n, int64_t oh) {
  const int64_t xc = CL ? 1 : xs.c, yc = CL ? 1 : ys.c;
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    const T* xw0 = x + n * xs.n + oh * g.sh * xs.h + ow * g.sw * xs.w;
    const int64_t yo = n * ys.n + oh * ys.h + ow * ys.w;
    T* __restrict yp = y + yo;
    uint8_t* __restrict ap = a ? a + yo : nullptr;
    for (int64_t c = 0; c < g.C; ++c) yp[c * yc] = xw0[c * xc];
    if (ap) {
      for (int64_t c = 0; c < g.C; ++c) ap[c * yc] = 0;
    }
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = (i == 0 ? 1 : 0); j < g.kw; ++j) {
        const T* __restrict xp = xw0 + i * xs.h + j * xs.w;
        const uint8_t tap = static_cast<uint8_t>(i * g.kw + j);
        // torch's rule: take v if greater, or if NaN. Written as two selects of one compare each: GCC turns
        // `(v > m) | (v != v)` into scalar branches, 6-16x slower on images with many equal (zero) values.
        if (ap) {
          for (int64_t c = 0; c < g.C; ++c) {
            const T v = xp[c * xc], m = yp[c * yc];
            const uint8_t a0 = ap[c * yc];
            const T bigger = v > m ? v : m;
            const uint8_t at = v > m ? tap : a0;
            yp[c * yc] = v != v ? v : bigger;
            ap[c * yc] = v != v ? tap : at;
          }
        } else {
          for (int64_t c = 0; c < g.C; ++c) {
            const T v = xp[c * xc], m = yp[c * yc];
            const T bigger = v > m ? v : m;
            yp[c * yc] = v != v ? v : bigger;
          }
        }
      }
    }
  }
}

// Float, channels-last, C % 16 == 0: 16 channels at a time with the argmax in int lanes (the loop above mixes
// byte and float lanes, which GCC leaves unvectorised). Written as per-lane loops of single-compare selects:
// GCC 12 scalarises compares of its float vector types in the AVX-512 clone, but vectorises these loops.
PYDLR_INLINE void pool_fwd_row_cl_v(const PoolGeom& g, const float* x, Strides4 xs, float* y, uint8_t* a, Strides4 ys,
                                    int64_t n, int64_t oh) {
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    const float* xw0 = x + n * xs.n + oh * g.sh * xs.h + ow * g.sw * xs.w;
    const int64_t yo = n * ys.n + oh * ys.h + ow * ys.w;
    for (int64_t c = 0; c < g.C; c += 16) {
      float m[16];
      int am[16];
      for (int k = 0; k < 16; ++k) {
        m[k] = xw0[c + k];
        am[k] = 0;
      }
      for (int64_t i = 0; i < g.kh; ++i) {
        for (int64_t j = (i == 0 ? 1 : 0); j < g.kw; ++j) {
          const float* __restrict xp = xw0 + i * xs.h + j * xs.w + c;
          const int tap = static_cast<int>(i * g.kw + j);
          for (int k = 0; k < 16; ++k) {
            const float v = xp[k];
            const float bigger = v > m[k] ? v : m[k];
            const int at = v > m[k] ? tap : am[k];
            m[k] = v != v ? v : bigger;
            am[k] = v != v ? tap : at;
          }
        }
      }
      // Whole-vector stores (element-wise ones were assembled lane by lane through the stack).
      std::memcpy(y + yo + c, m, sizeof m);
      if (a) {
        typedef uint8_t vu8x16 __attribute__((vector_size(16)));
        vi16 av;
        std::memcpy(&av, am, sizeof am);
        const vu8x16 bytes = __builtin_convertvector(av, vu8x16);
        std::memcpy(a + yo + c, &bytes, sizeof bytes);
      }
    }
  }
}

PYDLR_CLONES void pool_fwd_row_cl(const PoolGeom& g, const float* x, Strides4 xs, float* y, uint8_t* a, Strides4 ys,
                                  int64_t n, int64_t oh) {
  if (g.C % 16 == 0 && xs.c == 1 && ys.c == 1) {
    pool_fwd_row_cl_v(g, x, xs, y, a, ys, n, oh);
  } else {
    pool_fwd_row_impl<float, true>(g, x, xs, y, a, ys, n, oh);
  }
}
void pool_fwd_row_cl(const PoolGeom& g, const double* x, Strides4 xs, double* y, uint8_t* a, Strides4 ys, int64_t n,
                     int64_t oh) {
  pool_fwd_row_impl<double, true>(g, x, xs, y, a, ys, n, oh);
}
template <typename T>
void pool_fwd_row_strided(const PoolGeom& g, const T* x, Strides4 xs, T* y, uint8_t* a, Strides4 ys, int64_t n,
                          int64_t oh) {
  pool_fwd_row_impl<T, false>(g, x, xs, y, a, ys, n, oh);
}

// ------------------------------------------------------------------------------------------ backward
// Channels-last, non-overlapping windows: every element of dx in the input rows of output row oh and the
// uncovered rows after it (up to the next window, or the bottom edge), each written once.
template <typename T>
PYDLR_INLINE void pool_bwd_row_cl_impl(const PoolGeom& g, const uint8_t* a, const T* gy, T* dx, int64_t n,
                                       int64_t oh) {
  const int64_t C = g.C, r0 = oh * g.sh, r1 = oh + 1 == g.OH ? g.H : r0 + g.sh;
  if (r1 > r0 + g.kh) std::memset(dx + (n * g.H + r0 + g.kh) * g.W * C, 0, (r1 - r0 - g.kh) * g.W * C * sizeof(T));
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    const int64_t c0 = ow * g.sw, c1 = ow + 1 == g.OW ? g.W : c0 + g.sw;
    const int64_t yoff = ((n * g.OH + oh) * g.OW + ow) * C;
    const uint8_t* __restrict ap = a + yoff;
    const T* __restrict gp = gy + yoff;
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        T* __restrict dp = dx + ((n * g.H + r0 + i) * g.W + c0 + j) * C;
        const uint8_t tap = static_cast<uint8_t>(i * g.kw + j);
        for (int64_t c = 0; c < C; ++c) dp[c] = ap[c] == tap ? gp[c] : T(0);
      }
      if (c1 > c0 + g.kw) {  // uncovered columns right of this window
        std::memset(dx + ((n * g.H + r0 + i) * g.W + c0 + g.kw) * C, 0, (c1 - c0 - g.kw) * C * sizeof(T));
      }
    }
  }
}

PYDLR_CLONES void pool_bwd_row_cl(const PoolGeom& g, const uint8_t* a, const float* gy, float* dx, int64_t n,
                                  int64_t oh) {
  pool_bwd_row_cl_impl<float>(g, a, gy, dx, n, oh);
}
void pool_bwd_row_cl(const PoolGeom& g, const uint8_t* a, const double* gy, double* dx, int64_t n, int64_t oh) {
  pool_bwd_row_cl_impl<double>(g, a, gy, dx, n, oh);
}

// Any layout or overlapping windows, one image: dx[n] (zeroed by the caller) += gradient at each argmax. One
// task per image, so the scatter never races.
template <typename T>
void pool_bwd_image_scatter(const PoolGeom& g, const uint8_t* a, Strides4 as, const T* gy, Strides4 gs, T* dx,
                            Strides4 xs, int64_t n) {
  for (int64_t c = 0; c < g.C; ++c) {
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t tap = a[n * as.n + c * as.c + oh * as.h + ow * as.w];
        const int64_t ih = oh * g.sh + tap / g.kw, iw = ow * g.sw + tap % g.kw;
        dx[n * xs.n + c * xs.c + ih * xs.h + iw * xs.w] += gy[n * gs.n + c * gs.c + oh * gs.h + ow * gs.w];
      }
    }
  }
}

std::tuple<at::Tensor, at::Tensor> pool_forward(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                at::IntArrayRef stride, bool with_argmax) {
  const PoolGeom g = check_pool_args("pydlr::max_pool2d", input, kernel_size, stride);
  const auto fmt = format_of(input);
  const at::Tensor x = input.contiguous(fmt);
  at::Tensor y = at::empty({g.N, g.C, g.OH, g.OW}, input.options().memory_format(fmt));
  at::Tensor a = with_argmax ? at::empty({g.N, g.C, g.OH, g.OW}, input.options().dtype(at::kByte).memory_format(fmt))
                             : at::Tensor();
  const Strides4 xs = strides_of(x), ys = strides_of(y);
  const bool cl = fmt == at::MemoryFormat::ChannelsLast;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pydlr_max_pool2d", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    uint8_t* ap = a.defined() ? a.mutable_data_ptr<uint8_t>() : nullptr;
    at::parallel_for(0, g.N * g.OH, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t t = b0; t < b1; ++t) {
        if (cl) {
          pool_fwd_row_cl(g, xp, xs, yp, ap, ys, t / g.OH, t % g.OH);
        } else {
          pool_fwd_row_strided(g, xp, xs, yp, ap, ys, t / g.OH, t % g.OH);
        }
      }
    });
  });
  return {y, a};
}

}  // namespace

namespace detail {
PoolGeom pool_geometry(int64_t N, int64_t C, int64_t H, int64_t W, at::IntArrayRef kernel, at::IntArrayRef stride) {
  PoolGeom p{N, C, H, W, 0, 0, kernel[0], kernel[1], stride[0], stride[1]};
  if (H >= p.kh && W >= p.kw) {
    p.OH = (H - p.kh) / p.sh + 1;
    p.OW = (W - p.kw) / p.sw + 1;
  }
  return p;
}
void pool_fwd_row_cl(const PoolGeom& g, const float* x, Strides4 xs, float* y, uint8_t* a, Strides4 ys, int64_t n,
                     int64_t oh) {
  ::pydlr::pool_fwd_row_cl(g, x, xs, y, a, ys, n, oh);
}
void pool_bwd_row_cl(const PoolGeom& g, const uint8_t* a, const float* gy, float* dx, int64_t n, int64_t oh) {
  ::pydlr::pool_bwd_row_cl(g, a, gy, dx, n, oh);
}
}  // namespace detail

at::Tensor max_pool2d_cpu(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride) {
  return std::get<0>(pool_forward(input, kernel_size, stride, false));
}

std::tuple<at::Tensor, at::Tensor> max_pool2d_with_argmax_cpu(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                              at::IntArrayRef stride) {
  return pool_forward(input, kernel_size, stride, true);
}

at::Tensor max_pool2d_backward_cpu(const at::Tensor& grad_output, const at::Tensor& argmax, const at::Tensor& input,
                                   at::IntArrayRef kernel_size, at::IntArrayRef stride) {
  const PoolGeom g = check_pool_args("pydlr::max_pool2d_backward", input, kernel_size, stride);
  for (const at::Tensor* t : {&grad_output, &argmax}) {
    TORCH_CHECK(t->defined() && t->dim() == 4 && t->size(0) == g.N && t->size(1) == g.C && t->size(2) == g.OH &&
                    t->size(3) == g.OW,
                "pydlr::max_pool2d_backward: grad_output and argmax must have shape [", g.N, ", ", g.C, ", ", g.OH,
                ", ", g.OW, "]");
    TORCH_CHECK(t->device() == input.device(), "pydlr::max_pool2d_backward: all tensors must be on ", input.device());
  }
  TORCH_CHECK(grad_output.scalar_type() == input.scalar_type(),
              "pydlr::max_pool2d_backward: grad_output must have the input's dtype ", input.scalar_type(), "; got ",
              grad_output.scalar_type());
  TORCH_CHECK(argmax.scalar_type() == at::kByte, "pydlr::max_pool2d_backward: argmax must be uint8; got ",
              argmax.scalar_type());
  const auto fmt = format_of(input);
  const at::Tensor a = argmax.contiguous(fmt);
  const at::Tensor gy = grad_output.contiguous(fmt);
  const bool one_pass = fmt == at::MemoryFormat::ChannelsLast && g.sh >= g.kh && g.sw >= g.kw;
  at::Tensor dx = at::empty({g.N, g.C, g.H, g.W}, input.options().memory_format(fmt));
  if (!one_pass) dx.zero_();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "pydlr_max_pool2d_backward", [&] {
    const uint8_t* ap = a.const_data_ptr<uint8_t>();
    const scalar_t* gp = gy.const_data_ptr<scalar_t>();
    scalar_t* dp = dx.mutable_data_ptr<scalar_t>();
    if (one_pass) {
      at::parallel_for(0, g.N * g.OH, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t t = b0; t < b1; ++t) pool_bwd_row_cl(g, ap, gp, dp, t / g.OH, t % g.OH);
      });
    } else {
      const Strides4 as = strides_of(a), gs = strides_of(gy), xs = strides_of(dx);
      at::parallel_for(0, g.N, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t n = b0; n < b1; ++n) pool_bwd_image_scatter(g, ap, as, gp, gs, dp, xs, n);
      });
    }
  });
  return dx;
}

}  // namespace pydlr
