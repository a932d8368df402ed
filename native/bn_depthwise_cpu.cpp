// Training-mode BatchNorm + activation (none, relu, relu6) followed by a depthwise convolution, as one operator
// (CPU, channels-last): MobileNetV2's and EfficientNet-Lite's expand 1x1 -> BN -> ReLU6 -> depthwise 3x3.
//
// Why: unfused, the BatchNorm writes its activated output y (the block's widest tensor: 6x the block's channels at
// the input resolution) and the depthwise convolution reads it back, in the forward and again in the backward for
// its weight gradient. Here y is never stored: the convolution runs on bands of output rows, and the input rows a
// band reads are normalized and activated into a per-thread buffer that stays in cache (batch_norm_act's own row
// kernel, so the values are the unfused ones bit for bit); the backward rebuilds the same bands for the weight
// gradient, then runs batch_norm_act's backward on the input gradient. A forward saves one read and one write of
// the widest tensor per block.
//
// The band path covers the tiled depthwise 3x3 shapes (float32, C % 16 == 0, stride 1 or 2; depthwise_cpu.cpp);
// every other shape and float64 materialize y and run the general depthwise rows (same results, no saving).
// The band path's backward also folds in the first pass of the BatchNorm backward (the masked-gradient sums), while
// the input-gradient rows it just wrote and the matching input rows are in cache.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "bn_depthwise.h"
#include "conv.h"

namespace pydlr {
namespace {

constexpr int64_t kBandBytes = 256 * 1024;  // normalized input rows per band buffer: well inside a core's L2

// Output rows per band: as many as fit the buffer's input rows, at least one.
int64_t band_rows(const ConvGeom& g) {
  const int64_t in_rows = std::max<int64_t>(g.KH, kBandBytes / (g.W * g.C * static_cast<int64_t>(sizeof(float))));
  return std::min(g.OH, std::max<int64_t>(1, (in_rows - g.KH) / g.sh + 1));
}

int64_t band_input_rows(const ConvGeom& g, int64_t out_rows) { return (out_rows - 1) * g.sh + g.KH; }

// The band's geometry: one image whose rows are the buffer's (padding rows included, as zeros), no vertical padding.
ConvGeom band_geom(const ConvGeom& g, int64_t oh0, int64_t oh1) {
  ConvGeom b = g;
  b.N = 1;
  b.H = band_input_rows(g, oh1 - oh0);
  b.ph = 0;
  b.OH = oh1 - oh0;
  return b;
}

// y = act(x * alpha + beta) for the input rows output rows [oh0, oh1) of image n read; rows in the padding are zeros.
void fill_band(const ConvGeom& g, int act, const float* x, const float* al, const float* be, float* buf, int64_t n,
               int64_t oh0, int64_t oh1) {
  const int64_t first = oh0 * g.sh - g.ph, count = band_input_rows(g, oh1 - oh0), row = g.W * g.C;
  for (int64_t j = 0; j < count; ++j) {
    const int64_t ih = first + j;
    float* dst = buf + j * row;
    if (ih < 0 || ih >= g.H) {
      std::fill_n(dst, row, 0.0f);
    } else {
      detail::bn_apply_rows(act, x + (n * g.H + ih) * row, dst, g.W, g.C, al, be);
    }
  }
}

// Calls f(n, oh0, oh1, buf) for every band of output rows, buf holding the band's normalized input rows.
template <typename F>
void for_each_band(const ConvGeom& g, int act, const float* x, const float* al, const float* be, F&& f) {
  const int64_t B = band_rows(g), nb = (g.OH + B - 1) / B;
  at::parallel_for(0, g.N * nb, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> buf(static_cast<size_t>(band_input_rows(g, B) * g.W * g.C));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / nb, oh0 = (t % nb) * B, oh1 = std::min(g.OH, oh0 + B);
      fill_band(g, act, x, al, be, buf.data(), n, oh0, oh1);
      f(n, oh0, oh1, buf.data());
    }
  });
}

at::Tensor depthwise_weight_rows(const at::Tensor& weight, int64_t C) {
  return weight.reshape({C, 9}).t().contiguous();  // [3, 3, C], the tiled kernels' layout
}

void banded_forward(const ConvGeom& g, int act, const at::Tensor& x, const at::Tensor& alpha, const at::Tensor& beta,
                    const at::Tensor& weight, at::Tensor& z) {
  const at::Tensor wd = depthwise_weight_rows(weight, g.C);
  const float* wp = wd.const_data_ptr<float>();
  float* zp = z.mutable_data_ptr<float>();
  for_each_band(g, act, x.const_data_ptr<float>(), alpha.const_data_ptr<float>(), beta.const_data_ptr<float>(),
                [&](int64_t n, int64_t oh0, int64_t oh1, const float* buf) {
                  const ConvGeom b = band_geom(g, oh0, oh1);
                  float* zb = zp + (n * g.OH + oh0) * g.OW * g.C;
                  for (int64_t oh = 0; oh < b.OH; ++oh) detail::dw3_fwd_row(b, buf, wp, nullptr, zb, 0, 0, oh);
                });
}

// Per-band partial sums for the BatchNorm backward, added in band order at the end (the result does not depend on
// which thread ran which band).
struct BandSums {
  int64_t C;
  std::vector<double> part;
  BandSums(int64_t bands, int64_t C) : C(C), part(static_cast<size_t>(bands * 2 * C), 0.0) {}
  double* sg(int64_t band) { return part.data() + band * 2 * C; }
  double* sgx(int64_t band) { return part.data() + band * 2 * C + C; }
  void total(std::vector<double>& a, std::vector<double>& b) const {
    a.assign(static_cast<size_t>(C), 0.0);
    b.assign(static_cast<size_t>(C), 0.0);
    for (size_t k = 0; k < part.size(); k += 2 * C) {
      for (int64_t c = 0; c < C; ++c) {
        a[c] += part[k + c];
        b[c] += part[k + C + c];
      }
    }
  }
};

// The backward of the depthwise convolution on the rebuilt bands, with the first pass of the BatchNorm backward
// folded in. Each band writes the input-gradient rows gy its gradient rows are the last to feed (as dw3_backward)
// and, while those rows and the matching input rows are in cache, adds their masked-gradient sums (sg, sgx: the
// BatchNorm backward's first pass, which would otherwise read gy and x again); then it adds its weight gradient
// from the rebuilt band. Returns the weight gradient [C, 1, 3, 3].
at::Tensor banded_backward(const ConvGeom& g, int act, const at::Tensor& x, const at::Tensor& alpha,
                           const at::Tensor& beta, const at::Tensor& mean, const at::Tensor& weight,
                           const at::Tensor& gz, at::Tensor& gy, std::vector<double>& sg, std::vector<double>& sgx) {
  const at::Tensor wd = depthwise_weight_rows(weight, g.C);
  const float* wp = wd.const_data_ptr<float>();
  std::vector<float> flipped(9 * g.C);
  for (int k = 0; k < 9; ++k) std::copy_n(wp + (8 - k) * g.C, g.C, flipped.data() + k * g.C);
  const ConvGeom t = input_grad_geometry(g);
  const int64_t KC = 10 * g.C, B = band_rows(g), row = g.W * g.C;
  at::Tensor accs = at::zeros({at::get_num_threads(), KC}, x.options().memory_format(at::MemoryFormat::Contiguous));
  float* ap = accs.mutable_data_ptr<float>();
  const float* xp = x.const_data_ptr<float>();
  const float* gp = gz.const_data_ptr<float>();
  const float *al = alpha.const_data_ptr<float>(), *be = beta.const_data_ptr<float>();
  const float* mp = mean.const_data_ptr<float>();
  float* dp = gy.mutable_data_ptr<float>();
  BandSums sums(g.N * ((g.OH + B - 1) / B), g.C);
  for_each_band(g, act, xp, al, be, [&](int64_t n, int64_t oh0, int64_t oh1, const float* buf) {
    const int64_t first = std::min(g.H, oh0 * g.sh);
    const int64_t last = oh1 == g.OH ? g.H : std::min(g.H, oh1 * g.sh);
    for (int64_t ih = first; ih < last; ++ih) {
      if (g.sh == 1) {
        detail::dw3_fwd_row(t, gp, flipped.data(), nullptr, dp, 0, n, ih);
      } else {
        detail::dw3_dx_row_s2(g, gp, wp, dp, n, ih);
      }
    }
    const int64_t band = n * ((g.OH + B - 1) / B) + oh0 / B;
    std::vector<float> scratch(2 * g.C);
    const int64_t off = (n * g.H + first) * row;
    detail::bn_grad_sums_rows(act, dp + off, xp + off, (last - first) * g.W, g.C, al, be, mp, scratch.data(),
                              scratch.data() + g.C, sums.sg(band), sums.sgx(band));
    const ConvGeom b = band_geom(g, oh0, oh1);
    float* acc = ap + at::get_thread_num() * KC;
    const float* gb = gp + (n * g.OH + oh0) * g.OW * g.C;
    for (int64_t oh = 0; oh < b.OH; ++oh) detail::dw3_wgrad_row(b, buf, gb, acc, acc + 9 * g.C, 0, oh);
  });
  sums.total(sg, sgx);
  return accs.sum(0).narrow(0, 0, 9 * g.C).view({9, g.C}).t().reshape({g.C, 1, 3, 3}).contiguous();
}

// The activated BatchNorm output, materialized (paths without bands).
template <typename T>
at::Tensor activated(int act, const at::Tensor& x, const at::Tensor& alpha, const at::Tensor& beta) {
  at::Tensor y = at::empty_like(x);
  detail::bn_apply_rows(act, x.const_data_ptr<T>(), y.mutable_data_ptr<T>(), x.numel() / x.size(1), x.size(1),
                        alpha.const_data_ptr<T>(), beta.const_data_ptr<T>());
  return y;
}

// padding: (top, bottom, left, right); the kernels pad top and left explicitly and treat every tap past the
// bottom or right edge as padding, so the output size alone carries the bottom and right padding (Keras' "same"
// at stride 2 pads one side only).
ConvGeom checked_geometry(const char* op, const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef stride,
                          at::IntArrayRef padding) {
  TORCH_CHECK(padding.size() == 4 && padding[0] >= 0 && padding[1] >= 0 && padding[2] >= 0 && padding[3] >= 0, op,
              ": padding must be 4 non-negative ints (top, bottom, left, right); got ", padding);
  // The shared checks with the larger side's padding on both (their size check is then implied by the one below),
  // the geometry then set to the actual sides.
  const int64_t one[2] = {1, 1}, wide[2] = {std::max(padding[0], padding[1]), std::max(padding[2], padding[3])};
  ConvGeom g = check_conv_args(op, input, weight, std::nullopt, stride, wide, one, input.size(1));
  g.ph = padding[0];
  g.pw = padding[2];
  TORCH_CHECK(g.OC == g.C && weight.size(1) == 1, op, ": weight must be depthwise (", g.C, ", 1, kH, kW), got ",
              weight.sizes());
  TORCH_CHECK(weight.is_contiguous(), op, ": weight must be contiguous");
  g.OH = (g.H + padding[0] + padding[1] - g.KH) / g.sh + 1;
  g.OW = (g.W + padding[2] + padding[3] - g.KW) / g.sw + 1;
  TORCH_CHECK(g.H + padding[0] + padding[1] >= g.KH && g.W + padding[2] + padding[3] >= g.KW, op,
              ": the padded input is smaller than the kernel");
  return g;
}

bool banded(const ConvGeom& g, const at::Tensor& x) { return detail::dw3_tiled_ok(g, x.scalar_type()); }

at::Tensor channels_last_empty(const ConvGeom& g, const at::Tensor& x) {
  return at::empty({g.N, g.C, g.OH, g.OW}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> forward_cpu(const at::Tensor& input,
                                                          const std::optional<at::Tensor>& bn_weight,
                                                          const std::optional<at::Tensor>& bn_bias,
                                                          at::Tensor& running_mean, at::Tensor& running_var,
                                                          double momentum, double eps, c10::string_view activation,
                                                          const at::Tensor& weight, at::IntArrayRef stride,
                                                          at::IntArrayRef padding) {
  const char* op = "pydlr::batch_norm_act_depthwise";
  const int act = static_cast<int>(parse_act(activation));
  at::Tensor mean, invstd, alpha, beta;
  std::tie(mean, invstd, alpha, beta) =
      detail::batch_norm_stats(op, input, bn_weight, bn_bias, running_mean, running_var, momentum, eps);
  const ConvGeom g = checked_geometry(op, input, weight, stride, padding);
  at::Tensor z = channels_last_empty(g, input);
  if (banded(g, input)) {
    banded_forward(g, act, input, alpha, beta, weight, z);
  } else {
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "batch_norm_act_depthwise", [&] {
      const at::Tensor y = activated<scalar_t>(act, input, alpha, beta);
      detail::dw_nhwc_rows_forward<scalar_t>(g, y.const_data_ptr<scalar_t>(), weight, nullptr,
                                             z.mutable_data_ptr<scalar_t>(), 0);
    });
  }
  return {z, mean, invstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const std::optional<at::Tensor>& bn_weight,
    const std::optional<at::Tensor>& bn_bias, const at::Tensor& save_mean, const at::Tensor& save_invstd,
    c10::string_view activation, const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding) {
  const char* op = "pydlr::batch_norm_act_depthwise_backward";
  const int act = static_cast<int>(parse_act(activation));
  const ConvGeom g = checked_geometry(op, input, weight, stride, padding);
  TORCH_CHECK(input.is_contiguous(at::MemoryFormat::ChannelsLast), op, ": input must be channels-last");
  TORCH_CHECK(grad_output.dim() == 4 && grad_output.size(0) == g.N && grad_output.size(1) == g.C &&
                  grad_output.size(2) == g.OH && grad_output.size(3) == g.OW &&
                  grad_output.scalar_type() == input.scalar_type(),
              op, ": grad_output must be the output's size and dtype, got ", grad_output.sizes());
  const at::Tensor gz = grad_output.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor alpha = at::empty_like(save_mean), beta = at::empty_like(save_mean);
  const at::Tensor w = bn_weight.has_value() ? *bn_weight : at::Tensor();
  const at::Tensor b = bn_bias.has_value() ? *bn_bias : at::Tensor();
  at::Tensor gy = at::empty_like(input), gw;
  const std::array<bool, 3> mask = {true, w.defined(), b.defined()};
  if (banded(g, input)) {
    detail::bn_affine<float>(w, b, save_mean, save_invstd, alpha, beta);
    std::vector<double> sg, sgx;
    gw = banded_backward(g, act, input, alpha, beta, save_mean, weight, gz, gy, sg, sgx);
    at::Tensor dx, dgamma, dbeta;
    std::tie(dx, dgamma, dbeta) = detail::batch_norm_act_backward_from_sums(gy, input, bn_weight, bn_bias, save_mean,
                                                                            save_invstd, activation, mask, sg, sgx);
    return {dx, dgamma, dbeta, gw};
  } else {
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "batch_norm_act_depthwise_backward", [&] {
      detail::bn_affine<scalar_t>(w, b, save_mean, save_invstd, alpha, beta);
      const at::Tensor y = activated<scalar_t>(act, input, alpha, beta);
      gw = detail::dw_nhwc_rows_backward<scalar_t>(g, y.const_data_ptr<scalar_t>(), gz.const_data_ptr<scalar_t>(),
                                                   weight, gy.mutable_data_ptr<scalar_t>(), true, input.options());
    });
  }
  at::Tensor dx, dgamma, dbeta;
  std::tie(dx, dgamma, dbeta) = batch_norm_act_backward_cpu(gy, input, bn_weight, bn_bias, save_mean, save_invstd,
                                                             activation, mask);
  return {dx, dgamma, dbeta, gw};
}

}  // namespace
}  // namespace pydlr

// Registered here rather than in ops.cpp: the operator has no autograd kernel of its own (pydlr.ops wraps the
// pair in a torch.autograd.Function).
TORCH_LIBRARY_FRAGMENT(pydlr, m) {
  m.def(
      "batch_norm_act_depthwise(Tensor input, Tensor? bn_weight, Tensor? bn_bias, Tensor(a!) running_mean, "
      "Tensor(b!) running_var, float momentum, float eps, str activation, Tensor weight, int[2] stride, "
      "int[4] padding) -> (Tensor, Tensor, Tensor)");
  m.def(
      "batch_norm_act_depthwise_backward(Tensor grad_output, Tensor input, Tensor? bn_weight, Tensor? bn_bias, "
      "Tensor save_mean, Tensor save_invstd, str activation, Tensor weight, int[2] stride, int[4] padding) -> "
      "(Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(pydlr, CPU, m) {
  m.impl("batch_norm_act_depthwise", pydlr::forward_cpu);
  m.impl("batch_norm_act_depthwise_backward", pydlr::backward_cpu);
}
