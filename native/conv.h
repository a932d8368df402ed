// Shared declarations of pydlr's native operators (convolution CPU kernels in conv_cpu.cpp, max pooling in
// pool_cpu.cpp, CUDA in conv_cuda.cu,
// registration and autograd in ops.cpp). Kept light: ATen only, no torch/extension.h.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <optional>
#include <string>
#include <tuple>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// Runtime ISA dispatch for the hand-written float kernels: one clone per level, picked at load time.
#define PYDLR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PYDLR_CLONES
#endif
#define PYDLR_INLINE __attribute__((always_inline)) inline

namespace pydlr {

enum class Act : int { None = 0, Relu = 1, Relu6 = 2 };

// Parses "none" / "relu" / "relu6"; TORCH_CHECK error otherwise.
Act parse_act(c10::string_view name);

// Geometry of one convolution, validated.
struct ConvGeom {
  int64_t N, C, H, W;       // input
  int64_t OC, KH, KW;       // weight (OC, C / G, KH, KW)
  int64_t OH, OW;           // output
  int64_t sh, sw, ph, pw, dh, dw, G;
};

// Validates shapes, dtypes, devices and hyper-parameters with TORCH_CHECK (clear messages, before any work)
// and returns the geometry. `op` names the operator in the messages.
ConvGeom check_conv_args(const char* op, const at::Tensor& input, const at::Tensor& weight,
                         const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                         at::IntArrayRef dilation, int64_t groups);

at::Tensor conv2d_act_cpu(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                          c10::string_view activation);

// Name of the CPU forward kernel conv2d_act_cpu picks for these arguments ("dense_direct", "depthwise_nhwc",
// "gemm_nhwc", ...): lets Python choose between the native op and torch's per shape (pydlr.ops.native_wins).
std::string conv2d_cpu_path(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups);

// grad_output is the gradient w.r.t. the activated output; `output` (the activated output) is needed when
// activation != "none" to mask the gradient. Returns (grad_input, grad_weight, grad_bias); entries whose
// output_mask is false are undefined tensors.
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
    const std::optional<at::Tensor>& output, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef dilation, int64_t groups, c10::string_view activation, std::array<bool, 3> output_mask);

// Max pooling without padding (floor mode, dilation 1), any stride; pool_cpu.cpp. For training, the forward also
// returns each maximum's window position as one byte (argmax, the output's shape and layout); the backward
// reads only that and the gradient (`input` gives the gradient's shape and layout, its values are not read).
at::Tensor max_pool2d_cpu(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride);
std::tuple<at::Tensor, at::Tensor> max_pool2d_with_argmax_cpu(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                              at::IntArrayRef stride);
at::Tensor max_pool2d_backward_cpu(const at::Tensor& grad_output, const at::Tensor& argmax, const at::Tensor& input,
                                   at::IntArrayRef kernel_size, at::IntArrayRef stride);

// Which vector ISA the CPU kernels run with on this machine ("avx512", "avx2", "baseline").
std::string simd_level();
// Whether GEMMs go straight to the BLAS inside libtorch (MKL's sgemm_/dgemm_) or fall back to at::mm.
bool direct_blas();

}  // namespace pydlr
