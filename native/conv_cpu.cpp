// pydlr's CPU convolution operators: argument checks, the kernel choice (forward and backward, each a path enum
// chosen by one function) and the dispatch to the kernel families:
//   * gemm_cpu.cpp: blocked im2col + GEMM (the general case);
//   * direct_cpu.cpp: direct kernels for short reductions (few input channels), dense direct and NCHW "wide";
//   * depthwise_cpu.cpp: depthwise (groups == C == OC): tiled 3x3 channels-last, NCHW phase planes, general rows;
//   * winograd_cpu.cpp: Winograd F(4x4, 3x3) / F(3x3, 3x3) for 3x3 stride-1 shapes with few channels;
//   * conv_onednn.cpp: the oneDNN route for float32 GEMM-bound shapes where it measured faster.
// Layout: the output follows the input's suggested memory format, as torch's conv2d does. Other strides
// (non-contiguous views) are copied once into the path's layout, except by the dense direct kernel, which reads
// the input through its strides.
#include "conv.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/hardtanh_backward.h>
#include <ATen/ops/threshold_backward.h>

#include <sstream>

namespace pydlr {
namespace {

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
  return !depthwise && (g.C / g.G) * g.KH * g.KW > kDenseDirectMaxK && g.OH * g.OW < kSmallPlane;
}

}  // namespace

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

// ---------------------------------------------------------------------------------------------- forward choice
// Every forward path: pydlr's own kernels (the first seven, chosen per shape by own_path), and the two routes that
// take a shape from them where they measured faster (forward_path).
enum class CpuPath {
  DepthwiseNhwc, WideNchw, DenseDirect, DirectNhwc, DirectNchw, GemmNhwc, GemmNchw,  // own_path
  Winograd, OneDnn,
};

// pydlr's own kernel for a shape, in order of preference.
CpuPath own_path(const ConvGeom& g, bool cl, at::ScalarType t) {
  const int64_t Cg = g.C / g.G, OCg = g.OC / g.G;
  const bool depthwise = Cg == 1 && OCg == 1;
  const bool small = Cg * g.KH * g.KW <= kDirectMaxK;
  if (cl && depthwise) return CpuPath::DepthwiseNhwc;
  if (!cl && detail::nchw_wide_ok(g)) return CpuPath::WideNchw;
  if (detail::dense_direct_ok(g, t)) return CpuPath::DenseDirect;
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
// GEMM: 1.30 vs 1.55 ms), NCHW inputs with small planes, and NCHW pointwise with OC > 16. Also channels-last
// pointwise convolutions whose forward is the dense direct kernel (32->16 at 112x112: backward 17 vs 25 ms), while
// their forward stays pydlr's (2x).
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
// weight gradient, and the input gradient where its own geometry qualifies (winograd_backward).
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

// The forward kernel for a shape: the one place that decides it (conv2d_act_cpu runs it, conv2d_cpu_path names it).
CpuPath forward_path(const ConvGeom& g, bool cl_in, bool cl, at::ScalarType t) {
  const CpuPath own = own_path(g, cl, t);
  if (winograd_shape(g, own, t)) return CpuPath::Winograd;
  if (onednn_forward(g, cl_in, own, t)) return CpuPath::OneDnn;
  return own;
}

const char* path_name(CpuPath p, const ConvGeom& g) {
  switch (p) {
    case CpuPath::DepthwiseNhwc: return "depthwise_nhwc";
    case CpuPath::WideNchw: return "wide_nchw";
    case CpuPath::DenseDirect: return "dense_direct";
    case CpuPath::DirectNhwc: return "direct_nhwc";
    case CpuPath::DirectNchw: return "direct_nchw";
    case CpuPath::GemmNhwc: return "gemm_nhwc";
    case CpuPath::GemmNchw: return "gemm_nchw";
    case CpuPath::Winograd: return detail::winograd_tile(g) == 3 ? "winograd_f33" : "winograd_f43";
    case CpuPath::OneDnn: return "onednn";
  }
  return "unknown";
}

inline at::MemoryFormat layout(bool cl) { return cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous; }

// ---------------------------------------------------------------------------------------------- forward cases
// Winograd works channels-last (vectors over channels): NCHW inputs and outputs are copied.
at::Tensor winograd_forward(const ConvGeom& g, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& b,
                            int act, bool cl_in) {
  const at::Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor y = at::empty({g.N, g.OC, g.OH, g.OW}, input.options().memory_format(at::MemoryFormat::ChannelsLast));
  detail::winograd_fwd(g, x.const_data_ptr<float>(), weight, b.defined() ? b.const_data_ptr<float>() : nullptr,
                       y.mutable_data_ptr<float>(), act);
  return cl_in ? y : y.contiguous();
}

// Channels-last depthwise: the tiled 3x3 kernel where it applies, else the general rows.
template <typename T>
void depthwise_nhwc_forward(const ConvGeom& g, const T* x, const at::Tensor& weight, const T* b, T* y, int act) {
  if constexpr (std::is_same_v<T, float>) {
    if (detail::dw3_tiled_ok(g, at::kFloat)) {
      const at::Tensor wd = weight.reshape({g.C, g.KH * g.KW}).t().contiguous();
      const float* wp = wd.const_data_ptr<float>();
      at::parallel_for(0, g.N * g.OH, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t t = b0; t < b1; ++t) detail::dw3_fwd_row(g, x, wp, b, y, act, t / g.OH, t % g.OH);
      });
      return;
    }
  }
  detail::dw_nhwc_rows_forward<T>(g, x, weight, b, y, act);
}

// NCHW direct kernels. Depthwise, stride 1, rows that are not whole vectors (56 wide: 3.5): the phase-plane kernel
// (144 channels at 56x56: 1.21x torch vs 1.07x); whole-vector rows and stride 2 measured faster on the per-plane
// kernel (32 at 112x112: 1.53x vs 1.26x; stride 2: 1.65-2.19x vs 1.34-1.36x).
template <typename T>
void direct_nchw_forward(const ConvGeom& g, const T* x, const at::Tensor& weight, const T* b, T* y, int act) {
  if constexpr (std::is_same_v<T, float>) {
    if (g.sw == 1 && g.OW % 16 != 0 && detail::dw_nchw_phase_ok(g, at::kFloat)) {
      const at::Tensor w = weight.contiguous();
      detail::dw_nchw_forward(g, x, w.const_data_ptr<float>(), b, y, act);
      return;
    }
  }
  detail::direct_nchw_forward<T>(g, x, weight, b, y, act);
}

// pydlr's own kernels: the input in the path's layout (cl), the output in the same, then in the input's.
at::Tensor own_forward(CpuPath path, const ConvGeom& g, const at::Tensor& input, const at::Tensor& weight,
                       const at::Tensor& b, int act, bool cl_in, bool cl) {
  const at::Tensor x = input.contiguous(layout(cl));
  at::Tensor y = at::empty({g.N, g.OC, g.OH, g.OW}, input.options().memory_format(layout(cl)));
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "pydlr_conv2d", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.defined() ? b.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    switch (path) {
      case CpuPath::DepthwiseNhwc: depthwise_nhwc_forward<scalar_t>(g, xp, weight, bp, yp, act); break;
      case CpuPath::WideNchw: detail::wide_nchw_forward<scalar_t>(g, xp, weight, bp, yp, act); break;
      case CpuPath::DenseDirect:  // float only (dense_direct_ok): the casts are no-ops; reads `input` by its strides
        detail::dense_direct_forward(g, input, weight, reinterpret_cast<const float*>(bp),
                                     reinterpret_cast<float*>(yp), cl, act);
        break;
      case CpuPath::DirectNhwc: detail::direct_nhwc_forward<scalar_t>(g, xp, weight, bp, yp, act); break;
      case CpuPath::DirectNchw: direct_nchw_forward<scalar_t>(g, xp, weight, bp, yp, act); break;
      case CpuPath::GemmNhwc: detail::gemm_nhwc_forward<scalar_t>(g, xp, weight, bp, yp, act); break;
      case CpuPath::GemmNchw: detail::gemm_nchw_forward<scalar_t>(g, xp, weight, bp, yp, act); break;
      default: TORCH_CHECK(false, "pydlr::conv2d: ", path_name(path, g), " is not one of pydlr's own kernels");
    }
  });
  return cl == cl_in ? y : y.contiguous();
}

// ---------------------------------------------------------------------------------------------- backward choice
// Every backward path. Winograd, WideNchw and DenseDirect compute the weight and bias gradients; the input
// gradient, when asked, then comes from the path backward_path picks for it alone (Winograd: its own rule).
// The others compute every gradient asked for in one call.
enum class BwdPath {
  Winograd, OneDnn, WideNchw, DenseDirect,
  DepthwiseTiled, DepthwisePhase,  // one-pass float32 depthwise kernels: tiled 3x3 NHWC, NCHW phase planes
  DepthwiseNhwc, DepthwiseNchw, GemmNhwc, GemmNchw,
};

using Grads = std::tuple<at::Tensor, at::Tensor, at::Tensor>;  // (input, weight, bias); undefined where not asked

// One backward call: grad is the gradient w.r.t. the activated output, masked by the activation act with the
// activated output `output` (act != 0); own is pydlr's forward kernel for the shape, cl the path's layout.
struct BackwardArgs {
  ConvGeom g;
  at::Tensor grad, input, weight;
  std::optional<at::Tensor> output;
  int act;
  bool cl_in, cl;
  CpuPath own;
  std::array<bool, 3> mask;
};

// The backward path for a call: the one place that decides it.
BwdPath backward_path(const BackwardArgs& a) {
  const ConvGeom& g = a.g;
  const at::ScalarType t = a.input.scalar_type();
  const bool weights = a.mask[1];
  if (weights && winograd_shape(g, a.own, t)) return BwdPath::Winograd;
  if (onednn_backward(g, a.cl_in, a.own, t)) return BwdPath::OneDnn;
  if (weights && !a.cl && detail::nchw_wide_ok(g)) return BwdPath::WideNchw;
  if (weights && detail::dense_direct_ok(g, t)) return BwdPath::DenseDirect;
  if (a.cl ? detail::dw3_tiled_ok(g, t) : detail::dw_nchw_phase_ok(g, t)) {
    return a.cl ? BwdPath::DepthwiseTiled : BwdPath::DepthwisePhase;
  }
  if (g.C / g.G == 1 && g.OC / g.G == 1) return a.cl ? BwdPath::DepthwiseNhwc : BwdPath::DepthwiseNchw;
  return a.cl ? BwdPath::GemmNhwc : BwdPath::GemmNchw;
}

Grads run_backward(BwdPath path, const BackwardArgs& a);

// The input gradient alone from the gradient `grad` masked by `act` (paths whose kernel gives only the weights).
at::Tensor input_grad_alone(const BackwardArgs& a, const at::Tensor& grad, const std::optional<at::Tensor>& output,
                            int act) {
  BackwardArgs d = a;
  d.grad = grad;
  d.output = output;
  d.act = act;
  d.mask = {true, false, false};
  return std::get<0>(run_backward(backward_path(d), d));
}

// ---------------------------------------------------------------------------------------------- backward cases
// Weight and bias gradients in the Winograd domain (channels-last inside). The input gradient, where the oneDNN
// route would take it, is a Winograd convolution too (forward + backward against oneDNN's input gradient,
// interleaved in one process: the seed's 32->64 1.05-1.09x, 64->64 at 56x56 1.25-1.39x, 16->32 at 30x30
// 1.09-1.14x); elsewhere pydlr's GEMM path (tiny planes, where it beats both: 64->64 at 5x5, Winograd 0.85-0.90x;
// the route switched off).
Grads winograd_backward(const BackwardArgs& a) {
  const ConvGeom& g = a.g;
  const auto in_fmt = layout(a.cl_in);
  const at::Tensor gm = masked_grad(a.grad, a.output, a.act, in_fmt);
  const at::Tensor gm_cl = gm.contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor x_cl = a.input.contiguous(at::MemoryFormat::ChannelsLast);
  auto [gw, gb] = detail::winograd_bwd_weight(g, x_cl.const_data_ptr<float>(), gm_cl.const_data_ptr<float>(),
                                              a.mask[2], a.input.options());
  if (!a.mask[0]) return {at::Tensor(), gw, gb};
  const bool onednn_dx = onednn_backward(g, a.cl_in, a.own, at::kFloat);
  const std::optional<ConvGeom> wdx = winograd_input_grad(g);
  at::Tensor gi;
  if (onednn_dx && wdx.has_value()) {
    gi = at::empty({g.N, g.C, g.H, g.W}, a.input.options().memory_format(at::MemoryFormat::ChannelsLast));
    detail::winograd_fwd(*wdx, gm_cl.const_data_ptr<float>(), a.weight.flip({2, 3}).transpose(0, 1), nullptr,
                         gi.mutable_data_ptr<float>(), 0);
    if (!a.cl_in) gi = gi.contiguous();
  } else if (onednn_dx) {
    gi = std::get<0>(onednn_conv2d_backward(g, gm, a.input.contiguous(in_fmt), a.weight, {true, false, false}));
  } else {
    gi = input_grad_alone(a, gm, std::nullopt, 0);
  }
  return {gi, gw, gb};
}

Grads onednn_backward_grads(const BackwardArgs& a) {
  const auto in_fmt = layout(a.cl_in);
  return onednn_conv2d_backward(a.g, masked_grad(a.grad, a.output, a.act, in_fmt), a.input.contiguous(in_fmt),
                                a.weight, a.mask);
}

// Few input channels: weight and bias gradients in one pass that also masks the gradient (no masked copy), from
// long per-plane dot products (NCHW "wide") or vector accumulators (dense direct).
Grads direct_backward(BwdPath path, const BackwardArgs& a) {
  const ConvGeom& g = a.g;
  at::Tensor gw, gb;
  if (path == BwdPath::WideNchw) {
    const at::Tensor out = a.act != 0 ? a.output->contiguous() : at::Tensor();
    std::tie(gw, gb) = detail::wide_nchw_grads(g, a.input.contiguous(), a.grad.contiguous(), out, a.act, a.mask[2]);
  } else {
    const auto fmt = layout(a.cl);
    const at::Tensor out = a.act != 0 ? a.output->contiguous(fmt) : at::Tensor();
    std::tie(gw, gb) = detail::dense_direct_backward(g, a.input, a.grad.contiguous(fmt), out, a.cl, a.act);
    if (!a.mask[2]) gb = at::Tensor();
  }
  const at::Tensor gi = a.mask[0] ? input_grad_alone(a, a.grad, a.output, a.act) : at::Tensor();
  return {gi, gw, gb};
}

// Depthwise float32 in one pass (depthwise_cpu.cpp): input, weight and bias gradients together. Channels-last 3x3:
// tiled rows, weight as [3, 3, C]; NCHW: phase planes, weight as is.
Grads depthwise_one_pass_backward(BwdPath path, const BackwardArgs& a) {
  const ConvGeom& g = a.g;
  const bool tiled = path == BwdPath::DepthwiseTiled;
  const auto fmt = layout(a.cl);
  const at::Tensor x = a.input.contiguous(fmt);
  const at::Tensor gm = masked_grad(a.grad, a.output, a.act, fmt);
  const at::Tensor w = tiled ? a.weight.reshape({g.C, 9}).t().contiguous() : a.weight.contiguous();
  at::Tensor gi, gw, gb;
  if (a.mask[0]) gi = at::empty({g.N, g.C, g.H, g.W}, a.input.options().memory_format(fmt));
  const auto kernel = tiled ? &detail::dw3_backward : &detail::dw_nchw_backward;
  std::tie(gw, gb) = kernel(g, x.const_data_ptr<float>(), gm.const_data_ptr<float>(), w.const_data_ptr<float>(),
                            gi.defined() ? gi.mutable_data_ptr<float>() : nullptr, a.mask[1] || a.mask[2],
                            a.input.options());
  if (!a.mask[1]) gw = at::Tensor();
  if (!a.mask[2]) gb = at::Tensor();
  return {a.cl != a.cl_in && gi.defined() ? gi.contiguous() : gi, gw, gb};
}

// The general kernels: the gradient masked in one pass, the bias gradient its sum, then the input and weight
// gradients from the depthwise rows / planes or the GEMM blocks.
Grads general_backward(BwdPath path, const BackwardArgs& a) {
  const ConvGeom& g = a.g;
  const auto fmt = layout(a.cl);
  const at::Tensor x = a.input.contiguous(fmt);
  const at::Tensor gm = masked_grad(a.grad, a.output, a.act, fmt);
  at::Tensor gi, gw, gb;
  if (a.mask[2]) gb = gm.sum({0, 2, 3});
  if (!a.mask[0] && !a.mask[1]) return {gi, gw, gb};
  const bool depthwise = path == BwdPath::DepthwiseNhwc || path == BwdPath::DepthwiseNchw;
  if (a.mask[0]) {
    // Kernels that write every element (pointwise GEMM, depthwise) need no zeroing.
    gi = at::empty({g.N, g.C, g.H, g.W}, a.input.options().memory_format(fmt));
    if (!is_pointwise(g) && !depthwise) gi.zero_();
  }
  const at::TensorOptions opts = a.input.options();
  AT_DISPATCH_FLOATING_TYPES(a.input.scalar_type(), "pydlr_conv2d_backward", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* gp = gm.const_data_ptr<scalar_t>();
    scalar_t* dxp = gi.defined() ? gi.mutable_data_ptr<scalar_t>() : nullptr;
    const bool dw = a.mask[1];
    switch (path) {
      case BwdPath::DepthwiseNhwc: gw = detail::dw_nhwc_rows_backward(g, xp, gp, a.weight, dxp, dw, opts); break;
      case BwdPath::DepthwiseNchw: gw = detail::dw_nchw_planes_backward(g, xp, gp, a.weight, dxp, dw, opts); break;
      case BwdPath::GemmNhwc: gw = detail::gemm_nhwc_backward(g, xp, gp, a.weight, dxp, dw, opts); break;
      default: gw = detail::gemm_nchw_backward(g, xp, gp, a.weight, dxp, dw, opts); break;
    }
  });
  if (gi.defined() && a.cl != a.cl_in) gi = gi.contiguous();
  return {gi, gw, gb};
}

Grads run_backward(BwdPath path, const BackwardArgs& a) {
  switch (path) {
    case BwdPath::Winograd: return winograd_backward(a);
    case BwdPath::OneDnn: return onednn_backward_grads(a);
    case BwdPath::WideNchw:
    case BwdPath::DenseDirect: return direct_backward(path, a);
    case BwdPath::DepthwiseTiled:
    case BwdPath::DepthwisePhase: return depthwise_one_pass_backward(path, a);
    case BwdPath::DepthwiseNhwc:
    case BwdPath::DepthwiseNchw:
    case BwdPath::GemmNhwc:
    case BwdPath::GemmNchw: return general_backward(path, a);
  }
  TORCH_CHECK(false, "pydlr::conv2d_backward: unknown path");
}

}  // namespace

// ---------------------------------------------------------------------------------------------- operators
std::string conv2d_cpu_path(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  const ConvGeom g = check_conv_args("pydlr::conv2d", input, weight, std::nullopt, stride, padding, dilation, groups);
  const bool cl_in = channels_last(input), cl = cl_in || nchw_via_nhwc(g);
  return path_name(forward_path(g, cl_in, cl, input.scalar_type()), g);
}

at::Tensor conv2d_act_cpu(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                          c10::string_view activation) {
  const ConvGeom g = check_conv_args("pydlr::conv2d", input, weight, bias, stride, padding, dilation, groups);
  const int act = static_cast<int>(parse_act(activation));
  TORCH_CHECK(input.device().is_cpu(), "pydlr::conv2d: CPU kernel called with a ", input.device(), " tensor");
  const bool cl_in = channels_last(input);
  const bool cl = cl_in || nchw_via_nhwc(g);
  const at::Tensor b = bias.has_value() && bias->defined() ? bias->contiguous() : at::Tensor();
  const CpuPath path = forward_path(g, cl_in, cl, input.scalar_type());
  switch (path) {
    case CpuPath::Winograd: return winograd_forward(g, input, weight, b, act, cl_in);
    case CpuPath::OneDnn: return onednn_conv2d_act(g, input, weight, b, act);
    default: return own_forward(path, g, input, weight, b, act, cl_in, cl);
  }
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
  const BackwardArgs a{g, grad_output, input, weight, output, act, cl_in, cl,
                       own_path(g, cl, input.scalar_type()), output_mask};
  return run_backward(backward_path(a), a);
}

std::string simd_level() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  if (__builtin_cpu_supports("x86-64-v4")) return "avx512 (x86-64-v4 kernel clones)";
  if (__builtin_cpu_supports("x86-64-v3")) return "avx2+fma (x86-64-v3 kernel clones)";
  return "baseline x86-64 (sse2)";
#else
  return "compiler default (no runtime dispatch)";
#endif
}

}  // namespace pydlr
