// Shared between batchnorm_cpu.cpp, depthwise_cpu.cpp and bn_depthwise_cpu.cpp: the pieces of training-mode
// BatchNorm and of the tiled depthwise 3x3 kernels that the fused BatchNorm + activation + depthwise operator
// (bn_depthwise_cpu.cpp) runs on its own row bands.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>
#include <vector>

#include "conv.h"

namespace pydlr {

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const std::optional<at::Tensor>& weight_opt,
    const std::optional<at::Tensor>& bias_opt, const at::Tensor& save_mean, const at::Tensor& save_invstd,
    c10::string_view activation, std::array<bool, 3> output_mask);

namespace detail {

// Batch statistics (running statistics updated in place as batch_norm_act does) and the affine map they give:
// (save_mean, save_invstd, alpha, beta) with normalized = x * alpha + beta, the same float values
// batch_norm_act's forward and backward compute.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> batch_norm_stats(
    const char* op, const at::Tensor& input, const std::optional<at::Tensor>& weight_opt,
    const std::optional<at::Tensor>& bias_opt, at::Tensor& running_mean, at::Tensor& running_var, double momentum,
    double eps);
template <typename T>
void bn_affine(const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& mean, const at::Tensor& invstd,
               at::Tensor& alpha, at::Tensor& beta);
// y = act(x * alpha + beta) over `rows` rows of C channels (batch_norm_act's own output kernel).
void bn_apply_rows(int act, const float* x, float* y, int64_t rows, int64_t C, const float* al, const float* be);
void bn_apply_rows(int act, const double* x, double* y, int64_t rows, int64_t C, const double* al, const double* be);

// batch_norm_act's backward in parts: the per-channel sums of the masked gradient (s) and of masked gradient *
// (x - mean) (q) over `rows` rows, added into s / q (fs, fq: C floats of scratch); and the rest of the backward
// from the sums over all rows (sg, sgx).
void bn_grad_sums_rows(int act, const float* g, const float* x, int64_t rows, int64_t C, const float* al,
                       const float* be, const float* mean, float* fs, float* fq, double* s, double* q);
std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act_backward_from_sums(
    const at::Tensor& grad_output, const at::Tensor& input, const std::optional<at::Tensor>& weight_opt,
    const std::optional<at::Tensor>& bias_opt, const at::Tensor& save_mean, const at::Tensor& save_invstd,
    c10::string_view activation, std::array<bool, 3> output_mask, const std::vector<double>& sg,
    const std::vector<double>& sgx);

// Row kernels of the tiled depthwise 3x3 (depthwise_cpu.cpp; dw3_tiled_ok shapes): the stride-2 input gradient of
// input row (n, ih) and the weight / bias gradient of output row (n, oh) added into acc [3, 3, C] / accb [C].
void dw3_dx_row_s2(const ConvGeom& g, const float* gm, const float* wd, float* dx, int64_t n, int64_t ih);
void dw3_wgrad_row(const ConvGeom& g, const float* x, const float* gm, float* acc, float* accb, int64_t n,
                   int64_t oh);

}  // namespace detail
}  // namespace pydlr
