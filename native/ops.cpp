// Bootstrap registration of torch.ops.pydlr.conv2d (replaced by the native kernels of issue 5).
#include <torch/extension.h>

namespace {
at::Tensor conv2d_fwd(const at::Tensor& input, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                      at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  TORCH_CHECK(input.dim() == 4, "pydlr::conv2d: input must be 4-d NCHW, got ", input.dim(), "-d");
  return at::conv2d(input, weight, bias, stride, padding, dilation, groups);
}
}  // namespace

TORCH_LIBRARY(pydlr, m) {
  m.def("conv2d(Tensor input, Tensor weight, Tensor? bias, int[2] stride, int[2] padding, int[2] dilation, int groups) -> Tensor");
}
TORCH_LIBRARY_IMPL(pydlr, CompositeImplicitAutograd, m) { m.impl("conv2d", conv2d_fwd); }

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("build_info", []() { return std::string("bootstrap"); }); }
