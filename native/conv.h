// Shared declarations of pydlr's native operators (CPU kernels in the *_cpu.cpp files, CUDA in conv_cuda.cu,
// registration and autograd in ops.cpp). Kept light: ATen/ATen.h costs ~18 s of compile time in every translation
// unit that includes it (ATen/core/Tensor.h: ~2 s), so each .cpp includes the ATen/ops/*.h headers of the functions
// it calls.
#pragma once

#include <ATen/core/Tensor.h>
#ifdef __CUDACC__
#include <ATen/ATen.h>  // conv_cuda.cu calls ATen's functions (at::empty, at::mm, ...) through this header
#endif

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// Runtime ISA dispatch for the hand-written float kernels: one clone per level, picked at load time.
#define PYDLR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PYDLR_CLONES
#endif
// Helpers and lambdas inside the clones are always inlined: one the inliner leaves out of line (its budget depends on
// the size of the translation unit) is compiled for the baseline ISA, without FMA and with 512-bit vectors emulated.
#define PYDLR_INLINE __attribute__((always_inline)) inline

namespace pydlr {

#ifndef __CUDACC__  // CPU kernel helpers: conv_cuda.cu does not use them (nvcc's front end need not parse them)
// 16-lane vectors (GCC vector extensions: each target clone compiles them to its own ISA, zmm, ymm or xmm).
typedef float vf16 __attribute__((vector_size(64)));
typedef int vi16 __attribute__((vector_size(64)));
PYDLR_INLINE vf16 vload(const float* p) {
  vf16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
PYDLR_INLINE void vstore(float* p, vf16 v) { std::memcpy(p, &v, sizeof v); }

// Activation (0 none, 1 relu, 2 relu6) of 16 lanes. Bitwise selects: a vector ?: gets scalarised by GCC in some
// clones.
PYDLR_INLINE vf16 act_v(vf16 v, int act) {
  if (act == 0) return v;
  const vi16 neg = v < 0.0f;  // NaN stays NaN, as in torch
  v = (vf16)((vi16)v & ~neg);
  if (act == 2) {
    const vi16 big = v > 6.0f;
    const vf16 six = vf16{} + 6.0f;
    v = (vf16)(((vi16)v & ~big) | ((vi16)six & big));
  }
  return v;
}

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
#endif  // __CUDACC__

enum class Act : int { None = 0, Relu = 1, Relu6 = 2 };

// Parses "none" / "relu" / "relu6"; TORCH_CHECK error otherwise.
Act parse_act(c10::string_view name);

// Element strides of a 4-d (N, C, H, W) tensor, whatever its memory format.
struct Strides4 {
  int64_t n, c, h, w;
};
inline Strides4 strides_of(const at::Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2), t.stride(3)}; }

// Geometry of one max pooling (no padding, floor mode, dilation 1).
struct PoolGeom {
  int64_t N, C, H, W, OH, OW, kh, kw, sh, sw;
};

// Geometry of one convolution, validated.
struct ConvGeom {
  int64_t N, C, H, W;       // input
  int64_t OC, KH, KW;       // weight (OC, C / G, KH, KW)
  int64_t OH, OW;           // output
  int64_t sh, sw, ph, pw, dh, dw, G;
};

#ifndef __CUDACC__  // valid_range is a CPU helper
// Output columns [lo, hi) whose taps all read inside the input row: the interior, free of padding checks.
inline void interior_columns(const ConvGeom& g, int64_t& lo, int64_t& hi) {
  lo = 0;
  hi = g.OW;
  for (int64_t kw = 0; kw < g.KW; ++kw) {
    int64_t l, h;
    valid_range(kw * g.dw - g.pw, g.sw, g.W, g.OW, l, h);
    lo = std::max(lo, l);
    hi = std::min(hi, h);
  }
  hi = std::max(lo, hi);
}
#endif

// The input gradient of a stride-1, dilation-1 convolution is a convolution itself: the output gradient correlated
// with the flipped, transposed kernel, padding K - 1 - p (meaningful for p <= K - 1). Its geometry.
inline ConvGeom input_grad_geometry(const ConvGeom& g) {
  ConvGeom d = g;
  d.C = g.OC;
  d.OC = g.C;
  d.H = g.OH;
  d.W = g.OW;
  d.OH = g.H;
  d.OW = g.W;
  d.ph = g.KH - 1 - g.ph;
  d.pw = g.KW - 1 - g.pw;
  return d;
}

inline bool is_pointwise(const ConvGeom& g) {
  return g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

// Shape thresholds of the CPU kernel choice (conv_cpu.cpp) and of the kernels they select; pydlr/ops.py reads
// kTinyPlane from the extension (_C.TINY_PLANE).
// Reduction length (C/G * KH * KW) up to which the general direct kernels beat im2col + GEMM.
constexpr int64_t kDirectMaxK = 16;
// Reduction length (C * KH * KW) up to which the dense direct and NCHW "wide" kernels run (few input channels).
constexpr int64_t kDenseDirectMaxK = 32;
// Output positions per image below which a GEMM convolution is "small" (batched over images; pydlr's own path).
constexpr int64_t kSmallPlane = 64;
// Below this, pydlr's own channels-last GEMM path beats oneDNN (3x3 output planes: the seed's 64->64 at 5x5 and
// MobileNetV2's last stages, 1.03-1.09x); at 6x6 oneDNN is ahead (0.89-1.05x), so those take the oneDNN route.
constexpr int64_t kTinyPlane = 16;

// Validates shapes, dtypes, devices and hyper-parameters with TORCH_CHECK (clear messages, before any work)
// and returns the geometry. `op` names the operator in the messages.
ConvGeom check_conv_args(const char* op, const at::Tensor& input, const at::Tensor& weight,
                         const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                         at::IntArrayRef dilation, int64_t groups);

at::Tensor conv2d_act_cpu(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                          c10::string_view activation);

// Name of the CPU forward kernel conv2d_act_cpu picks for these arguments ("dense_direct", "depthwise_nhwc",
// "winograd_f43", "onednn", ...), the same for inference and training: lets Python choose between the native op
// and torch's per shape (pydlr.ops.native_wins).
std::string conv2d_cpu_path(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups);

// grad_output is the gradient w.r.t. the activated output; `output` (the activated output) is needed when
// activation != "none" to mask the gradient. Returns (grad_input, grad_weight, grad_bias); entries whose
// output_mask is false are undefined tensors.
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
    const std::optional<at::Tensor>& output, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef dilation, int64_t groups, c10::string_view activation, std::array<bool, 3> output_mask);

// The oneDNN route (conv_onednn.cpp): forward with the activation as a oneDNN post-op, backward through ATen's
// convolution_backward on the already-masked gradient; float32. Available when this torch has oneDNN and the
// route is enabled (set_onednn_enabled(false) runs pydlr's own kernels for every shape).
bool onednn_available();
bool onednn_present();  // whether this torch has oneDNN and its fused convolution, enabled or not
bool onednn_enabled();
void set_onednn_enabled(bool enabled);
at::Tensor onednn_conv2d_act(const ConvGeom& g, const at::Tensor& input, const at::Tensor& weight,
                             const at::Tensor& bias, int act);
std::tuple<at::Tensor, at::Tensor, at::Tensor> onednn_conv2d_backward(const ConvGeom& g, const at::Tensor& grad,
                                                                      const at::Tensor& input,
                                                                      const at::Tensor& weight,
                                                                      std::array<bool, 3> output_mask);

// Max pooling without padding (floor mode, dilation 1), any stride; pool_cpu.cpp. For training, the forward also
// returns each maximum's window position as one byte (argmax, the output's shape and layout); the backward
// reads only that and the gradient (`input` gives the gradient's shape and layout, its values are not read).
at::Tensor max_pool2d_cpu(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride);
std::tuple<at::Tensor, at::Tensor> max_pool2d_with_argmax_cpu(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                              at::IntArrayRef stride);
at::Tensor max_pool2d_backward_cpu(const at::Tensor& grad_output, const at::Tensor& argmax, const at::Tensor& input,
                                   at::IntArrayRef kernel_size, at::IntArrayRef stride);

// Convolution + bias + activation + max pooling in one pass (conv_pool_cpu.cpp), for the layers where the
// convolution is the dense direct kernel (few input channels: the seed's first layer) and the pooling windows do
// not overlap, or the Winograd F(4x4, 3x3) kernel with 2x2 windows of stride 2 (the seed's second layer). The
// full-resolution activation is never written: the direct kernel computes the convolution rows one pooling row
// needs into an L1 tile and pools them, and its backward rebuilds the (mostly zero) gradient rows the same way; the
// Winograd kernel pools each 4x4 output tile in its output transform. Equal to max_pool2d(conv2d_act(...)) for
// every input; the fused kernel runs where `conv2d_act_pool_fusable`.
bool conv2d_act_pool_fusable(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef stride,
                             at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                             c10::string_view activation, at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride);
at::Tensor conv2d_act_pool_cpu(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                               at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                               c10::string_view activation, at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride);
// Training forward: (pooled output, argmax) as max_pool2d_with_argmax of the activated convolution. Fusable only.
std::tuple<at::Tensor, at::Tensor> conv2d_act_pool_with_argmax_cpu(
    const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
    at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, c10::string_view activation,
    at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride);
// (grad_input, grad_weight, grad_bias) from the gradient of the pooled output, its argmax and the pooled output
// (for the activation's derivative). Fusable only.
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_act_pool_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& argmax, const at::Tensor& output, const at::Tensor& input,
    const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    int64_t groups, c10::string_view activation, at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride,
    std::array<bool, 3> output_mask);

// The same three operators in bfloat16 on AMX tiles (conv_pool_amx.cpp), what CPU autocast to bfloat16 runs:
// inputs, weights and output gradient rounded to bf16, sums and results float32. 3x3 stride-1 convolutions with
// equal padding on both axes, C and OC multiples of 32 up to 256, 2x2 windows of stride 2, float32 tensors, on a
// CPU (and OS) with AMX-BF16; `conv2d_act_pool_bf16_fusable` says where.
bool amx_bf16_usable();
bool conv2d_act_pool_bf16_fusable(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef stride,
                                  at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                  c10::string_view activation, at::IntArrayRef pool_kernel,
                                  at::IntArrayRef pool_stride);
at::Tensor conv2d_act_pool_bf16_cpu(const at::Tensor& input, const at::Tensor& weight,
                                    const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                    at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                    c10::string_view activation, at::IntArrayRef pool_kernel,
                                    at::IntArrayRef pool_stride);
std::tuple<at::Tensor, at::Tensor> conv2d_act_pool_bf16_with_argmax_cpu(
    const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
    at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, c10::string_view activation,
    at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride);
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_act_pool_bf16_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& argmax, const at::Tensor& output, const at::Tensor& input,
    const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    int64_t groups, c10::string_view activation, at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride,
    std::array<bool, 3> output_mask);
namespace detail {
// The kernels behind them, on validated geometry (bias may be undefined; argmax only when with_argmax). Unpooled
// (pooled false), the same kernels give the activated convolution and its backward (argmax undefined; output
// undefined when act is none), what CPU bf16 autocast runs for pydlr::conv2d_act where conv_amx_ok.
bool conv_pool_amx_ok(const ConvGeom& g, const PoolGeom& p, const at::Tensor& input, const at::Tensor& weight);
bool conv_amx_ok(const ConvGeom& g, const at::Tensor& input, const at::Tensor& weight);
std::tuple<at::Tensor, at::Tensor> conv_pool_amx_forward(const ConvGeom& g, int act, const at::Tensor& input,
                                                         const at::Tensor& weight, const at::Tensor& bias,
                                                         bool with_argmax, bool pooled = true);
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_pool_amx_backward(const ConvGeom& g, int act,
                                                                      const at::Tensor& grad, const at::Tensor& argmax,
                                                                      const at::Tensor& output,
                                                                      const at::Tensor& input,
                                                                      const at::Tensor& weight,
                                                                      std::array<bool, 3> mask, bool pooled = true);
}  // namespace detail
// The activated convolution in bfloat16 on AMX tiles (conv_pool_amx.cpp; same shapes as above, no pooling).
bool conv2d_act_bf16_fusable(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef stride,
                             at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups);
at::Tensor conv2d_act_bf16_cpu(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                               at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                               int64_t groups, c10::string_view activation);
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward_bf16_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
    const std::optional<at::Tensor>& output, at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    int64_t groups, c10::string_view activation, std::array<bool, 3> output_mask);

// Adam / AdamW update of a list of CPU float32 tensors in place, as torch.optim.Adam's (optim_cpu.cpp); each
// step counter (one-element float32 tensor) is incremented first.
void adam_step_(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                const std::vector<at::Tensor>& exp_avgs, const std::vector<at::Tensor>& exp_avg_sqs,
                const std::vector<at::Tensor>& steps, double lr, double beta1, double beta2, double eps,
                double weight_decay, bool decoupled);

// The CPU kernel families, by file, as conv_cpu.cpp (the kernel choice) and the fused and pooling operators call
// them. x, y: input and output in the path's layout (NHWC or NCHW, contiguous); gm: the gradient w.r.t. the
// convolution's output, activation mask applied; dx: the input gradient in x's layout, or null when not wanted.
// `weight` is the operator's [OC, C / G, KH, KW] tensor (each kernel lays it out as it needs); T is float or double.
namespace detail {
// GEMM (gemm_cpu.cpp): blocked im2col + MKL GEMM, bias and activation on each block. The backward writes dx (zeroed
// by the caller unless pointwise) and returns the weight gradient when want_weight.
template <typename T>
void gemm_nhwc_forward(const ConvGeom& g, const T* x, const at::Tensor& weight, const T* b, T* y, int act);
template <typename T>
void gemm_nchw_forward(const ConvGeom& g, const T* x, const at::Tensor& weight, const T* b, T* y, int act);
template <typename T>
at::Tensor gemm_nhwc_backward(const ConvGeom& g, const T* x, const T* gm, const at::Tensor& weight, T* dx,
                              bool want_weight, const at::TensorOptions& opts);
template <typename T>
at::Tensor gemm_nchw_backward(const ConvGeom& g, const T* x, const T* gm, const at::Tensor& weight, T* dx,
                              bool want_weight, const at::TensorOptions& opts);

// Direct (direct_cpu.cpp): short reductions without im2col. NHWC rows (groups 1) and NCHW planes (any groups,
// depthwise included).
template <typename T>
void direct_nhwc_forward(const ConvGeom& g, const T* x, const at::Tensor& weight, const T* b, T* y, int act);
template <typename T>
void direct_nchw_forward(const ConvGeom& g, const T* x, const at::Tensor& weight, const T* b, T* y, int act);
// NCHW "wide" kernel: groups 1, stride 1, no padding, C * KH * KW <= kDenseDirectMaxK. Its weight and bias
// gradients (dW [OC, C, KH, KW], db [OC] when want_bias) mask the NCHW gradient `grad` on the fly with the
// activated output `out` (undefined when act == 0).
bool nchw_wide_ok(const ConvGeom& g);
template <typename T>
void wide_nchw_forward(const ConvGeom& g, const T* x, const at::Tensor& weight, const T* b, T* y, int act);
std::pair<at::Tensor, at::Tensor> wide_nchw_grads(const ConvGeom& g, const at::Tensor& input, const at::Tensor& grad,
                                                  const at::Tensor& out, int act, bool want_bias);
// Dense direct convolution (groups 1, few input channels, OC % 16 == 0, float32).
bool dense_direct_ok(const ConvGeom& g, at::ScalarType t);
// Output row (n, oh) of the convolution with bias and activation into tile [OW, OC]; wk: weight as [KH, KW, C, OC].
void dense_conv_row(const ConvGeom& g, const float* x, Strides4 xs, const float* wk, const float* b, float* tile,
                    int act, int64_t n, int64_t oh);
// Weight and bias gradients (dW [OC, C, KH, KW], db [OC]) of the dense direct convolution, accumulated per thread
// over tasks [0, ntasks) run in parallel: rows(b0, b1, add) calls add(grow, yrow, n, oh) for each gradient row
// [OW, OC] of output row (n, oh) its tasks produce; yrow is the activated output row that masks it (act != 0),
// or null. Rows never added have no gradient.
using DenseGradRow = std::function<void(const float* grow, const float* yrow, int64_t n, int64_t oh)>;
using DenseGradRows = std::function<void(int64_t b0, int64_t b1, const DenseGradRow& add)>;
std::pair<at::Tensor, at::Tensor> dense_direct_grads(const ConvGeom& g, const at::Tensor& input, int act,
                                                     int64_t ntasks, const DenseGradRows& rows);
// The mechanism under it, for any kernel that accumulates dense weight and bias gradients: tasks [0, ntasks) run in
// parallel, tasks(b0, b1, dw, db) adding into its thread's zeroed partials dw [KH][KW][C][OC] and db [OC]; returns
// their sums as (dW [OC, C, KH, KW], db [OC]).
using DenseGradTasks = std::function<void(int64_t b0, int64_t b1, float* dw, float* db)>;
std::pair<at::Tensor, at::Tensor> dense_grads_summed(const ConvGeom& g, const at::TensorOptions& opts, int64_t ntasks,
                                                     const DenseGradTasks& tasks);
// Forward (y NHWC when cl, else NCHW; the input is read through its strides) and weight + bias gradients (grad and
// out in y's layout, masked on the fly; out undefined when act == 0).
void dense_direct_forward(const ConvGeom& g, const at::Tensor& input, const at::Tensor& weight, const float* b,
                          float* y, bool cl, int act);
std::pair<at::Tensor, at::Tensor> dense_direct_backward(const ConvGeom& g, const at::Tensor& input,
                                                        const at::Tensor& grad, const at::Tensor& out, bool cl,
                                                        int act);

// Register-tiled channels-last depthwise 3x3 (depthwise_cpu.cpp): float32, C % 16 == 0, dilation 1, stride 1 or 2,
// padding <= 2. wd: weight as [3, 3, C]; gm: gradient w.r.t. the convolution's output (masked), NHWC.
bool dw3_tiled_ok(const ConvGeom& g, at::ScalarType t);
void dw3_fwd_row(const ConvGeom& g, const float* x, const float* wd, const float* b, float* y, int act, int64_t n,
                 int64_t oh);
// The whole backward from the masked gradient gm: dx (when not null) and, when want_grads, (dW [C, 1, 3, 3], db [C]).
std::pair<at::Tensor, at::Tensor> dw3_backward(const ConvGeom& g, const float* x, const float* gm, const float* wd,
                                               float* dx, bool want_grads, const at::TensorOptions& opts);
// NCHW depthwise backward on phase planes (depthwise_cpu.cpp): float32, dilation 1, stride 1 or 2, kernel <= 7.
// w: [C, 1, KH, KW]; same contract as dw3_backward (dW [C, 1, KH, KW], db [C]).
bool dw_nchw_phase_ok(const ConvGeom& g, at::ScalarType t);
void dw_nchw_forward(const ConvGeom& g, const float* x, const float* w, const float* b, float* y, int act);
std::pair<at::Tensor, at::Tensor> dw_nchw_backward(const ConvGeom& g, const float* x, const float* gm, const float* w,
                                                   float* dx, bool want_grads, const at::TensorOptions& opts);
// General depthwise kernels (depthwise_cpu.cpp) for every other shape and float64; the NCHW forward is
// direct_nchw_forward. The backward writes dx (every element) and returns dW [C, 1, KH, KW] when want_weight.
template <typename T>
void dw_nhwc_rows_forward(const ConvGeom& g, const T* x, const at::Tensor& weight, const T* b, T* y, int act);
template <typename T>
at::Tensor dw_nhwc_rows_backward(const ConvGeom& g, const T* x, const T* gm, const at::Tensor& weight, T* dx,
                                 bool want_weight, const at::TensorOptions& opts);
template <typename T>
at::Tensor dw_nchw_planes_backward(const ConvGeom& g, const T* x, const T* gm, const at::Tensor& weight, T* dx,
                                   bool want_weight, const at::TensorOptions& opts);

// Winograd F(4x4, 3x3) or F(3x3, 3x3), whichever needs fewer multiplies for the output plane (winograd_cpu.cpp):
// float32, 3x3, stride 1, dilation 1, groups 1, C and OC multiples of 16, C <= 64, output at least 3x3, enough
// tiles. x and y NHWC. The backward also runs winograd_fwd for the input gradient (conv_cpu.cpp).
bool winograd_ok(const ConvGeom& g, at::ScalarType t);
// The output tile the Winograd kernels use for this shape: 4 (F(4x4, 3x3)) or 3 (F(3x3, 3x3)).
int winograd_tile(const ConvGeom& g);
void winograd_fwd(const ConvGeom& g, const float* x, const at::Tensor& weight, const float* b, float* y, int act);
// The same forward (tile 4 only) followed by 2x2 stride-2 max pooling inside the output transform: y is the pooled
// output (N, OH / 2, OW / 2, OC) and a (null for inference) each maximum's window position, as max_pool2d_with_argmax.
void winograd_fwd_pool2(const ConvGeom& g, const float* x, const at::Tensor& weight, const float* b, float* y,
                        uint8_t* a, int act);
// Its weight and bias gradients (dW [OC, C, 3, 3], db [OC] when want_bias) from the masked gradient gm (NHWC), in the
// Winograd domain: dU = sum over tiles of (A gm A^T) . (B^T x B), dW = G^T dU G (one GEMM [C x tiles] x [tiles x OC]
// per position of the transformed tile: 36 or 25).
std::pair<at::Tensor, at::Tensor> winograd_bwd_weight(const ConvGeom& g, const float* x, const float* gm,
                                                      bool want_bias, const at::TensorOptions& opts);

// Pooling geometry of an (N, C, H, W) input (pool_cpu.cpp); OH/OW are 0 when the window is larger than the input.
PoolGeom pool_geometry(int64_t N, int64_t C, int64_t H, int64_t W, at::IntArrayRef kernel, at::IntArrayRef stride);
// Channels-last max pooling of output row (n, oh): y and argmax a (may be null) at strides ys.
void pool_fwd_row_cl(const PoolGeom& g, const float* x, Strides4 xs, float* y, uint8_t* a, Strides4 ys, int64_t n,
                     int64_t oh);
// Channels-last, non-overlapping windows: input-gradient rows of output row (n, oh), every element written once.
void pool_bwd_row_cl(const PoolGeom& g, const uint8_t* a, const float* gy, float* dx, int64_t n, int64_t oh);
}  // namespace detail

// Which vector ISA the CPU kernels run with on this machine ("avx512", "avx2", "baseline").
std::string simd_level();
// Whether GEMMs go straight to the BLAS inside libtorch (MKL's sgemm_/dgemm_) or fall back to at::mm (gemm_cpu.cpp).
bool direct_blas();

}  // namespace pydlr
