// Registration of pydlr's operators (torch.ops.pydlr.*), their autograd, and the pybind11 build facts.
//
// Autograd lives here, in C++ (a torch::autograd::Function registered under the Autograd dispatch key), not in
// Python (torch.library.register_autograd): the Python route adds a Python frame and argument marshalling to
// every call, which is a visible share of a 0.1-0.3 ms convolution, and C++ callers (TorchScript, libtorch)
// would get no gradient. The backward is itself an operator (pydlr::conv2d_backward) so that each device's
// kernel (CPU here, CUDA in conv_cuda.cu) is reached through the dispatcher.
#include <torch/extension.h>

#include <ATen/autocast_mode.h>

#include "conv.h"

namespace pydlr {
// k-means (kmeans_cpu.cpp), declared here rather than in conv.h, which every convolution file includes.
// kmeans_step: labels (in: previous, out: new), min_dist (squared distance to the closest center) and, with
// accumulate, (per-cluster float64 sums, int64 counts, number of labels changed). kmeans_pp_dists: (min(closest,
// squared distance to each point) of shape (m, n), their float64 sums (m)).
std::tuple<at::Tensor, at::Tensor, int64_t> kmeans_step_cpu(const at::Tensor& x, const at::Tensor& x_sq,
                                                            const at::Tensor& centers, const at::Tensor& labels,
                                                            const at::Tensor& min_dist, bool accumulate);
std::tuple<at::Tensor, at::Tensor> kmeans_pp_dists_cpu(const at::Tensor& x, const at::Tensor& x_sq,
                                                       const at::Tensor& points, const at::Tensor& closest);
// kmeans_bounded_step: Lloyd's step with Hamerly's bounds (labels, upper, lower, norms, sums and counts updated in
// place; returns (labels changed, rows whose distances were computed)).
std::tuple<int64_t, int64_t> kmeans_bounded_step_cpu(const at::Tensor& x, const at::Tensor& centers,
                                                     const at::Tensor& shift, const at::Tensor& labels,
                                                     const at::Tensor& upper, const at::Tensor& lower,
                                                     const at::Tensor& norms, const at::Tensor& sums,
                                                     const at::Tensor& counts);
// kmeans_own_dists: min_dist (written) = squared distance of each row to its labelled center, as kmeans_step's.
void kmeans_own_dists_cpu(const at::Tensor& x, const at::Tensor& x_sq, const at::Tensor& centers,
                          const at::Tensor& labels, const at::Tensor& min_dist);
// Batched PNG decoding (image_decode_cpu.cpp); png_decoder_available: whether it was built with libpng.
std::tuple<at::Tensor, at::Tensor, std::vector<std::string>> decode_png_batch_cpu(const c10::List<std::string>& paths,
                                                                                 int64_t channels);
bool png_decoder_available();
// The same decoding fused with Augment's affine warp, written into out (image_decode_cpu.cpp): errors per file.
std::vector<std::string> decode_png_warp_batch_cpu(const c10::List<std::string>& paths, int64_t channels,
                                                   const at::Tensor& theta, const at::Tensor& xs,
                                                   const at::Tensor& ys, at::Tensor& out, int64_t interpolation,
                                                   int64_t padding, double fill, bool resize);
// Training-mode batch norm fused with an activation (batchnorm_cpu.cpp): (output, save_mean, save_invstd), the
// running statistics updated in place; and its backward (grad_input, grad_weight, grad_bias).
std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act_cpu(const at::Tensor& input,
                                                                  const std::optional<at::Tensor>& weight,
                                                                  const std::optional<at::Tensor>& bias,
                                                                  at::Tensor& running_mean, at::Tensor& running_var,
                                                                  double momentum, double eps,
                                                                  c10::string_view activation);
std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& save_mean, const at::Tensor& save_invstd,
    c10::string_view activation, std::array<bool, 3> output_mask);
// Rows start:stop of a numeric array in any memory order as a C-contiguous float32 tensor (convert_cpu.cpp).
at::Tensor rows_to_float32_cpu(const at::Tensor& src, int64_t start, int64_t stop);
std::tuple<at::Tensor, bool> rows_to_float32_checked_cpu(const at::Tensor& src, int64_t start, int64_t stop);
// The caching allocator of torch's CPU tensors (cpu_allocator.cpp): its counters, and giving its blocks back.
std::unordered_map<std::string, int64_t> cpu_cache_stats();
void cpu_cache_clear();
void cpu_cache_use(bool on);
}  // namespace pydlr

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Whether a call must record an autograd node: grad mode is on and the input, the weight or the bias (each
// optional where the schema says so) requires a gradient. Otherwise the kernels run below autograd, with no
// node and no saved context (a few microseconds a call).
bool needs_autograd(const at::Tensor& input, const std::optional<at::Tensor>& weight,
                    const std::optional<at::Tensor>& bias) {
  const auto wants_grad = [](const std::optional<at::Tensor>& t) {
    return t.has_value() && t->defined() && t->requires_grad();
  };
  return at::GradMode::is_enabled() && (input.requires_grad() || wants_grad(weight) || wants_grad(bias));
}

// Bf16: the bfloat16 twins (AMX), which CPU autocast runs.
template <bool Bf16 = false>
at::Tensor call_conv2d_act(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                           at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                           c10::string_view activation) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow(Bf16 ? "pydlr::conv2d_act_bf16" : "pydlr::conv2d_act", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                         at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, int64_t, c10::string_view)>();
  return op.call(input, weight, bias, stride, padding, dilation, groups, activation);
}

template <bool Bf16 = false>
std::tuple<at::Tensor, at::Tensor, at::Tensor> call_conv2d_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
    const std::optional<at::Tensor>& output, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef dilation, int64_t groups, c10::string_view activation, std::array<bool, 3> mask) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow(Bf16 ? "pydlr::conv2d_backward_bf16" : "pydlr::conv2d_backward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                           at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, int64_t, c10::string_view,
                           std::array<bool, 3>)>();
  return op.call(grad_output, input, weight, output, stride, padding, dilation, groups, activation, mask);
}

// The node of a convolution (+ activation); Self names it in grad_fn (Conv2dFunction, Conv2dBf16Function).
template <bool Bf16, typename Self>
class Conv2dNode : public torch::autograd::Function<Self> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                            at::IntArrayRef dilation, int64_t groups, const std::string& activation) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor out = call_conv2d_act<Bf16>(input, weight, bias, stride, padding, dilation, groups, activation);
    ctx->saved_data["stride"] = stride.vec();
    ctx->saved_data["padding"] = padding.vec();
    ctx->saved_data["dilation"] = dilation.vec();
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["activation"] = activation;
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    // The activated output is kept only when the activation's derivative needs it.
    ctx->save_for_backward({input, weight, activation == "none" ? at::Tensor() : out});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    const std::array<bool, 3> mask{ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                   has_bias && ctx->needs_input_grad(2)};
    at::Tensor gi, gw, gb;
    if (grads[0].defined() && (mask[0] || mask[1] || mask[2])) {
      const auto stride = ctx->saved_data["stride"].toIntVector();
      const auto padding = ctx->saved_data["padding"].toIntVector();
      const auto dilation = ctx->saved_data["dilation"].toIntVector();
      const std::string act = ctx->saved_data["activation"].toStringRef();
      const std::optional<at::Tensor> out = saved[2].defined() ? std::optional<at::Tensor>(saved[2]) : std::nullopt;
      std::tie(gi, gw, gb) = call_conv2d_backward<Bf16>(grads[0], saved[0], saved[1], out, stride, padding,
                                                        dilation, ctx->saved_data["groups"].toInt(), act, mask);
    }
    return {gi, gw, gb, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};
class Conv2dFunction : public Conv2dNode<false, Conv2dFunction> {};
class Conv2dBf16Function : public Conv2dNode<true, Conv2dBf16Function> {};

at::Tensor call_max_pool2d_backward(const at::Tensor& grad_output, const at::Tensor& argmax, const at::Tensor& input,
                                    at::IntArrayRef kernel_size, at::IntArrayRef stride) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("pydlr::max_pool2d_backward", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, at::IntArrayRef,
                                         at::IntArrayRef)>();
  return op.call(grad_output, argmax, input, kernel_size, stride);
}

std::tuple<at::Tensor, at::Tensor> call_max_pool2d_with_argmax(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                               at::IntArrayRef stride) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("pydlr::max_pool2d_with_argmax", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, at::IntArrayRef, at::IntArrayRef)>();
  return op.call(input, kernel_size, stride);
}

at::Tensor call_max_pool2d(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("pydlr::max_pool2d", "")
                       .typed<at::Tensor(const at::Tensor&, at::IntArrayRef, at::IntArrayRef)>();
  return op.call(input, kernel_size, stride);
}

// Saves the one-byte argmax and the input (for its shape and layout: the backward does not read its values).
class MaxPool2dFunction : public torch::autograd::Function<MaxPool2dFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, at::IntArrayRef kernel_size,
                            at::IntArrayRef stride) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [out, argmax] = call_max_pool2d_with_argmax(input, kernel_size, stride);
    ctx->saved_data["kernel_size"] = kernel_size.vec();
    ctx->saved_data["stride"] = stride.vec();
    ctx->save_for_backward({argmax, input});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    at::Tensor gi;
    if (grads[0].defined() && ctx->needs_input_grad(0)) {
      gi = call_max_pool2d_backward(grads[0], saved[0], saved[1], ctx->saved_data["kernel_size"].toIntVector(),
                                    ctx->saved_data["stride"].toIntVector());
    }
    return {gi, at::Tensor(), at::Tensor()};
  }
};

at::Tensor max_pool2d_autograd(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride) {
  if (!input.requires_grad() || !at::GradMode::is_enabled()) {  // inference: no argmax to keep
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_max_pool2d(input, kernel_size, stride);
  }
  return MaxPool2dFunction::apply(input, kernel_size, stride);
}

// Bf16: the bfloat16 twins of the fused operators (AMX), which CPU autocast runs.
template <bool Bf16 = false>
std::tuple<at::Tensor, at::Tensor> call_conv2d_act_pool_with_argmax(
    const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
    at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, c10::string_view activation,
    at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow(Bf16 ? "pydlr::conv2d_act_pool_bf16_with_argmax"
                                               : "pydlr::conv2d_act_pool_with_argmax",
                                          "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, at::IntArrayRef,
                           at::IntArrayRef, at::IntArrayRef, int64_t, c10::string_view, at::IntArrayRef,
                           at::IntArrayRef)>();
  return op.call(input, weight, bias, stride, padding, dilation, groups, activation, pool_kernel, pool_stride);
}

template <bool Bf16 = false>
std::tuple<at::Tensor, at::Tensor, at::Tensor> call_conv2d_act_pool_backward(
    const at::Tensor& grad_output, const at::Tensor& argmax, const at::Tensor& output, const at::Tensor& input,
    const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    int64_t groups, c10::string_view activation, at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride,
    std::array<bool, 3> mask) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow(Bf16 ? "pydlr::conv2d_act_pool_bf16_backward"
                                               : "pydlr::conv2d_act_pool_backward",
                                          "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                           const at::Tensor&, at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, int64_t,
                           c10::string_view, at::IntArrayRef, at::IntArrayRef, std::array<bool, 3>)>();
  return op.call(grad_output, argmax, output, input, weight, stride, padding, dilation, groups, activation,
                 pool_kernel, pool_stride, mask);
}

template <bool Bf16 = false>
at::Tensor call_conv2d_act_pool(const at::Tensor& input, const at::Tensor& weight,
                                const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                                at::IntArrayRef dilation, int64_t groups, c10::string_view activation,
                                at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow(Bf16 ? "pydlr::conv2d_act_pool_bf16" : "pydlr::conv2d_act_pool", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                         at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, int64_t, c10::string_view,
                                         at::IntArrayRef, at::IntArrayRef)>();
  return op.call(input, weight, bias, stride, padding, dilation, groups, activation, pool_kernel, pool_stride);
}

// The arguments both convolution + pooling nodes keep for their backward (the tensors are saved apart).
void save_conv_pool_args(AutogradContext* ctx, const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                         at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                         const std::string& activation, at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride) {
  ctx->saved_data["stride"] = stride.vec();
  ctx->saved_data["padding"] = padding.vec();
  ctx->saved_data["dilation"] = dilation.vec();
  ctx->saved_data["groups"] = groups;
  ctx->saved_data["activation"] = activation;
  ctx->saved_data["pool_kernel"] = pool_kernel.vec();
  ctx->saved_data["pool_stride"] = pool_stride.vec();
  ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
}

// Which of (input, weight, bias) need a gradient in the backward of a node saved by save_conv_pool_args.
std::array<bool, 3> conv_pool_grad_mask(AutogradContext* ctx) {
  return {ctx->needs_input_grad(0), ctx->needs_input_grad(1),
          ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)};
}

// Saves the input, weight, pooled output (its values give the activation's mask) and one-byte argmax: no
// full-resolution tensor survives the forward. Bf16: the operators in bfloat16 (AMX).
template <bool Bf16, typename Self>
class ConvActPoolNode : public torch::autograd::Function<Self> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                            at::IntArrayRef dilation, int64_t groups, const std::string& activation,
                            at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [out, argmax] = call_conv2d_act_pool_with_argmax<Bf16>(input, weight, bias, stride, padding, dilation,
                                                                groups, activation, pool_kernel, pool_stride);
    save_conv_pool_args(ctx, bias, stride, padding, dilation, groups, activation, pool_kernel, pool_stride);
    ctx->save_for_backward({input, weight, out, argmax});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const std::array<bool, 3> mask = conv_pool_grad_mask(ctx);
    at::Tensor gi, gw, gb;
    if (grads[0].defined() && (mask[0] || mask[1] || mask[2])) {
      std::tie(gi, gw, gb) = call_conv2d_act_pool_backward<Bf16>(
          grads[0], saved[3], saved[2], saved[0], saved[1], ctx->saved_data["stride"].toIntVector(),
          ctx->saved_data["padding"].toIntVector(), ctx->saved_data["dilation"].toIntVector(),
          ctx->saved_data["groups"].toInt(), ctx->saved_data["activation"].toStringRef(),
          ctx->saved_data["pool_kernel"].toIntVector(), ctx->saved_data["pool_stride"].toIntVector(), mask);
    }
    return {gi, gw, gb, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};
class ConvActPoolFunction : public ConvActPoolNode<false, ConvActPoolFunction> {};
class ConvActPoolBf16Function : public ConvActPoolNode<true, ConvActPoolBf16Function> {};

at::Tensor conv2d_act_autograd(const at::Tensor& input, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                               at::IntArrayRef dilation, int64_t groups, c10::string_view activation);

// The convolution (any kernel) then the pooling, as one autograd node, where no fused kernel exists. Its backward
// masks the gradient by the activation's derivative on the pooled values, before the pooling's backward spreads
// it: the pooled value is the activated output at the window's argmax, so the mask is the one the convolution's
// backward would read there, and every other position gets no gradient. The mask pass then reads a quarter of
// the elements (2x2 windows), and the convolution's backward needs no mask pass of its own (the seed's 32->64
// layer: it read and wrote the whole 64 x 64 x 11 x 11 gradient).
class ConvActThenPoolFunction : public torch::autograd::Function<ConvActThenPoolFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                            at::IntArrayRef dilation, int64_t groups, const std::string& activation,
                            at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride) {
    at::AutoDispatchBelowADInplaceOrView guard;
    const at::Tensor conv = call_conv2d_act(input, weight, bias, stride, padding, dilation, groups, activation);
    auto [out, argmax] = call_max_pool2d_with_argmax(conv, pool_kernel, pool_stride);
    save_conv_pool_args(ctx, bias, stride, padding, dilation, groups, activation, pool_kernel, pool_stride);
    // The convolution's output only gives the pooling's backward its shape and layout (its values are not read).
    ctx->save_for_backward({input, weight, out, argmax, conv});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const std::array<bool, 3> mask = conv_pool_grad_mask(ctx);
    at::Tensor gi, gw, gb;
    if (grads[0].defined() && (mask[0] || mask[1] || mask[2])) {
      const std::string act = ctx->saved_data["activation"].toStringRef();
      const int a = static_cast<int>(pydlr::parse_act(act));
      // relu: pooled > 0; relu6: 0 < pooled < 6 (torch's threshold_backward / hardtanh_backward, NaN passes).
      const at::Tensor gm = a == 0   ? grads[0]
                            : a == 1 ? at::threshold_backward(grads[0], saved[2], 0)
                                     : at::hardtanh_backward(grads[0], saved[2], 0, 6);
      const at::Tensor gconv = call_max_pool2d_backward(gm, saved[3], saved[4],
                                                        ctx->saved_data["pool_kernel"].toIntVector(),
                                                        ctx->saved_data["pool_stride"].toIntVector());
      std::tie(gi, gw, gb) = call_conv2d_backward(
          gconv, saved[0], saved[1], std::nullopt, ctx->saved_data["stride"].toIntVector(),
          ctx->saved_data["padding"].toIntVector(), ctx->saved_data["dilation"].toIntVector(),
          ctx->saved_data["groups"].toInt(), "none", mask);
    }
    return {gi, gw, gb, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

// Fused where the CPU kernel exists; elsewhere the two differentiable operators one after the other.
at::Tensor conv2d_act_pool_autograd(const at::Tensor& input, const at::Tensor& weight,
                                    const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                    at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                    c10::string_view activation, at::IntArrayRef pool_kernel,
                                    at::IntArrayRef pool_stride) {
  const bool needs_grad = needs_autograd(input, weight, bias);
  if (!pydlr::conv2d_act_pool_fusable(input, weight, stride, padding, dilation, groups, activation, pool_kernel,
                                      pool_stride)) {
    if (!needs_grad) {
      return max_pool2d_autograd(
          conv2d_act_autograd(input, weight, bias, stride, padding, dilation, groups, activation), pool_kernel,
          pool_stride);
    }
    return ConvActThenPoolFunction::apply(input, weight, bias, stride, padding, dilation, groups,
                                          std::string(activation), pool_kernel, pool_stride);
  }
  if (!needs_grad) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_conv2d_act_pool(input, weight, bias, stride, padding, dilation, groups, activation, pool_kernel,
                                pool_stride);
  }
  return ConvActPoolFunction::apply(input, weight, bias, stride, padding, dilation, groups,
                                           std::string(activation), pool_kernel, pool_stride);
}

// Under CPU autocast to bfloat16, the AMX kernel where it runs these arguments (its output stays float32, as the
// layers after it expect); float32 everywhere else, as before autocast (no other pydlr operator has a bf16 kernel).
at::Tensor conv2d_act_pool_autocast_cpu(const at::Tensor& input, const at::Tensor& weight,
                                        const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                        at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                        c10::string_view activation, at::IntArrayRef pool_kernel,
                                        at::IntArrayRef pool_stride) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const bool bf16 = at::autocast::get_autocast_dtype(at::kCPU) == at::kBFloat16 &&
                    (!bias.has_value() || !bias->defined() || bias->scalar_type() == at::kFloat) &&
                    pydlr::conv2d_act_pool_bf16_fusable(input, weight, stride, padding, dilation, groups, activation,
                                                        pool_kernel, pool_stride);
  if (!bf16) {
    return call_conv2d_act_pool(input, weight, bias, stride, padding, dilation, groups, activation, pool_kernel,
                                pool_stride);
  }
  if (!needs_autograd(input, weight, bias)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_conv2d_act_pool<true>(input, weight, bias, stride, padding, dilation, groups, activation,
                                      pool_kernel, pool_stride);
  }
  return ConvActPoolBf16Function::apply(input, weight, bias, stride, padding, dilation, groups,
                                          std::string(activation), pool_kernel, pool_stride);
}

at::Tensor conv2d_act_autograd(const at::Tensor& input, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                               at::IntArrayRef dilation, int64_t groups, c10::string_view activation) {
  // Checked here too: this kernel runs first for every input, so device mismatches (e.g. meta vs cpu) get a
  // clear message instead of a dispatcher error.
  pydlr::check_conv_args("pydlr::conv2d", input, weight, bias, stride, padding, dilation, groups);
  pydlr::parse_act(activation);
  const bool needs_grad = needs_autograd(input, weight, bias);
  if (!needs_grad) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_conv2d_act(input, weight, bias, stride, padding, dilation, groups, activation);
  }
  return Conv2dFunction::apply(input, weight, bias, stride, padding, dilation, groups, std::string(activation));
}

// Under CPU autocast to bfloat16, the AMX kernel where it runs these arguments (float32 output); float32 elsewhere.
at::Tensor conv2d_act_autocast_cpu(const at::Tensor& input, const at::Tensor& weight,
                                   const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                   at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                   c10::string_view activation) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const bool bf16 = at::autocast::get_autocast_dtype(at::kCPU) == at::kBFloat16 &&
                    (!bias.has_value() || !bias->defined() || bias->scalar_type() == at::kFloat) &&
                    pydlr::conv2d_act_bf16_fusable(input, weight, stride, padding, dilation, groups);
  if (!bf16) return call_conv2d_act(input, weight, bias, stride, padding, dilation, groups, activation);
  pydlr::parse_act(activation);
  if (!needs_autograd(input, weight, bias)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_conv2d_act<true>(input, weight, bias, stride, padding, dilation, groups, activation);
  }
  return Conv2dBf16Function::apply(input, weight, bias, stride, padding, dilation, groups, std::string(activation));
}

at::Tensor conv2d_autocast_cpu(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                               at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                               int64_t groups) {
  return conv2d_act_autocast_cpu(input, weight, bias, stride, padding, dilation, groups, "none");
}

at::Tensor conv2d_autograd(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                           at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  return conv2d_act_autograd(input, weight, bias, stride, padding, dilation, groups, "none");
}

at::Tensor conv2d_cpu(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                      at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  return pydlr::conv2d_act_cpu(input, weight, bias, stride, padding, dilation, groups, "none");
}

// ---------------------------------------------------------------------------------------------- softmax cross-entropy
// Mean softmax cross-entropy of logits [n, k] against class indices [n] (torch's cross_entropy with its defaults) as
// one autograd node: the forward keeps the softmax, the backward is (softmax - one_hot) * grad / n. Replaces
// log_softmax, nll_loss and their two backward ops (four calls, two nodes) on a classifier's small output. Rows run
// serially below kSceParallel elements: a parallel region costs more than a batch of 64 x 10 logits.
constexpr int64_t kSceParallel = 1 << 16;

bool sce_native_ok(const at::Tensor& logits, const at::Tensor& target) {
  if (!(logits.device().is_cpu() && logits.scalar_type() == at::kFloat && logits.dim() == 2 && logits.size(0) > 0 &&
        logits.size(1) > 0 && target.device().is_cpu() && target.scalar_type() == at::kLong && target.dim() == 1 &&
        target.size(0) == logits.size(0))) {
    return false;
  }
  const at::Tensor t = target.contiguous();
  const int64_t* tp = t.const_data_ptr<int64_t>();
  const int64_t k = logits.size(1);
  for (int64_t i = 0; i < t.numel(); ++i)
    if (tp[i] < 0 || tp[i] >= k) return false;  // torch's own op: its error, or its ignore_index
  return true;
}

class SoftmaxCrossEntropyFunction : public torch::autograd::Function<SoftmaxCrossEntropyFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits, const at::Tensor& target) {
    at::AutoDispatchBelowADInplaceOrView guard;
    const at::Tensor x = logits.contiguous(), t = target.contiguous();
    const int64_t n = x.size(0), k = x.size(1);
    at::Tensor prob = at::empty({n, k}, x.options());
    std::vector<double> row_loss(static_cast<size_t>(n));
    const float* xp = x.const_data_ptr<float>();
    const int64_t* tp = t.const_data_ptr<int64_t>();
    float* pp = prob.mutable_data_ptr<float>();
    at::parallel_for(0, n, std::max<int64_t>(1, kSceParallel / k), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = xp + r * k;
        float* pr = pp + r * k;
        float m = xr[0];
        for (int64_t j = 1; j < k; ++j) m = (xr[j] > m || std::isnan(xr[j])) ? xr[j] : m;
        float sum = 0.f;
        for (int64_t j = 0; j < k; ++j) sum += (pr[j] = std::exp(xr[j] - m));
        const float inv = 1.f / sum;
        for (int64_t j = 0; j < k; ++j) pr[j] *= inv;
        row_loss[r] = static_cast<double>(std::log(sum)) + m - xr[tp[r]];  // logsumexp - logit of the class
      }
    });
    double total = 0.0;
    for (const double v : row_loss) total += v;
    ctx->save_for_backward({prob, t});
    return at::scalar_tensor(total / static_cast<double>(n), x.options());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    at::Tensor gx;
    if (grads[0].defined() && ctx->needs_input_grad(0)) {
      const at::Tensor& prob = saved[0];
      const int64_t n = prob.size(0), k = prob.size(1);
      const float scale = grads[0].item<float>() / static_cast<float>(n);
      gx = at::empty({n, k}, prob.options());
      const float* pp = prob.const_data_ptr<float>();
      const int64_t* tp = saved[1].const_data_ptr<int64_t>();
      float* gp = gx.mutable_data_ptr<float>();
      at::parallel_for(0, n, std::max<int64_t>(1, kSceParallel / k), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          for (int64_t j = 0; j < k; ++j) gp[r * k + j] = pp[r * k + j] * scale;
          gp[r * k + tp[r]] -= scale;
        }
      });
    }
    return {gx, at::Tensor()};
  }
};

// Below autograd (inference mode): torch's cross_entropy, as the value needs no saved softmax.
at::Tensor softmax_cross_entropy_plain(const at::Tensor& logits, const at::Tensor& target) {
  return at::cross_entropy_loss(logits, target);
}

// Autograd kernel of pydlr::softmax_cross_entropy: the native node where sce_native_ok, torch's cross_entropy
// (differentiable as usual) elsewhere.
at::Tensor softmax_cross_entropy_autograd(const at::Tensor& logits, const at::Tensor& target) {
  if (!sce_native_ok(logits, target)) return at::cross_entropy_loss(logits, target);
  if (!at::GradMode::is_enabled() || !logits.requires_grad()) {
    at::AutoGradMode no_grad(false);
    return SoftmaxCrossEntropyFunction::apply(logits.detach(), target);
  }
  return SoftmaxCrossEntropyFunction::apply(logits, target);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> call_batch_norm_act(
    const at::Tensor& input, const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias,
    at::Tensor& running_mean, at::Tensor& running_var, double momentum, double eps, c10::string_view activation) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("pydlr::batch_norm_act", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                           const at::Tensor&, const std::optional<at::Tensor>&, const std::optional<at::Tensor>&,
                           at::Tensor&, at::Tensor&, double, double, c10::string_view)>();
  return op.call(input, weight, bias, running_mean, running_var, momentum, eps, activation);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> call_batch_norm_act_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& save_mean, const at::Tensor& save_invstd,
    c10::string_view activation, std::array<bool, 3> mask) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("pydlr::batch_norm_act_backward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                           const std::optional<at::Tensor>&, const at::Tensor&, const at::Tensor&, c10::string_view,
                           std::array<bool, 3>)>();
  return op.call(grad_output, input, weight, bias, save_mean, save_invstd, activation, mask);
}

// Saves the input (not the output): the backward recomputes the activation's mask from it. The saved mean and
// invstd are outputs too (the schema's, as torch's native_batch_norm), not differentiable.
class BatchNormActFunction : public torch::autograd::Function<BatchNormActFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& input, const std::optional<at::Tensor>& weight,
                               const std::optional<at::Tensor>& bias, at::Tensor running_mean, at::Tensor running_var,
                               double momentum, double eps, const std::string& activation) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [out, mean, invstd] =
        call_batch_norm_act(input, weight, bias, running_mean, running_var, momentum, eps, activation);
    const at::Tensor w = weight.has_value() ? *weight : at::Tensor();
    const at::Tensor b = bias.has_value() ? *bias : at::Tensor();
    ctx->saved_data["activation"] = activation;
    ctx->save_for_backward({input, w, b, mean, invstd});
    ctx->mark_non_differentiable({mean, invstd});
    return {out, mean, invstd};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const std::array<bool, 3> mask{ctx->needs_input_grad(0), saved[1].defined() && ctx->needs_input_grad(1),
                                   saved[2].defined() && ctx->needs_input_grad(2)};
    at::Tensor gi, gw, gb;
    if (grads[0].defined() && (mask[0] || mask[1] || mask[2])) {
      const std::optional<at::Tensor> w = saved[1].defined() ? std::optional<at::Tensor>(saved[1]) : std::nullopt;
      const std::optional<at::Tensor> b = saved[2].defined() ? std::optional<at::Tensor>(saved[2]) : std::nullopt;
      std::tie(gi, gw, gb) = call_batch_norm_act_backward(grads[0], saved[0], w, b, saved[3], saved[4],
                                                          ctx->saved_data["activation"].toStringRef(), mask);
    }
    return {gi, gw, gb, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act_autograd(
    const at::Tensor& input, const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias,
    at::Tensor& running_mean, at::Tensor& running_var, double momentum, double eps, c10::string_view activation) {
  pydlr::parse_act(activation);
  const bool needs_grad = needs_autograd(input, weight, bias);
  std::tuple<at::Tensor, at::Tensor, at::Tensor> result;
  if (!needs_grad) {
    at::AutoDispatchBelowADInplaceOrView guard;
    result = call_batch_norm_act(input, weight, bias, running_mean, running_var, momentum, eps, activation);
  } else {
    auto outs = BatchNormActFunction::apply(input, weight, bias, running_mean, running_var, momentum, eps,
                                            std::string(activation));
    result = {outs[0], outs[1], outs[2]};
  }
  // The running statistics changed in place below the ADInplaceOrView key: bump their versions as torch's
  // in-place ops do (pydlr's inference cache and autograd's saved-tensor checks read them).
  torch::autograd::impl::bump_version(running_mean);
  torch::autograd::impl::bump_version(running_var);
  return result;
}

pybind11::dict build_info() {
  pybind11::dict d;
#if defined(__clang__)
  d["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  d["compiler"] = std::string("gcc ") + __VERSION__;
#else
  d["compiler"] = std::string("unknown");
#endif
  d["simd"] = pydlr::simd_level();
  d["amx_bf16"] = pydlr::amx_bf16_usable();  // the bfloat16 AMX kernels can run (CPU and OS)
#ifdef _OPENMP
  d["openmp"] = static_cast<int>(_OPENMP);
#else
  d["openmp"] = pybind11::none();
#endif
  d["threads"] = at::get_num_threads();
  d["blas"] = pydlr::direct_blas() ? std::string("MKL sgemm_/dgemm_ from libtorch_cpu (direct calls)")
                                   : std::string("at::mm fallback");
  d["onednn"] = !pydlr::onednn_present() ? std::string("absent (own kernels for every shape)")
                : pydlr::onednn_enabled() ? std::string("float32 GEMM-bound shapes, activation as post-op")
                                          : std::string("present, switched off (own kernels for every shape)");
#ifdef PYDLR_WITH_CUDA
  d["cuda"] = true;
#else
  d["cuda"] = false;
#endif
  d["torch_version"] = std::string(TORCH_VERSION);
  d["libpng"] = pydlr::png_decoder_available();
  return d;
}

}  // namespace

TORCH_LIBRARY(pydlr, m) {
  m.def(
      "conv2d(Tensor input, Tensor weight, Tensor? bias, int[2] stride, int[2] padding, int[2] dilation, "
      "int groups) -> Tensor");
  m.def(
      "conv2d_act(Tensor input, Tensor weight, Tensor? bias, int[2] stride, int[2] padding, int[2] dilation, "
      "int groups, str activation) -> Tensor");
  m.def(
      "conv2d_backward(Tensor grad_output, Tensor input, Tensor weight, Tensor? output, int[2] stride, "
      "int[2] padding, int[2] dilation, int groups, str activation, bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  m.def(
      "conv2d_act_pool(Tensor input, Tensor weight, Tensor? bias, int[2] stride, int[2] padding, int[2] dilation, "
      "int groups, str activation, int[2] pool_kernel, int[2] pool_stride) -> Tensor");
  m.def(
      "conv2d_act_pool_with_argmax(Tensor input, Tensor weight, Tensor? bias, int[2] stride, int[2] padding, "
      "int[2] dilation, int groups, str activation, int[2] pool_kernel, int[2] pool_stride) -> (Tensor, Tensor)");
  m.def(
      "conv2d_act_pool_backward(Tensor grad_output, Tensor argmax, Tensor output, Tensor input, Tensor weight, "
      "int[2] stride, int[2] padding, int[2] dilation, int groups, str activation, int[2] pool_kernel, "
      "int[2] pool_stride, bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  m.def(
      "conv2d_act_bf16(Tensor input, Tensor weight, Tensor? bias, int[2] stride, int[2] padding, int[2] dilation, "
      "int groups, str activation) -> Tensor");
  m.def(
      "conv2d_backward_bf16(Tensor grad_output, Tensor input, Tensor weight, Tensor? output, int[2] stride, "
      "int[2] padding, int[2] dilation, int groups, str activation, bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  m.def(
      "conv2d_act_pool_bf16(Tensor input, Tensor weight, Tensor? bias, int[2] stride, int[2] padding, "
      "int[2] dilation, int groups, str activation, int[2] pool_kernel, int[2] pool_stride) -> Tensor");
  m.def(
      "conv2d_act_pool_bf16_with_argmax(Tensor input, Tensor weight, Tensor? bias, int[2] stride, int[2] padding, "
      "int[2] dilation, int groups, str activation, int[2] pool_kernel, int[2] pool_stride) -> (Tensor, Tensor)");
  m.def(
      "conv2d_act_pool_bf16_backward(Tensor grad_output, Tensor argmax, Tensor output, Tensor input, Tensor weight, "
      "int[2] stride, int[2] padding, int[2] dilation, int groups, str activation, int[2] pool_kernel, "
      "int[2] pool_stride, bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  m.def("softmax_cross_entropy(Tensor logits, Tensor target) -> Tensor");
  m.def("max_pool2d(Tensor input, int[2] kernel_size, int[2] stride) -> Tensor");
  m.def("max_pool2d_with_argmax(Tensor input, int[2] kernel_size, int[2] stride) -> (Tensor, Tensor)");
  m.def(
      "max_pool2d_backward(Tensor grad_output, Tensor argmax, Tensor input, int[2] kernel_size, int[2] stride) "
      "-> Tensor");
  m.def(
      "kmeans_step(Tensor x, Tensor x_sq, Tensor centers, Tensor(a!) labels, Tensor(b!) min_dist, bool accumulate) "
      "-> (Tensor, Tensor, int)");
  m.def("kmeans_pp_dists(Tensor x, Tensor x_sq, Tensor points, Tensor closest) -> (Tensor, Tensor)");
  m.def(
      "kmeans_bounded_step(Tensor x, Tensor centers, Tensor shift, Tensor(a!) labels, Tensor(b!) upper, "
      "Tensor(c!) lower, Tensor(d!) norms, Tensor(e!) sums, Tensor(f!) counts) -> (int, int)");
  m.def("kmeans_own_dists(Tensor x, Tensor x_sq, Tensor centers, Tensor labels, Tensor(a!) min_dist) -> ()");
  // No tensor argument to dispatch on: one kernel for every backend.
  m.def("decode_png_batch(str[] paths, int channels) -> (Tensor, Tensor, str[])", &pydlr::decode_png_batch_cpu);
  m.def(
      "decode_png_warp_batch(str[] paths, int channels, Tensor theta, Tensor xs, Tensor ys, Tensor(a!) out, "
      "int interpolation, int padding, float fill, bool resize) -> str[]",
      &pydlr::decode_png_warp_batch_cpu);
  m.def(
      "batch_norm_act(Tensor input, Tensor? weight, Tensor? bias, Tensor(a!) running_mean, Tensor(b!) running_var, "
      "float momentum, float eps, str activation) -> (Tensor, Tensor, Tensor)");
  m.def(
      "batch_norm_act_backward(Tensor grad_output, Tensor input, Tensor? weight, Tensor? bias, Tensor save_mean, "
      "Tensor save_invstd, str activation, bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  m.def("rows_to_float32(Tensor src, int start, int stop) -> Tensor");
  m.def("rows_to_float32_checked(Tensor src, int start, int stop) -> (Tensor, bool)");
}

TORCH_LIBRARY_IMPL(pydlr, CPU, m) {
  m.impl("conv2d", conv2d_cpu);
  m.impl("conv2d_act", pydlr::conv2d_act_cpu);
  m.impl("conv2d_backward", pydlr::conv2d_backward_cpu);
  m.impl("conv2d_act_pool", pydlr::conv2d_act_pool_cpu);
  m.impl("conv2d_act_pool_with_argmax", pydlr::conv2d_act_pool_with_argmax_cpu);
  m.impl("conv2d_act_pool_backward", pydlr::conv2d_act_pool_backward_cpu);
  m.impl("conv2d_act_bf16", pydlr::conv2d_act_bf16_cpu);
  m.impl("conv2d_backward_bf16", pydlr::conv2d_backward_bf16_cpu);
  m.impl("conv2d_act_pool_bf16", pydlr::conv2d_act_pool_bf16_cpu);
  m.impl("conv2d_act_pool_bf16_with_argmax", pydlr::conv2d_act_pool_bf16_with_argmax_cpu);
  m.impl("conv2d_act_pool_bf16_backward", pydlr::conv2d_act_pool_bf16_backward_cpu);
  m.impl("max_pool2d", pydlr::max_pool2d_cpu);
  m.impl("max_pool2d_with_argmax", pydlr::max_pool2d_with_argmax_cpu);
  m.impl("max_pool2d_backward", pydlr::max_pool2d_backward_cpu);
  m.impl("softmax_cross_entropy", softmax_cross_entropy_plain);
  m.impl("kmeans_step", pydlr::kmeans_step_cpu);
  m.impl("kmeans_pp_dists", pydlr::kmeans_pp_dists_cpu);
  m.impl("kmeans_bounded_step", pydlr::kmeans_bounded_step_cpu);
  m.impl("kmeans_own_dists", pydlr::kmeans_own_dists_cpu);
  m.impl("batch_norm_act", pydlr::batch_norm_act_cpu);
  m.impl("batch_norm_act_backward", pydlr::batch_norm_act_backward_cpu);
  m.impl("rows_to_float32", pydlr::rows_to_float32_cpu);
  m.impl("rows_to_float32_checked", pydlr::rows_to_float32_checked_cpu);
}

TORCH_LIBRARY_IMPL(pydlr, Autograd, m) {
  m.impl("conv2d", conv2d_autograd);
  m.impl("conv2d_act", conv2d_act_autograd);
  m.impl("max_pool2d", max_pool2d_autograd);
  m.impl("conv2d_act_pool", conv2d_act_pool_autograd);
  m.impl("softmax_cross_entropy", softmax_cross_entropy_autograd);
  m.impl("batch_norm_act", batch_norm_act_autograd);
}

TORCH_LIBRARY_IMPL(pydlr, AutocastCPU, m) {
  m.impl("conv2d", conv2d_autocast_cpu);
  m.impl("conv2d_act", conv2d_act_autocast_cpu);
  m.impl("conv2d_act_pool", conv2d_act_pool_autocast_cpu);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "pydlr's native operators (registered as torch.ops.pydlr.*)";
  m.attr("TINY_PLANE") = pydlr::kTinyPlane;  // pydlr.ops.native_wins: below it the channels-last GEMM path wins
  m.def("build_info", &build_info, "Build facts: compiler, SIMD level, OpenMP, threads, BLAS, CUDA.");
  m.def("conv2d_cpu_path", &pydlr::conv2d_cpu_path,
        "The CPU forward kernel pydlr::conv2d picks for these arguments (the same in inference and training).",
        pybind11::arg("input"), pybind11::arg("weight"), pybind11::arg("stride"), pybind11::arg("padding"),
        pybind11::arg("dilation"), pybind11::arg("groups"));
  m.def("set_onednn_enabled", &pydlr::set_onednn_enabled,
        "Let (True, the default) or stop (False) pydlr::conv2d handing float32 GEMM-bound shapes to oneDNN.",
        pybind11::arg("enabled"));
  m.def("onednn_enabled", &pydlr::onednn_enabled, "Whether the oneDNN route is switched on.");
  m.def("cpu_cache_stats", &pydlr::cpu_cache_stats,
        "The CPU caching allocator's counters: enabled, cached_bytes, limit_bytes, hits, misses.");
  m.def("cpu_cache_clear", &pydlr::cpu_cache_clear, "Return the CPU blocks kept for reuse to malloc.");
  m.def("cpu_cache_use", &pydlr::cpu_cache_use, "New CPU tensors from the caching allocator (True) or c10's.",
        pybind11::arg("on"));
  m.def("adam_step_", &pydlr::adam_step_,
        "Adam/AdamW update (torch.optim.Adam's formula) of CPU float32 tensors in place, in one call.",
        pybind11::arg("params"), pybind11::arg("grads"), pybind11::arg("exp_avgs"), pybind11::arg("exp_avg_sqs"),
        pybind11::arg("steps"), pybind11::arg("lr"), pybind11::arg("beta1"), pybind11::arg("beta2"),
        pybind11::arg("eps"), pybind11::arg("weight_decay"), pybind11::arg("decoupled"));
  m.def("conv2d_act_pool_fusable",
        [](const at::Tensor& input, const at::Tensor& weight, std::vector<int64_t> stride, std::vector<int64_t> padding,
           std::vector<int64_t> dilation, int64_t groups, const std::string& activation,
           std::vector<int64_t> pool_kernel, std::vector<int64_t> pool_stride) {
          return pydlr::conv2d_act_pool_fusable(input, weight, stride, padding, dilation, groups, activation,
                                                pool_kernel, pool_stride);
        },
        "Whether pydlr::conv2d_act_pool runs its fused kernel (not the convolution then the pooling) here.",
        pybind11::arg("input"), pybind11::arg("weight"), pybind11::arg("stride"), pybind11::arg("padding"),
        pybind11::arg("dilation"), pybind11::arg("groups"), pybind11::arg("activation"),
        pybind11::arg("pool_kernel"), pybind11::arg("pool_stride"));
  m.def("conv2d_act_pool_bf16_fusable",
        [](const at::Tensor& input, const at::Tensor& weight, std::vector<int64_t> stride, std::vector<int64_t> padding,
           std::vector<int64_t> dilation, int64_t groups, const std::string& activation,
           std::vector<int64_t> pool_kernel, std::vector<int64_t> pool_stride) {
          return pydlr::conv2d_act_pool_bf16_fusable(input, weight, stride, padding, dilation, groups, activation,
                                                     pool_kernel, pool_stride);
        },
        "Whether pydlr::conv2d_act_pool runs the bfloat16 AMX kernel here under CPU autocast to bfloat16.",
        pybind11::arg("input"), pybind11::arg("weight"), pybind11::arg("stride"), pybind11::arg("padding"),
        pybind11::arg("dilation"), pybind11::arg("groups"), pybind11::arg("activation"),
        pybind11::arg("pool_kernel"), pybind11::arg("pool_stride"));
  m.def("conv2d_act_bf16_fusable",
        [](const at::Tensor& input, const at::Tensor& weight, std::vector<int64_t> stride, std::vector<int64_t> padding,
           std::vector<int64_t> dilation, int64_t groups) {
          return pydlr::conv2d_act_bf16_fusable(input, weight, stride, padding, dilation, groups);
        },
        "Whether pydlr::conv2d_act runs the bfloat16 AMX kernel here under CPU autocast to bfloat16.",
        pybind11::arg("input"), pybind11::arg("weight"), pybind11::arg("stride"), pybind11::arg("padding"),
        pybind11::arg("dilation"), pybind11::arg("groups"));
}
