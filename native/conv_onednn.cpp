// The oneDNN route of pydlr's CPU convolution: for the GEMM-bound shapes where oneDNN's JIT kernels (brgemm,
// with im2col folded into the packing) run at the practical GEMM peak and pydlr's im2col + MKL sgemm cannot,
// conv2d_act_cpu hands the forward to oneDNN *with the activation as a post-op* (ATen's
// mkldnn::_convolution_pointwise, the kernel inductor emits for a fused conv + relu), and conv2d_backward_cpu
// hands the weight and input gradients to ATen's convolution_backward after masking the gradient itself.
// The result: the convolution is as fast as torch's and the activation's extra pass over the output is gone.
// Which shapes take it is decided in conv_cpu.cpp (onednn_forward / onednn_backward), from measurements
// (native/README.md); float32 only (oneDNN has no float64), and it can be switched off (set_onednn_enabled) to
// run pydlr's own kernels everywhere, as the tests and bench_conv --own do.
#include "conv.h"

#include <ATen/Context.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/convolution_backward.h>

#include <atomic>

namespace pydlr {
namespace {

std::atomic<bool> g_onednn_enabled{true};

using PointwiseFn = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, at::IntArrayRef,
                               at::IntArrayRef, at::IntArrayRef, int64_t, c10::string_view,
                               c10::List<std::optional<at::Scalar>>, std::optional<c10::string_view>);

// ATen's fused oneDNN convolution, looked up once; null when this torch build has no oneDNN.
const c10::TypedOperatorHandle<PointwiseFn>* pointwise_op() {
  static const std::optional<c10::TypedOperatorHandle<PointwiseFn>> op = []() {
    std::optional<c10::TypedOperatorHandle<PointwiseFn>> found;
    if (!at::hasMKLDNN()) return found;
    auto handle = c10::Dispatcher::singleton().findSchema({"mkldnn::_convolution_pointwise", ""});
    if (handle.has_value()) found = handle->typed<PointwiseFn>();
    return found;
  }();
  return op.has_value() ? &*op : nullptr;
}

}  // namespace

bool onednn_present() { return pointwise_op() != nullptr; }

bool onednn_available() { return onednn_enabled() && onednn_present(); }

void set_onednn_enabled(bool enabled) { g_onednn_enabled.store(enabled, std::memory_order_relaxed); }

bool onednn_enabled() { return g_onednn_enabled.load(std::memory_order_relaxed); }

at::Tensor onednn_conv2d_act(const ConvGeom& g, const at::Tensor& input, const at::Tensor& weight,
                             const at::Tensor& bias, int act) {
  const auto* op = pointwise_op();
  TORCH_CHECK(op != nullptr, "pydlr::conv2d: the oneDNN route was chosen but this torch has no oneDNN");
  // relu6 is oneDNN's clip (hardtanh) between 0 and 6.
  c10::List<std::optional<at::Scalar>> scalars;
  const char* attr = "none";
  if (act == static_cast<int>(Act::Relu)) {
    attr = "relu";
  } else if (act == static_cast<int>(Act::Relu6)) {
    attr = "hardtanh";
    scalars.push_back(at::Scalar(0.0));
    scalars.push_back(at::Scalar(6.0));
  }
  const at::Tensor x = input.contiguous(input.suggest_memory_format());
  const std::optional<at::Tensor> b = bias.defined() ? std::optional<at::Tensor>(bias.contiguous()) : std::nullopt;
  return op->call(x, weight.contiguous(), b, {g.ph, g.pw}, {g.sh, g.sw}, {g.dh, g.dw}, g.G, attr, scalars,
                  std::nullopt);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> onednn_conv2d_backward(const ConvGeom& g, const at::Tensor& grad,
                                                                      const at::Tensor& input,
                                                                      const at::Tensor& weight,
                                                                      std::array<bool, 3> output_mask) {
  const std::vector<int64_t> bias_sizes{g.OC};
  auto [gi, gw, gb] = at::convolution_backward(
      grad, input, weight, output_mask[2] ? std::optional<at::IntArrayRef>(bias_sizes) : std::nullopt,
      {g.sh, g.sw}, {g.ph, g.pw}, {g.dh, g.dw}, /*transposed=*/false, {0, 0}, g.G, output_mask);
  return {output_mask[0] ? gi : at::Tensor(), output_mask[1] ? gw : at::Tensor(), output_mask[2] ? gb : at::Tensor()};
}

}  // namespace pydlr
