// CPU kernels of pydlr's max pooling ("valid" windows: no padding, floor mode, dilation 1).
//
// Why not torch's max_pool2d: its backward zero-fills the whole input gradient and then scatters through int64
// indices written by the forward. After a ReLU convolution that is the largest tensor of the step (64x26x26x32
// floats for the seed CNN), so the fill alone cost ~10% of a training step. Here the forward stores no
// indices, and the backward writes every element of the input gradient exactly once: for non-overlapping
// windows (stride >= kernel, the Keras default) each window's first maximal element, recomputed by comparing
// the input with the pooled output, gets the gradient and everything else (including rows and columns no
// window covers) gets zero. Overlapping windows fall back to zero-fill + scatter-add, still without indices.
//
// Tie and NaN rules match torch: the first maximum in row-major window order wins; a NaN in a window makes
// the output NaN and the gradient goes to the first NaN (torch routes it to the last one: gradients through
// NaNs are meaningless either way).
//
// Any memory layout: kernels walk the tensors through their strides, channels innermost, so channels-last
// tensors (pydlr's CPU layout) vectorise over channels; the output follows the input's memory format.
#include "conv.h"

#include <ATen/Parallel.h>

#include <cstring>

namespace pydlr {
namespace {

struct PoolGeom {
  int64_t N, C, H, W, OH, OW, kh, kw, sh, sw;
  // Element strides of the input (and of the input gradient: same layout) and of the output.
  int64_t xn, xc, xh, xw, yn, yc, yh, yw;
};

inline bool channels_last_4d(const at::Tensor& t) {
  return t.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
}

// Whether a tap holds its window's max m: v == m, or v is NaN (m is NaN exactly when a tap is, as NaN
// propagates, so no need to test m). Two compares without && so that loops over channels vectorise.
template <typename T>
PYDLR_INLINE bool tap_is_max(T v, T m) {
  return (v == m) | (v != v);
}

PoolGeom check_pool_args(const char* op, const at::Tensor& input, at::IntArrayRef kernel, at::IntArrayRef stride) {
  TORCH_CHECK(input.defined() && input.dim() == 4, op, ": input must be a 4-d (N, C, H, W) tensor; got ",
              input.defined() ? std::to_string(input.dim()) + "-d" : std::string("an undefined tensor"));
  TORCH_CHECK(input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble, op,
              ": input must be float32 or float64; got ", input.scalar_type());
  TORCH_CHECK(kernel.size() == 2 && stride.size() == 2, op, ": kernel_size and stride must have 2 values; got ",
              kernel.size(), " and ", stride.size());
  TORCH_CHECK(kernel[0] > 0 && kernel[1] > 0 && stride[0] > 0 && stride[1] > 0, op,
              ": kernel_size and stride must be positive; got kernel_size ", kernel, ", stride ", stride);
  TORCH_CHECK(input.size(0) > 0 && input.size(1) > 0, op, ": batch and channels must be non-empty; got shape ",
              input.sizes());
  PoolGeom g{};
  g.N = input.size(0);
  g.C = input.size(1);
  g.H = input.size(2);
  g.W = input.size(3);
  g.kh = kernel[0];
  g.kw = kernel[1];
  g.sh = stride[0];
  g.sw = stride[1];
  TORCH_CHECK(g.H >= g.kh && g.W >= g.kw, op, ": the input (", g.H, "x", g.W, ") is smaller than the window (",
              g.kh, "x", g.kw, ")");
  g.OH = (g.H - g.kh) / g.sh + 1;
  g.OW = (g.W - g.kw) / g.sw + 1;
  return g;
}

void set_strides(PoolGeom& g, const at::Tensor& x, const at::Tensor& y) {
  g.xn = x.stride(0);
  g.xc = x.stride(1);
  g.xh = x.stride(2);
  g.xw = x.stride(3);
  g.yn = y.stride(0);
  g.yc = y.stride(1);
  g.yh = y.stride(2);
  g.yw = y.stride(3);
}

// ------------------------------------------------------------------------------------------ channels-last
// Dense NHWC tensors (what .contiguous(ChannelsLast) gives): channel loops of fixed length V so that each
// target clone vectorises them with its own vector width.
constexpr int64_t kV = 16;

// Output row (n, oh): y = max over each window (NaN propagates, as in torch).
template <typename T>
PYDLR_INLINE void pool_fwd_row_cl_impl(const PoolGeom& g, const T* __restrict x, T* __restrict y, int64_t n,
                                       int64_t oh) {
  const int64_t C = g.C;
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    const T* xw0 = x + ((n * g.H + oh * g.sh) * g.W + ow * g.sw) * C;
    T* __restrict yp = y + ((n * g.OH + oh) * g.OW + ow) * C;
    for (int64_t c = 0; c < C; ++c) yp[c] = xw0[c];
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = (i == 0 ? 1 : 0); j < g.kw; ++j) {
        const T* __restrict xp = xw0 + (i * g.W + j) * C;
        for (int64_t c = 0; c < C; ++c) {
          const T v = xp[c], m = yp[c];
          yp[c] = (v > m || v != v) ? v : m;
        }
      }
    }
  }
}

// One window's channels [c0, c0 + len): the first tap equal to the max gets the gradient, the others zero.
template <typename T, int64_t LEN>
PYDLR_INLINE void route_window(const PoolGeom& g, const T* __restrict xw, const T* __restrict m,
                               const T* __restrict gv, T* __restrict dw, int64_t len) {
  const int64_t L = LEN > 0 ? LEN : len;
  T found[kV] = {};
  for (int64_t i = 0; i < g.kh; ++i) {
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t off = (i * g.W + j) * g.C;
      const T* __restrict xp = xw + off;
      T* __restrict dp = dw + off;
      for (int64_t c = 0; c < L; ++c) {
        const T v = xp[c];
        const bool hit = (found[c] == T(0)) & tap_is_max(v, m[c]);  // bitwise &: the loop vectorises
        dp[c] = hit ? gv[c] : T(0);
        found[c] = hit ? T(1) : found[c];
      }
    }
  }
}

// Non-overlapping windows: writes every element of dx in the input rows of output row oh and the uncovered
// rows after it (up to the next window, or the bottom edge), each exactly once.
template <typename T>
PYDLR_INLINE void pool_bwd_row_cl_impl(const PoolGeom& g, const T* x, const T* y, const T* gy, T* dx, int64_t n,
                                       int64_t oh) {
  const int64_t C = g.C, r0 = oh * g.sh, r1 = oh + 1 == g.OH ? g.H : r0 + g.sh;
  if (r1 > r0 + g.kh) {
    std::memset(dx + ((n * g.H + r0 + g.kh) * g.W) * C, 0, (r1 - r0 - g.kh) * g.W * C * sizeof(T));
  }
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    const int64_t c0 = ow * g.sw, c1 = ow + 1 == g.OW ? g.W : c0 + g.sw;
    const int64_t xoff = ((n * g.H + r0) * g.W + c0) * C, yoff = ((n * g.OH + oh) * g.OW + ow) * C;
    int64_t c = 0;
    for (; c + kV <= C; c += kV) route_window<T, kV>(g, x + xoff + c, y + yoff + c, gy + yoff + c, dx + xoff + c, kV);
    if (c < C) route_window<T, 0>(g, x + xoff + c, y + yoff + c, gy + yoff + c, dx + xoff + c, C - c);
    if (c1 > c0 + g.kw) {  // uncovered columns right of this window
      for (int64_t i = 0; i < g.kh; ++i) {
        std::memset(dx + ((n * g.H + r0 + i) * g.W + c0 + g.kw) * C, 0, (c1 - c0 - g.kw) * C * sizeof(T));
      }
    }
  }
}

PYDLR_CLONES void pool_fwd_row_cl(const PoolGeom& g, const float* x, float* y, int64_t n, int64_t oh) {
  pool_fwd_row_cl_impl<float>(g, x, y, n, oh);
}
void pool_fwd_row_cl(const PoolGeom& g, const double* x, double* y, int64_t n, int64_t oh) {
  pool_fwd_row_cl_impl<double>(g, x, y, n, oh);
}
// float, C a multiple of 16, no NaN in the pooled output: one window's 16 channels stay in vector registers
// across its taps (the generic loop above keeps its `found` flags in memory, ~4x slower).
typedef float pvf16 __attribute__((vector_size(64)));
typedef int pvi16 __attribute__((vector_size(64)));
PYDLR_INLINE pvf16 pload(const float* p) {
  pvf16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
PYDLR_INLINE void pstore(float* p, pvf16 v) { std::memcpy(p, &v, sizeof v); }

PYDLR_INLINE void pool_bwd_row_cl_v16(const PoolGeom& g, const float* x, const float* y, const float* gy, float* dx,
                                      int64_t n, int64_t oh) {
  const int64_t C = g.C, r0 = oh * g.sh, r1 = oh + 1 == g.OH ? g.H : r0 + g.sh;
  if (r1 > r0 + g.kh) {
    std::memset(dx + ((n * g.H + r0 + g.kh) * g.W) * C, 0, (r1 - r0 - g.kh) * g.W * C * sizeof(float));
  }
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    const int64_t c0 = ow * g.sw, c1 = ow + 1 == g.OW ? g.W : c0 + g.sw;
    const int64_t xoff = ((n * g.H + r0) * g.W + c0) * C, yoff = ((n * g.OH + oh) * g.OW + ow) * C;
    for (int64_t c = 0; c < C; c += 16) {
      const pvf16 m = pload(y + yoff + c);
      const pvi16 gv = reinterpret_cast<pvi16>(pload(gy + yoff + c));
      pvi16 found = pvi16{};
      for (int64_t i = 0; i < g.kh; ++i) {
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t off = xoff + (i * g.W + j) * C + c;
          const pvf16 v = pload(x + off);
          // Without NaNs, v <= m always, so "not below m" is v == m. One compare: GCC 12 scalarises an
          // AVX-512 vector expression that combines two compares (~10x slower).
          const pvi16 hit = ~(v < m) & ~found;
          pstore(dx + off, reinterpret_cast<pvf16>(gv & hit));
          found |= hit;
        }
      }
    }
    if (c1 > c0 + g.kw) {
      for (int64_t i = 0; i < g.kh; ++i) {
        std::memset(dx + ((n * g.H + r0 + i) * g.W + c0 + g.kw) * C, 0, (c1 - c0 - g.kw) * C * sizeof(float));
      }
    }
  }
}

PYDLR_CLONES void pool_bwd_row_cl(const PoolGeom& g, const float* x, const float* y, const float* gy, float* dx,
                                  int64_t n, int64_t oh, bool has_nan) {
  if (g.C % 16 == 0 && !has_nan) {
    pool_bwd_row_cl_v16(g, x, y, gy, dx, n, oh);
  } else {
    pool_bwd_row_cl_impl<float>(g, x, y, gy, dx, n, oh);
  }
}
void pool_bwd_row_cl(const PoolGeom& g, const double* x, const double* y, const double* gy, double* dx, int64_t n,
                     int64_t oh, bool /*has_nan*/) {
  pool_bwd_row_cl_impl<double>(g, x, y, gy, dx, n, oh);
}

// ------------------------------------------------------------------------------------------ any strides
// The same through strides (NCHW and other layouts): y[n, :, oh, ow] = max over the window.
template <typename T>
void pool_fwd_row(const PoolGeom& g, const T* x, T* y, int64_t n, int64_t oh) {
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    const T* xw0 = x + n * g.xn + oh * g.sh * g.xh + ow * g.sw * g.xw;
    T* yp = y + n * g.yn + oh * g.yh + ow * g.yw;
    for (int64_t c = 0; c < g.C; ++c) {
      T m = xw0[c * g.xc];
      for (int64_t i = 0; i < g.kh; ++i) {
        for (int64_t j = 0; j < g.kw; ++j) {
          const T v = xw0[c * g.xc + i * g.xh + j * g.xw];
          m = (v > m || v != v) ? v : m;
        }
      }
      yp[c * g.yc] = m;
    }
  }
}

// Any layout or overlapping windows (stride < kernel), one image: dx[n] (zeroed by the caller) += routed
// gradients. One task per image, so the scatter never races.
template <typename T>
void pool_bwd_image_scatter(const PoolGeom& g, const T* x, const T* y, const T* gy, T* dx, int64_t n, int64_t gyn,
                            int64_t gyc, int64_t gyh, int64_t gyw) {
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      for (int64_t c = 0; c < g.C; ++c) {
        const T m = y[n * g.yn + c * g.yc + oh * g.yh + ow * g.yw];
        const int64_t base = n * g.xn + c * g.xc + oh * g.sh * g.xh + ow * g.sw * g.xw;
        bool done = false;
        for (int64_t i = 0; i < g.kh && !done; ++i) {
          for (int64_t j = 0; j < g.kw && !done; ++j) {
            const int64_t off = base + i * g.xh + j * g.xw;
            const T v = x[off];
            if (tap_is_max(v, m)) {
              dx[off] += gy[n * gyn + c * gyc + oh * gyh + ow * gyw];
              done = true;
            }
          }
        }
      }
    }
  }
}

}  // namespace

at::Tensor max_pool2d_cpu(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride) {
  PoolGeom g = check_pool_args("pydlr::max_pool2d", input, kernel_size, stride);
  const auto fmt = channels_last_4d(input) ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const at::Tensor x = input.contiguous(fmt);
  at::Tensor y = at::empty({g.N, g.C, g.OH, g.OW}, input.options().memory_format(fmt));
  set_strides(g, x, y);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pydlr_max_pool2d", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    const bool cl = fmt == at::MemoryFormat::ChannelsLast;
    at::parallel_for(0, g.N * g.OH, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t t = b0; t < b1; ++t) {
        if (cl) {
          pool_fwd_row_cl(g, xp, yp, t / g.OH, t % g.OH);
        } else {
          pool_fwd_row(g, xp, yp, t / g.OH, t % g.OH);
        }
      }
    });
  });
  return y;
}

at::Tensor max_pool2d_backward_cpu(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& output,
                                   at::IntArrayRef kernel_size, at::IntArrayRef stride) {
  PoolGeom g = check_pool_args("pydlr::max_pool2d_backward", input, kernel_size, stride);
  for (const at::Tensor* t : {&grad_output, &output}) {
    TORCH_CHECK(t->defined() && t->dim() == 4 && t->size(0) == g.N && t->size(1) == g.C && t->size(2) == g.OH &&
                    t->size(3) == g.OW,
                "pydlr::max_pool2d_backward: grad_output and output must have shape [", g.N, ", ", g.C, ", ", g.OH,
                ", ", g.OW, "]");
    TORCH_CHECK(t->scalar_type() == input.scalar_type() && t->device() == input.device(),
                "pydlr::max_pool2d_backward: grad_output and output must match the input's dtype and device");
  }
  const auto fmt = channels_last_4d(input) ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const at::Tensor x = input.contiguous(fmt);
  const at::Tensor y = output.contiguous(fmt);
  const at::Tensor gy = grad_output.contiguous(fmt);
  const bool cl = fmt == at::MemoryFormat::ChannelsLast && g.sh >= g.kh && g.sw >= g.kw;
  at::Tensor dx = at::empty({g.N, g.C, g.H, g.W}, input.options().memory_format(fmt));
  if (!cl) dx.zero_();
  set_strides(g, x, y);
  const int64_t gyn = gy.stride(0), gyc = gy.stride(1), gyh = gy.stride(2), gyw = gy.stride(3);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pydlr_max_pool2d_backward", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    const scalar_t* gp = gy.const_data_ptr<scalar_t>();
    scalar_t* dp = dx.mutable_data_ptr<scalar_t>();
    if (cl) {
      // NaN in a window (then in its max) needs the two-compare test; checked once, not per tap.
      const bool has_nan = at::isnan(y).any().item<bool>();
      at::parallel_for(0, g.N * g.OH, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t t = b0; t < b1; ++t) pool_bwd_row_cl(g, xp, yp, gp, dp, t / g.OH, t % g.OH, has_nan);
      });
    } else {
      at::parallel_for(0, g.N, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t n = b0; n < b1; ++n) pool_bwd_image_scatter(g, xp, yp, gp, dp, n, gyn, gyc, gyh, gyw);
      });
    }
  });
  return dx;
}

}  // namespace pydlr
