// BatchNorm in training mode fused with the activation after it (none, relu, relu6), CPU, channels-last.
//
// Why: in MobileNetV2 / EfficientNet-Lite training, torch's batch_norm and the ReLU6 after it are separate passes
// over the largest tensors of the step: forward reads x twice (statistics, normalize) and writes y, then the
// clamp reads y and writes a second tensor; backward runs hardtanh_backward (reads g and y, writes g') before
// batch_norm's two passes over g' and x. Here the forward is one statistics pass and one pass writing the activated
// output; the backward recomputes the activation's mask from x (y = x * alpha + beta, the same float expression as
// the forward, so the same mask) inside its own two passes, so neither the pre-activation tensor nor the masked
// gradient is ever stored.
//
// Layout: the input is read as rows of C contiguous channels (an (N, C, H, W) tensor in channels-last memory, or
// (N, C)); per-channel sums are accumulated per chunk of rows (float over blocks of kBlock rows, then float64) and
// the chunks' partial sums added in a fixed order, so results do not depend on the thread count's scheduling.
// Statistics and running-stat updates follow torch (batch_norm_cpu): biased variance to normalize, unbiased in the
// running variance, invstd = 1 / sqrt(var + eps) in float64, saved mean / invstd in the input's dtype.
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/Dispatch.h>

#include <cmath>
#include <vector>

#include "bn_depthwise.h"
#include "conv.h"

namespace pydlr {
namespace {

constexpr int64_t kBlock = 32;  // rows summed in the input's precision before a float64 accumulation

template <typename T, int A>
PYDLR_INLINE T act_scalar(T v) {
  if constexpr (A == 1) return v < T(0) ? T(0) : v;
  if constexpr (A == 2) return v < T(0) ? T(0) : (v > T(6) ? T(6) : v);
  return v;
}

// Whether the activation passes the gradient at pre-activation value v (torch: threshold_backward on relu's
// output, hardtanh_backward's open interval (0, 6)).
template <typename T, int A>
PYDLR_INLINE T act_grad(T v, T g) {
  if constexpr (A == 1) return v > T(0) ? g : T(0);
  if constexpr (A == 2) return (v > T(0) && v < T(6)) ? g : T(0);
  return g;
}

// Sums of x and x^2 per channel over rows [r0, r1), added into s and q.
template <typename T>
PYDLR_INLINE void stats_rows_impl(const T* __restrict x, int64_t r0, int64_t r1, int64_t C, T* __restrict fs,
                                  T* __restrict fq, double* __restrict s, double* __restrict q) {
  for (int64_t b = r0; b < r1; b += kBlock) {
    const int64_t e = std::min(r1, b + kBlock);
    for (int64_t c = 0; c < C; ++c) fs[c] = fq[c] = T(0);
    for (int64_t r = b; r < e; ++r) {
      const T* __restrict row = x + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const T v = row[c];
        fs[c] += v;
        fq[c] += v * v;
      }
    }
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      s[c] += static_cast<double>(fs[c]);
      q[c] += static_cast<double>(fq[c]);
    }
  }
}

template <typename T, int A>
PYDLR_INLINE void apply_rows_impl(const T* __restrict x, T* __restrict y, int64_t r0, int64_t r1, int64_t C,
                                  const T* __restrict alpha, const T* __restrict beta) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* __restrict xr = x + r * C;
    T* __restrict yr = y + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yr[c] = act_scalar<T, A>(xr[c] * alpha[c] + beta[c]);
  }
}

// Sums of the masked gradient and of masked gradient * (x - mean) per channel over rows [r0, r1).
template <typename T, int A>
PYDLR_INLINE void grad_sums_impl(const T* __restrict g, const T* __restrict x, int64_t r0, int64_t r1, int64_t C,
                                 const T* __restrict alpha, const T* __restrict beta, const T* __restrict mean,
                                 T* __restrict fs, T* __restrict fq, double* __restrict s, double* __restrict q) {
  for (int64_t b = r0; b < r1; b += kBlock) {
    const int64_t e = std::min(r1, b + kBlock);
    for (int64_t c = 0; c < C; ++c) fs[c] = fq[c] = T(0);
    for (int64_t r = b; r < e; ++r) {
      const T* __restrict gr = g + r * C;
      const T* __restrict xr = x + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const T v = xr[c];
        const T gm = act_grad<T, A>(v * alpha[c] + beta[c], gr[c]);
        fs[c] += gm;
        fq[c] += gm * (v - mean[c]);
      }
    }
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      s[c] += static_cast<double>(fs[c]);
      q[c] += static_cast<double>(fq[c]);
    }
  }
}

// dx = masked g * k1 + x * k2 + k3 (the batch-norm input gradient with per-channel coefficients).
template <typename T, int A>
PYDLR_INLINE void grad_input_impl(const T* __restrict g, const T* __restrict x, T* __restrict dx, int64_t r0,
                                  int64_t r1, int64_t C, const T* __restrict alpha, const T* __restrict beta,
                                  const T* __restrict k1, const T* __restrict k2, const T* __restrict k3) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* __restrict gr = g + r * C;
    const T* __restrict xr = x + r * C;
    T* __restrict dr = dx + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      const T v = xr[c];
      const T gm = act_grad<T, A>(v * alpha[c] + beta[c], gr[c]);
      dr[c] = gm * k1[c] + v * k2[c] + k3[c];
    }
  }
}

// float32 entry points compiled once per ISA level (the double ones use the baseline: float64 is the test dtype).
#define PYDLR_BN_FLOAT_CLONES(A)                                                                                    \
  PYDLR_CLONES void apply_rows_f##A(const float* x, float* y, int64_t r0, int64_t r1, int64_t C, const float* al,  \
                                    const float* be) {                                                            \
    apply_rows_impl<float, A>(x, y, r0, r1, C, al, be);                                                           \
  }                                                                                                               \
  PYDLR_CLONES void grad_sums_f##A(const float* g, const float* x, int64_t r0, int64_t r1, int64_t C,             \
                                   const float* al, const float* be, const float* mean, float* fs, float* fq,     \
                                   double* s, double* q) {                                                        \
    grad_sums_impl<float, A>(g, x, r0, r1, C, al, be, mean, fs, fq, s, q);                                        \
  }                                                                                                               \
  PYDLR_CLONES void grad_input_f##A(const float* g, const float* x, float* dx, int64_t r0, int64_t r1, int64_t C, \
                                    const float* al, const float* be, const float* k1, const float* k2,           \
                                    const float* k3) {                                                            \
    grad_input_impl<float, A>(g, x, dx, r0, r1, C, al, be, k1, k2, k3);                                           \
  }
PYDLR_BN_FLOAT_CLONES(0)
PYDLR_BN_FLOAT_CLONES(1)
PYDLR_BN_FLOAT_CLONES(2)
#undef PYDLR_BN_FLOAT_CLONES

PYDLR_CLONES void stats_rows_f(const float* x, int64_t r0, int64_t r1, int64_t C, float* fs, float* fq, double* s,
                               double* q) {
  stats_rows_impl<float>(x, r0, r1, C, fs, fq, s, q);
}

void stats_rows(const float* x, int64_t r0, int64_t r1, int64_t C, float* fs, float* fq, double* s, double* q) {
  stats_rows_f(x, r0, r1, C, fs, fq, s, q);
}
void stats_rows(const double* x, int64_t r0, int64_t r1, int64_t C, double* fs, double* fq, double* s, double* q) {
  stats_rows_impl<double>(x, r0, r1, C, fs, fq, s, q);
}

template <typename T>
void apply_rows(int act, const T* x, T* y, int64_t r0, int64_t r1, int64_t C, const T* al, const T* be) {
  if constexpr (std::is_same_v<T, float>) {
    if (act == 2) return apply_rows_f2(x, y, r0, r1, C, al, be);
    if (act == 1) return apply_rows_f1(x, y, r0, r1, C, al, be);
    return apply_rows_f0(x, y, r0, r1, C, al, be);
  } else {
    if (act == 2) return apply_rows_impl<T, 2>(x, y, r0, r1, C, al, be);
    if (act == 1) return apply_rows_impl<T, 1>(x, y, r0, r1, C, al, be);
    return apply_rows_impl<T, 0>(x, y, r0, r1, C, al, be);
  }
}

template <typename T>
void grad_sums(int act, const T* g, const T* x, int64_t r0, int64_t r1, int64_t C, const T* al, const T* be,
               const T* mean, T* fs, T* fq, double* s, double* q) {
  if constexpr (std::is_same_v<T, float>) {
    if (act == 2) return grad_sums_f2(g, x, r0, r1, C, al, be, mean, fs, fq, s, q);
    if (act == 1) return grad_sums_f1(g, x, r0, r1, C, al, be, mean, fs, fq, s, q);
    return grad_sums_f0(g, x, r0, r1, C, al, be, mean, fs, fq, s, q);
  } else {
    if (act == 2) return grad_sums_impl<T, 2>(g, x, r0, r1, C, al, be, mean, fs, fq, s, q);
    if (act == 1) return grad_sums_impl<T, 1>(g, x, r0, r1, C, al, be, mean, fs, fq, s, q);
    return grad_sums_impl<T, 0>(g, x, r0, r1, C, al, be, mean, fs, fq, s, q);
  }
}

template <typename T>
void grad_input(int act, const T* g, const T* x, T* dx, int64_t r0, int64_t r1, int64_t C, const T* al, const T* be,
                const T* k1, const T* k2, const T* k3) {
  if constexpr (std::is_same_v<T, float>) {
    if (act == 2) return grad_input_f2(g, x, dx, r0, r1, C, al, be, k1, k2, k3);
    if (act == 1) return grad_input_f1(g, x, dx, r0, r1, C, al, be, k1, k2, k3);
    return grad_input_f0(g, x, dx, r0, r1, C, al, be, k1, k2, k3);
  } else {
    if (act == 2) return grad_input_impl<T, 2>(g, x, dx, r0, r1, C, al, be, k1, k2, k3);
    if (act == 1) return grad_input_impl<T, 1>(g, x, dx, r0, r1, C, al, be, k1, k2, k3);
    return grad_input_impl<T, 0>(g, x, dx, r0, r1, C, al, be, k1, k2, k3);
  }
}

// Rows split into a fixed number of chunks (a few per thread, for balance on a shared machine); each chunk has
// its own float64 partial sums, added in chunk order afterwards.
int64_t chunk_count(int64_t rows) { return std::max<int64_t>(1, std::min<int64_t>(rows / kBlock, 4 * at::get_num_threads())); }

// Per-channel float64 sums (a, b) over all rows: reduce(chunk, fs, fq, a, b) adds one chunk's rows.
template <typename T, typename F>
void channel_sums(int64_t rows, int64_t C, std::vector<double>& a, std::vector<double>& b, F&& reduce) {
  const int64_t chunks = chunk_count(rows);
  std::vector<double> part(static_cast<size_t>(chunks * 2 * C), 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t k0, int64_t k1) {
    std::vector<T> scratch(static_cast<size_t>(2 * C));
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t r0 = rows * k / chunks, r1 = rows * (k + 1) / chunks;
      double* pa = part.data() + k * 2 * C;
      reduce(r0, r1, scratch.data(), scratch.data() + C, pa, pa + C);
    }
  });
  a.assign(static_cast<size_t>(C), 0.0);
  b.assign(static_cast<size_t>(C), 0.0);
  for (int64_t k = 0; k < chunks; ++k) {
    const double* pa = part.data() + k * 2 * C;
    for (int64_t c = 0; c < C; ++c) {
      a[c] += pa[c];
      b[c] += pa[C + c];
    }
  }
}

// Rows of the channels-last input: N * H * W for (N, C, H, W), N for (N, C).
int64_t row_count(const at::Tensor& x) { return x.numel() / x.size(1); }

void check_input(const char* op, const at::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu(), op, ": input must be a CPU tensor, got ", x.device());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": input must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(x.dim() == 2 || x.dim() == 4, op, ": input must be (N, C) or (N, C, H, W), got ", x.dim(), " dims");
  TORCH_CHECK(x.dim() == 2 ? x.is_contiguous() : x.is_contiguous(at::MemoryFormat::ChannelsLast), op,
              ": input must be contiguous (N, C) or channels-last (N, C, H, W)");
  TORCH_CHECK(x.numel() > 0 && row_count(x) > 1, op,
              ": expected more than 1 value per channel when training, got input of size ", x.sizes());
}

void check_channel(const char* op, const char* what, const at::Tensor& t, const at::Tensor& x) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == x.scalar_type() && t.is_contiguous() && t.dim() == 1 &&
                  t.numel() == x.size(1),
              op, ": ", what, " must be a contiguous CPU ", x.scalar_type(), " vector of ", x.size(1),
              " elements, got ", t.scalar_type(), " of size ", t.sizes());
}

// alpha = weight * invstd, beta = bias - mean * alpha from the saved (input-dtype) mean and invstd: forward and
// backward compute them identically, so the backward's recomputed activation mask is the forward's.
template <typename T>
void affine(const at::Tensor& weight, const at::Tensor& bias, const T* mean, const T* invstd, int64_t C,
            std::vector<T>& alpha, std::vector<T>& beta) {
  alpha.resize(C);
  beta.resize(C);
  const T* w = weight.defined() ? weight.const_data_ptr<T>() : nullptr;
  const T* b = bias.defined() ? bias.const_data_ptr<T>() : nullptr;
  for (int64_t c = 0; c < C; ++c) {
    alpha[c] = (w ? w[c] : T(1)) * invstd[c];
    beta[c] = (b ? b[c] : T(0)) - mean[c] * alpha[c];
  }
}

// Batch statistics of x into mean_t / invstd_t (input dtype) and the running statistics updated in place.
template <typename T>
void stats_impl(const at::Tensor& x, at::Tensor& running_mean, at::Tensor& running_var, double momentum, double eps,
                at::Tensor& mean_t, at::Tensor& invstd_t) {
  const int64_t C = x.size(1), rows = row_count(x);
  const T* xp = x.const_data_ptr<T>();
  std::vector<double> s, q;
  channel_sums<T>(rows, C, s, q, [&](int64_t r0, int64_t r1, T* fs, T* fq, double* a, double* b) {
    stats_rows(xp, r0, r1, C, fs, fq, a, b);
  });
  T* mean = mean_t.mutable_data_ptr<T>();
  T* invstd = invstd_t.mutable_data_ptr<T>();
  T* rm = running_mean.mutable_data_ptr<T>();
  T* rv = running_var.mutable_data_ptr<T>();
  const double n = static_cast<double>(rows);
  for (int64_t c = 0; c < C; ++c) {
    const double m = s[c] / n;
    const double var = std::max(0.0, q[c] / n - m * m);
    mean[c] = static_cast<T>(m);
    invstd[c] = static_cast<T>(1.0 / std::sqrt(var + eps));
    rm[c] = static_cast<T>(momentum * m + (1.0 - momentum) * static_cast<double>(rm[c]));
    rv[c] = static_cast<T>(momentum * var * n / (n - 1.0) + (1.0 - momentum) * static_cast<double>(rv[c]));
  }
}

template <typename T>
void forward_impl(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, at::Tensor& running_mean,
                  at::Tensor& running_var, double momentum, double eps, int act, at::Tensor& y, at::Tensor& mean_t,
                  at::Tensor& invstd_t) {
  stats_impl<T>(x, running_mean, running_var, momentum, eps, mean_t, invstd_t);
  const int64_t C = x.size(1), rows = row_count(x);
  std::vector<T> alpha, beta;
  affine<T>(weight, bias, mean_t.const_data_ptr<T>(), invstd_t.const_data_ptr<T>(), C, alpha, beta);
  const T* xp = x.const_data_ptr<T>();
  T* yp = y.mutable_data_ptr<T>();
  const int64_t grain = std::max<int64_t>(1, 32768 / C);
  at::parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    apply_rows<T>(act, xp, yp, r0, r1, C, alpha.data(), beta.data());
  });
}

// From the per-channel sums of the masked gradient (sg) and of masked gradient * (x - mean) (sgx): the bias and
// weight gradients, and dx in one pass over g and x.
template <typename T>
void backward_finish(const at::Tensor& g, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                     const at::Tensor& mean_t, const at::Tensor& invstd_t, int act, const std::vector<double>& sg,
                     const std::vector<double>& sgx, at::Tensor& dx, at::Tensor& dw, at::Tensor& db) {
  const int64_t C = x.size(1), rows = row_count(x);
  const T* mean = mean_t.const_data_ptr<T>();
  const T* invstd = invstd_t.const_data_ptr<T>();
  if (db.defined()) {
    T* p = db.mutable_data_ptr<T>();
    for (int64_t c = 0; c < C; ++c) p[c] = static_cast<T>(sg[c]);
  }
  if (dw.defined()) {
    T* p = dw.mutable_data_ptr<T>();
    for (int64_t c = 0; c < C; ++c) p[c] = static_cast<T>(sgx[c] * static_cast<double>(invstd[c]));
  }
  if (!dx.defined()) return;
  std::vector<T> alpha, beta;
  affine<T>(weight, bias, mean, invstd, C, alpha, beta);
  // dx = w * invstd * (gm - mean(gm) - (x - mean) * invstd^2 * mean(gm * (x - mean))) = gm * k1 + x * k2 + k3
  std::vector<T> k1(C), k2(C), k3(C);
  const T* w = weight.defined() ? weight.const_data_ptr<T>() : nullptr;
  const double n = static_cast<double>(rows);
  for (int64_t c = 0; c < C; ++c) {
    const double is = static_cast<double>(invstd[c]);
    const double a = (w ? static_cast<double>(w[c]) : 1.0) * is;
    const double b = -a * is * is * sgx[c] / n;
    k1[c] = static_cast<T>(a);
    k2[c] = static_cast<T>(b);
    k3[c] = static_cast<T>(-a * sg[c] / n - b * static_cast<double>(mean[c]));
  }
  const T* xp = x.const_data_ptr<T>();
  const T* gp = g.const_data_ptr<T>();
  T* dp = dx.mutable_data_ptr<T>();
  const int64_t grain = std::max<int64_t>(1, 32768 / C);
  at::parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    grad_input<T>(act, gp, xp, dp, r0, r1, C, alpha.data(), beta.data(), k1.data(), k2.data(), k3.data());
  });
}

template <typename T>
void backward_impl(const at::Tensor& g, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                   const at::Tensor& mean_t, const at::Tensor& invstd_t, int act, at::Tensor& dx, at::Tensor& dw,
                   at::Tensor& db) {
  const int64_t C = x.size(1), rows = row_count(x);
  const T* xp = x.const_data_ptr<T>();
  const T* gp = g.const_data_ptr<T>();
  const T* mean = mean_t.const_data_ptr<T>();
  std::vector<T> alpha, beta;
  affine<T>(weight, bias, mean, invstd_t.const_data_ptr<T>(), C, alpha, beta);
  std::vector<double> sg, sgx;
  channel_sums<T>(rows, C, sg, sgx, [&](int64_t r0, int64_t r1, T* fs, T* fq, double* a, double* b) {
    grad_sums<T>(act, gp, xp, r0, r1, C, alpha.data(), beta.data(), mean, fs, fq, a, b);
  });
  backward_finish<T>(g, x, weight, bias, mean_t, invstd_t, act, sg, sgx, dx, dw, db);
}

at::Tensor defined_or_empty(const std::optional<at::Tensor>& t) { return t.has_value() ? *t : at::Tensor(); }

// The input checked, and the optional per-channel scale and shift (undefined when absent) checked against it.
std::pair<at::Tensor, at::Tensor> checked_affine(const char* op, const at::Tensor& input,
                                                 const std::optional<at::Tensor>& weight_opt,
                                                 const std::optional<at::Tensor>& bias_opt) {
  check_input(op, input);
  at::Tensor weight = defined_or_empty(weight_opt), bias = defined_or_empty(bias_opt);
  if (weight.defined()) check_channel(op, "weight", weight, input);
  if (bias.defined()) check_channel(op, "bias", bias, input);
  return {weight, bias};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act_cpu(const at::Tensor& input,
                                                                  const std::optional<at::Tensor>& weight_opt,
                                                                  const std::optional<at::Tensor>& bias_opt,
                                                                  at::Tensor& running_mean, at::Tensor& running_var,
                                                                  double momentum, double eps,
                                                                  c10::string_view activation) {
  const char* op = "pydlr::batch_norm_act";
  at::Tensor weight, bias;
  std::tie(weight, bias) = checked_affine(op, input, weight_opt, bias_opt);
  check_channel(op, "running_mean", running_mean, input);
  check_channel(op, "running_var", running_var, input);
  TORCH_CHECK(eps > 0, op, ": eps must be positive, got ", eps);
  const int act = static_cast<int>(parse_act(activation));
  at::Tensor y = at::empty_like(input);
  at::Tensor mean = at::empty({input.size(1)}, input.options());
  at::Tensor invstd = at::empty({input.size(1)}, input.options());
  if (input.scalar_type() == at::kFloat) {
    forward_impl<float>(input, weight, bias, running_mean, running_var, momentum, eps, act, y, mean, invstd);
  } else {
    forward_impl<double>(input, weight, bias, running_mean, running_var, momentum, eps, act, y, mean, invstd);
  }
  return {y, mean, invstd};
}

namespace {

// Checks shared by the backward entry points; the gradient in the input's layout and the outputs allocated.
struct BackwardCall {
  at::Tensor weight, bias, g, dx, dw, db;
  int act;
};
BackwardCall backward_call(const char* op, const at::Tensor& grad_output, const at::Tensor& input,
                           const std::optional<at::Tensor>& weight_opt, const std::optional<at::Tensor>& bias_opt,
                           const at::Tensor& save_mean, const at::Tensor& save_invstd, c10::string_view activation,
                           std::array<bool, 3> output_mask) {
  BackwardCall c;
  std::tie(c.weight, c.bias) = checked_affine(op, input, weight_opt, bias_opt);
  check_channel(op, "save_mean", save_mean, input);
  check_channel(op, "save_invstd", save_invstd, input);
  TORCH_CHECK(grad_output.sizes() == input.sizes() && grad_output.scalar_type() == input.scalar_type(), op,
              ": grad_output must match the input's size and dtype, got ", grad_output.sizes(), " ",
              grad_output.scalar_type());
  c.act = static_cast<int>(parse_act(activation));
  // The kernels read the gradient as rows of channels like the input; an expanded or other-layout gradient is
  // copied once into that layout.
  c.g = grad_output.dim() == 2 ? grad_output.contiguous() : grad_output.contiguous(at::MemoryFormat::ChannelsLast);
  c.dx = output_mask[0] ? at::empty_like(input) : at::Tensor();
  c.dw = output_mask[1] ? at::empty({input.size(1)}, input.options()) : at::Tensor();
  c.db = output_mask[2] ? at::empty({input.size(1)}, input.options()) : at::Tensor();
  return c;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const std::optional<at::Tensor>& weight_opt,
    const std::optional<at::Tensor>& bias_opt, const at::Tensor& save_mean, const at::Tensor& save_invstd,
    c10::string_view activation, std::array<bool, 3> output_mask) {
  BackwardCall c = backward_call("pydlr::batch_norm_act_backward", grad_output, input, weight_opt, bias_opt,
                                 save_mean, save_invstd, activation, output_mask);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "batch_norm_act_backward", [&] {
    backward_impl<scalar_t>(c.g, input, c.weight, c.bias, save_mean, save_invstd, c.act, c.dx, c.dw, c.db);
  });
  return {c.dx, c.dw, c.db};
}

namespace detail {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> batch_norm_stats(
    const char* op, const at::Tensor& input, const std::optional<at::Tensor>& weight_opt,
    const std::optional<at::Tensor>& bias_opt, at::Tensor& running_mean, at::Tensor& running_var, double momentum,
    double eps) {
  at::Tensor weight, bias;
  std::tie(weight, bias) = checked_affine(op, input, weight_opt, bias_opt);
  check_channel(op, "running_mean", running_mean, input);
  check_channel(op, "running_var", running_var, input);
  TORCH_CHECK(eps > 0, op, ": eps must be positive, got ", eps);
  const int64_t C = input.size(1);
  at::Tensor mean = at::empty({C}, input.options()), invstd = at::empty({C}, input.options());
  at::Tensor alpha = at::empty({C}, input.options()), beta = at::empty({C}, input.options());
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "batch_norm_stats", [&] {
    stats_impl<scalar_t>(input, running_mean, running_var, momentum, eps, mean, invstd);
    bn_affine<scalar_t>(weight, bias, mean, invstd, alpha, beta);
  });
  return {mean, invstd, alpha, beta};
}

template <typename T>
void bn_affine(const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& mean, const at::Tensor& invstd,
               at::Tensor& alpha, at::Tensor& beta) {
  std::vector<T> a, b;
  affine<T>(weight, bias, mean.const_data_ptr<T>(), invstd.const_data_ptr<T>(), mean.numel(), a, b);
  std::copy(a.begin(), a.end(), alpha.mutable_data_ptr<T>());
  std::copy(b.begin(), b.end(), beta.mutable_data_ptr<T>());
}
template void bn_affine<float>(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                               at::Tensor&, at::Tensor&);
template void bn_affine<double>(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                at::Tensor&, at::Tensor&);

void bn_apply_rows(int act, const float* x, float* y, int64_t rows, int64_t C, const float* al, const float* be) {
  apply_rows<float>(act, x, y, 0, rows, C, al, be);
}
void bn_apply_rows(int act, const double* x, double* y, int64_t rows, int64_t C, const double* al,
                   const double* be) {
  apply_rows<double>(act, x, y, 0, rows, C, al, be);
}

void bn_grad_sums_rows(int act, const float* g, const float* x, int64_t rows, int64_t C, const float* al,
                       const float* be, const float* mean, float* fs, float* fq, double* s, double* q) {
  grad_sums<float>(act, g, x, 0, rows, C, al, be, mean, fs, fq, s, q);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act_backward_from_sums(
    const at::Tensor& grad_output, const at::Tensor& input, const std::optional<at::Tensor>& weight_opt,
    const std::optional<at::Tensor>& bias_opt, const at::Tensor& save_mean, const at::Tensor& save_invstd,
    c10::string_view activation, std::array<bool, 3> output_mask, const std::vector<double>& sg,
    const std::vector<double>& sgx) {
  BackwardCall c = backward_call("pydlr::batch_norm_act_backward", grad_output, input, weight_opt, bias_opt,
                                 save_mean, save_invstd, activation, output_mask);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "batch_norm_act_backward", [&] {
    backward_finish<scalar_t>(c.g, input, c.weight, c.bias, save_mean, save_invstd, c.act, sg, sgx, c.dx, c.dw,
                              c.db);
  });
  return {c.dx, c.dw, c.db};
}

}  // namespace detail
}  // namespace pydlr
