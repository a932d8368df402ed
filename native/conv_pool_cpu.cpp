// Convolution + bias + activation + max pooling fused on CPU (the seed CNN's Conv2D(32, 3, relu) -> MaxPool(2), and
// its Winograd Conv2D(64, 3, relu) -> MaxPool(2): see Kind).
//
// Why: the first convolution of a small-image CNN is cheap in FLOPs (1 input channel) but its activation is the
// largest tensor of the step (64 x 26 x 26 x 32 floats = 5.5 MB for the seed). Unfused, that tensor is written by
// the convolution, read by the pooling, and in the backward a gradient of the same size is written by the pooling
// and read (with the activation, for the ReLU mask) by the convolution's weight gradient: ~22 MB of memory traffic
// for ~25 MFLOP. Fused, each thread computes the few convolution rows one pooling row needs into an L1 tile,
// pools them and writes only the pooled output and its one-byte argmax; the backward rebuilds those rows of the
// (three-quarters zero) gradient in an L1 tile from the pooled gradient and the argmax, and feeds them to the
// dense direct weight-gradient kernel. The commonest first layer (3x3, stride 1, C <= 3, 2x2 windows) skips the
// rows: one pooled cell at a time in vector registers (Kind::Cell).
//
// Exactness: max pooling is applied to the activated rows (bias and activation first, as unfused), with the
// pooling kernel's own row function, so values and argmax (ties, NaN) are those of max_pool2d(conv2d_act(...)).
// The gradient of a pooled element goes to its argmax and is masked by the activation's derivative at that
// element, which is the pooled value itself (the max of activated values is the activated value at the argmax).
#include "conv.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include <cstring>
#include <vector>

namespace pydlr {
namespace {

constexpr const char* kOp = "pydlr::conv2d_act_pool";

struct Fused {
  ConvGeom g;
  PoolGeom p;  // over the convolution's output (N, OC, OH, OW)
  int act;
};

bool pool_args_ok(at::IntArrayRef kernel, at::IntArrayRef stride) {
  return kernel.size() == 2 && stride.size() == 2 && kernel[0] > 0 && kernel[1] > 0 && stride[0] > 0 &&
         stride[1] > 0 && kernel[0] * kernel[1] <= 255;
}

// The kh convolution rows under one pooled row, as a one-image, one-pooled-row input of the pooling row kernels.
PoolGeom window_rows(const Fused& f) {
  return PoolGeom{1, f.g.OC, f.p.kh, f.g.OW, 1, f.p.OW, f.p.kh, f.p.kw, f.p.kh, f.p.sw};
}

// Which fused kernel runs: the per-cell kernel (below) or the dense direct rows above, or the Winograd F(4x4, 3x3) forward pooling 2x2 windows
// with stride 2 in its output transform (a 4x4 output tile holds whole windows: the seed's 32->64 at 13x13). The
// Winograd pair's backward masks the pooled gradient; the weight gradient is the unfused one's (the pooling's
// backward spreads the gradient to full resolution, the Winograd weight gradient reads it), the input gradient
// is scattered from the pooled gradient directly (pooled_input_grad).
enum class Kind { None, Cell, Dense, Winograd };

// The per-cell kernel's shapes (see cell_forward_rows).
bool cell_kernel_ok(const ConvGeom& g, const PoolGeom& p) {
  return g.KH == 3 && g.KW == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.C <= 3 && p.kh == 2 &&
         p.kw == 2 && p.sh == 2 && p.sw == 2;
}

// Every activation pydlr fuses is non-decreasing, so pooling commutes with it and the argmax carries its mask.
Kind fused_kind(const ConvGeom& g, const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef stride,
                at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, const PoolGeom& p) {
  if (!input.device().is_cpu() || p.OH <= 0 || p.OW <= 0) return Kind::None;
  if (detail::dense_direct_ok(g, input.scalar_type()) && p.sh >= p.kh && p.sw >= p.kw) {
    return cell_kernel_ok(g, p) ? Kind::Cell : Kind::Dense;
  }
  if (p.kh == 2 && p.kw == 2 && p.sh == 2 && p.sw == 2 && weight.scalar_type() == input.scalar_type() &&
      conv2d_cpu_path(input, weight, stride, padding, dilation, groups) == "winograd_f43") {
    return Kind::Winograd;
  }
  return Kind::None;
}

Fused check_fused(const char* op, const at::Tensor& input, const at::Tensor& weight,
                  const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                  at::IntArrayRef dilation, int64_t groups, c10::string_view activation, at::IntArrayRef pool_kernel,
                  at::IntArrayRef pool_stride) {
  Fused f{};
  f.g = check_conv_args(op, input, weight, bias, stride, padding, dilation, groups);
  f.act = static_cast<int>(parse_act(activation));
  TORCH_CHECK(pool_args_ok(pool_kernel, pool_stride), op,
              ": pool_kernel and pool_stride must be 2 positive values each, windows of at most 255 elements; got ",
              pool_kernel, " and ", pool_stride);
  f.p = detail::pool_geometry(f.g.N, f.g.OC, f.g.OH, f.g.OW, pool_kernel, pool_stride);
  TORCH_CHECK(f.p.OH > 0 && f.p.OW > 0, op, ": the convolution's output (", f.g.OH, "x", f.g.OW,
              ") is smaller than the pooling window (", pool_kernel, ")");
  return f;
}

// The backward's tensors: the pooled output's shape, the input's device, float32 values and uint8 argmax.
void check_backward_tensors(const char* op, const Fused& f, const at::Tensor& grad_output, const at::Tensor& argmax,
                            const at::Tensor& output, const at::Tensor& input) {
  for (const at::Tensor* t : {&grad_output, &argmax, &output}) {
    TORCH_CHECK(t->defined() && t->dim() == 4 && t->size(0) == f.g.N && t->size(1) == f.g.OC &&
                    t->size(2) == f.p.OH && t->size(3) == f.p.OW,
                op, ": grad_output, argmax and output must have shape [", f.g.N, ", ", f.g.OC, ", ", f.p.OH, ", ",
                f.p.OW, "]");
    TORCH_CHECK(t->device() == input.device(), op, ": all tensors must be on ", input.device());
  }
  TORCH_CHECK(grad_output.scalar_type() == at::kFloat && output.scalar_type() == at::kFloat, op,
              ": grad_output and output must be float32");
  TORCH_CHECK(argmax.scalar_type() == at::kByte, op, ": argmax must be uint8; got ", argmax.scalar_type());
}

// Pooled rows [b0, b1) of the flattened (n, pooled row) range: y and argmax (null for inference), channels-last.
void fused_forward_rows(const Fused& f, const float* x, Strides4 xs, const float* wk, const float* b, float* y,
                        uint8_t* a, int64_t b0, int64_t b1) {
  const ConvGeom& g = f.g;
  const PoolGeom& p = f.p;
  const int64_t row = g.OW * g.OC;
  std::vector<float> tile(p.kh * row);
  const PoolGeom tp = window_rows(f);
  const Strides4 ts{0, 1, row, g.OC}, ys{0, 1, 0, g.OC};
  for (int64_t t = b0; t < b1; ++t) {
    const int64_t n = t / p.OH, ph = t % p.OH;
    for (int64_t i = 0; i < p.kh; ++i) {
      detail::dense_conv_row(g, x, xs, wk, b, tile.data() + i * row, f.act, n, ph * p.sh + i);
    }
    const int64_t yo = t * p.OW * g.OC;
    detail::pool_fwd_row_cl(tp, tile.data(), ts, y + yo, a ? a + yo : nullptr, ys, 0, 0);
  }
}

// Pooled gradient masked by the activation's derivative, read at the pooled (activated) value.
PYDLR_INLINE float masked(float gv, float yv, int act) {
  if (act == 1) return yv > 0.0f ? gv : 0.0f;
  if (act == 2) return (yv > 0.0f && yv < 6.0f) ? gv : 0.0f;
  return gv;
}

// ------------------------------------------------------------------------------- per pooled cell (Kind::Cell)
// The commonest first layer, a 3x3 stride-1 convolution of a grey or RGB image (C <= 3) pooled by 2x2 windows of
// stride 2, one pooled cell at a time: the cell's four convolution outputs read one 4x4 input patch per channel
// (zeros off the image: the padding), their 4 x OC accumulators stay in vector registers, and the activation and
// the window's maximum are taken over a row of cells in L1. The rows kernel above stores each convolution row to a
// tile and makes separate activation and pooling passes over it, and its backward makes one pass per tap over a
// row of the gradient: on the seed's 1->32 layer forward + backward took 1.45 ms that way and 0.93 this way on one
// thread (0.93 and 0.56 on two). The backward masks the pooled gradient itself, spreads it to the window's four
// positions (by the argmax) in L1, and keeps the 9 x C x OC weight gradient in registers over a task's cells.

// The 4x4 input patch of pooled cell (n, ph, pw) per channel, [C][4][4], zeros outside the image.
template <int C>
PYDLR_INLINE void cell_patch(const ConvGeom& g, const float* xn, Strides4 xs, int64_t ph, int64_t pw, float* patch) {
  const int64_t ih0 = 2 * ph - g.ph, iw0 = 2 * pw - g.pw;
  if (ih0 >= 0 && iw0 >= 0 && ih0 + 4 <= g.H && iw0 + 4 <= g.W) {
    const float* x0 = xn + ih0 * xs.h + iw0 * xs.w;
    for (int c = 0; c < C; ++c)
      for (int r = 0; r < 4; ++r)
        for (int s = 0; s < 4; ++s) patch[c * 16 + r * 4 + s] = x0[c * xs.c + r * xs.h + s * xs.w];
    return;
  }
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < 4; ++r)
      for (int s = 0; s < 4; ++s) {
        const int64_t ih = ih0 + r, iw = iw0 + s;
        const bool in = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
        patch[c * 16 + r * 4 + s] = in ? xn[c * xs.c + ih * xs.h + iw * xs.w] : 0.0f;
      }
}

// Pooled rows [b0, b1) of the flattened (n, pooled row) range; y and a (null for inference) channels-last.
// The accumulation order (bias, then taps kh, kw, c) and the pooling's comparisons (first maximum, NaN wins) are
// the rows kernel's: the same values and argmax. A row's activated outputs go through an L1 tile [PW][4][OC]: the
// window maximum runs as plain loops over it (GCC scalarises or-ed vector masks in the AVX-512 clone, and
// vectorises these), a whole row after its stores, so that no load waits on a store of another width.
template <int C, int NV>
PYDLR_INLINE void cell_forward_rows(const Fused& f, const float* x, Strides4 xs, const float* wk, const float* b,
                                    float* y, uint8_t* a, float* tile, int64_t b0, int64_t b1) {
  constexpr int64_t OC = 16 * NV;
  const int64_t PW = f.p.OW;
  vf16 bias[NV];
  for (int j = 0; j < NV; ++j) bias[j] = b ? vload(b + 16 * j) : vf16{};
  alignas(64) float patch[C * 16];
  for (int64_t t = b0; t < b1; ++t) {
    const int64_t n = t / f.p.OH, ph = t % f.p.OH;
    for (int64_t pw = 0; pw < PW; ++pw) {
      cell_patch<C>(f.g, x + n * xs.n, xs, ph, pw, patch);
      vf16 acc[4][NV];
      for (int q = 0; q < 4; ++q)
        for (int j = 0; j < NV; ++j) acc[q][j] = bias[j];
      for (int kh = 0; kh < 3; ++kh)
        for (int kw = 0; kw < 3; ++kw)
          for (int c = 0; c < C; ++c) {
            const float* wp = wk + ((kh * 3 + kw) * C + c) * OC;
            for (int q = 0; q < 4; ++q) {
              const float xv = patch[c * 16 + (q / 2 + kh) * 4 + q % 2 + kw];
              for (int j = 0; j < NV; ++j) acc[q][j] += xv * vload(wp + 16 * j);
            }
          }
      for (int q = 0; q < 4; ++q)
        for (int j = 0; j < NV; ++j) vstore(tile + (pw * 4 + q) * OC + 16 * j, act_v(acc[q][j], f.act));
    }
    float* yr = y + t * PW * OC;
    uint8_t* ar = a ? a + t * PW * OC : nullptr;
    for (int64_t pw = 0; pw < PW; ++pw) {
      const float* v = tile + pw * 4 * OC;
      for (int64_t o = 0; o < OC; ++o) {
        float m = v[o];
        int at = 0;
        for (int q = 1; q < 4; ++q) {
          const float e = v[q * OC + o];
          const bool take = e > m || e != e;
          m = take ? e : m;
          at = take ? q : at;
        }
        yr[pw * OC + o] = m;
        if (ar) ar[pw * OC + o] = static_cast<uint8_t>(at);
      }
    }
  }
}

// Weight and bias gradient over pooled rows [b0, b1): gy, yv and am are the pooled gradient, the pooled (activated)
// output and the argmax, channels-last; the gradient is masked here by the activation's derivative at the pooled
// value and spread to the window's four positions, a row at a time into an L1 tile [PW][4][OC] (as the forward's).
// Adds into dw [3][3][C][OC] and db [OC].
template <int C, int NV>
PYDLR_INLINE void cell_backward_rows(const Fused& f, const float* x, Strides4 xs, const float* gy, const float* yv,
                                     const uint8_t* am, float* dw, float* db, float* tile, int64_t b0, int64_t b1) {
  constexpr int64_t OC = 16 * NV;
  const int64_t PW = f.p.OW;
  vf16 acc[9 * C][NV];
  for (int k = 0; k < 9 * C; ++k)
    for (int j = 0; j < NV; ++j) acc[k][j] = vf16{};
  alignas(64) float patch[C * 16];
  for (int64_t t = b0; t < b1; ++t) {
    const int64_t n = t / f.p.OH, ph = t % f.p.OH;
    const float* gr = gy + t * PW * OC;
    const float* yr = yv + t * PW * OC;
    const uint8_t* ar = am + t * PW * OC;
    for (int64_t pw = 0; pw < PW; ++pw) {
      float* v = tile + pw * 4 * OC;
      for (int64_t o = 0; o < OC; ++o) {
        const int64_t i = pw * OC + o;
        const float gv = masked(gr[i], yr[i], f.act);
        db[o] += gv;
        for (int q = 0; q < 4; ++q) v[q * OC + o] = ar[i] == q ? gv : 0.0f;
      }
    }
    for (int64_t pw = 0; pw < PW; ++pw) {
      const float* v = tile + pw * 4 * OC;
      cell_patch<C>(f.g, x + n * xs.n, xs, ph, pw, patch);
      for (int kh = 0; kh < 3; ++kh)
        for (int kw = 0; kw < 3; ++kw)
          for (int c = 0; c < C; ++c) {
            const int k = (kh * 3 + kw) * C + c;
            for (int q = 0; q < 4; ++q) {
              const float xv = patch[c * 16 + (q / 2 + kh) * 4 + q % 2 + kw];
              for (int j = 0; j < NV; ++j) acc[k][j] += xv * vload(v + q * OC + 16 * j);
            }
          }
    }
  }
  for (int k = 0; k < 9 * C; ++k)
    for (int j = 0; j < NV; ++j) vstore(dw + k * OC + 16 * j, vload(dw + k * OC + 16 * j) + acc[k][j]);
}

// One clone per ISA for each direction; C and OC / 16 picked at run time.
#define PYDLR_CELL_SWITCH(CALL)                        \
  switch (f.g.C * 4 + f.g.OC / 16 - 1) {              \
    case 4: CALL(1, 1); break;                        \
    case 5: CALL(1, 2); break;                        \
    case 6: CALL(1, 3); break;                        \
    case 7: CALL(1, 4); break;                        \
    case 8: CALL(2, 1); break;                        \
    case 9: CALL(2, 2); break;                        \
    case 10: CALL(2, 3); break;                       \
    case 11: CALL(2, 4); break;                       \
    case 12: CALL(3, 1); break;                       \
    case 13: CALL(3, 2); break;                       \
    case 14: CALL(3, 3); break;                       \
    default: CALL(3, 4); break;                       \
  }
PYDLR_CLONES void cell_forward(const Fused& f, const float* x, Strides4 xs, const float* wk, const float* b, float* y,
                               uint8_t* a, float* tile, int64_t b0, int64_t b1) {
#define PYDLR_CELL_FWD(C, NV) cell_forward_rows<C, NV>(f, x, xs, wk, b, y, a, tile, b0, b1)
  PYDLR_CELL_SWITCH(PYDLR_CELL_FWD)
#undef PYDLR_CELL_FWD
}
PYDLR_CLONES void cell_backward(const Fused& f, const float* x, Strides4 xs, const float* gy, const float* yv,
                                const uint8_t* am, float* dw, float* db, float* tile, int64_t b0, int64_t b1) {
#define PYDLR_CELL_BWD(C, NV) cell_backward_rows<C, NV>(f, x, xs, gy, yv, am, dw, db, tile, b0, b1)
  PYDLR_CELL_SWITCH(PYDLR_CELL_BWD)
#undef PYDLR_CELL_BWD
}
#undef PYDLR_CELL_SWITCH

// Weight and bias gradients of the per-cell kernel (dW [OC, C, 3, 3], db [OC]), summed over the threads' partials.
std::pair<at::Tensor, at::Tensor> cell_grads(const Fused& f, const at::Tensor& input, const at::Tensor& gy,
                                             const at::Tensor& yv, const at::Tensor& am) {
  const float* xp = input.const_data_ptr<float>();
  const Strides4 xs = strides_of(input);
  const float* gp = gy.const_data_ptr<float>();
  const float* yp = yv.const_data_ptr<float>();
  const uint8_t* mp = am.const_data_ptr<uint8_t>();
  return detail::dense_grads_summed(f.g, input.options(), f.g.N * f.p.OH,
                                    [&](int64_t b0, int64_t b1, float* dw, float* db) {
    std::vector<float> tile(f.p.OW * 4 * f.g.OC);
    cell_backward(f, xp, xs, gp, yp, mp, dw, db, tile.data(), b0, b1);
  });
}

at::Tensor weight_khwc(const at::Tensor& weight) { return weight.permute({2, 3, 1, 0}).contiguous(); }

std::tuple<at::Tensor, at::Tensor> fused_forward(Kind kind, const Fused& f, const at::Tensor& input,
                                                 const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                                                 bool with_argmax) {
  const at::Tensor b = bias.has_value() && bias->defined() ? bias->contiguous() : at::Tensor();
  const auto cl = at::MemoryFormat::ChannelsLast;
  at::Tensor y = at::empty({f.g.N, f.g.OC, f.p.OH, f.p.OW}, input.options().memory_format(cl));
  at::Tensor a = with_argmax ? at::empty(y.sizes(), input.options().dtype(at::kByte).memory_format(cl)) : at::Tensor();
  const float* bp = b.defined() ? b.const_data_ptr<float>() : nullptr;
  float* yp = y.mutable_data_ptr<float>();
  uint8_t* ap = a.defined() ? a.mutable_data_ptr<uint8_t>() : nullptr;
  if (kind == Kind::Winograd) {  // channels-last inside, as the unfused Winograd forward
    const at::Tensor x = input.contiguous(cl);
    detail::winograd_fwd_pool2(f.g, x.const_data_ptr<float>(), weight, bp, yp, ap, f.act);
  } else {
    const at::Tensor wk = weight_khwc(weight);
    const float* xp = input.const_data_ptr<float>();
    const float* wp = wk.const_data_ptr<float>();
    const Strides4 xs = strides_of(input);  // read through its strides: any layout, no copy
    at::parallel_for(0, f.g.N * f.p.OH, 1, [&](int64_t b0, int64_t b1) {
      if (kind == Kind::Cell) {
        std::vector<float> tile(f.p.OW * 4 * f.g.OC);
        cell_forward(f, xp, xs, wp, bp, yp, ap, tile.data(), b0, b1);
      } else {
        fused_forward_rows(f, xp, xs, wp, bp, yp, ap, b0, b1);
      }
    });
  }
  // The output follows the input's layout, as conv2d's does.
  if (input.suggest_memory_format() != cl) {
    y = y.contiguous();
    if (a.defined()) a = a.contiguous();
  }
  return {y, a};
}

// One pooled cell (n, ph, pw) of pooled_input_grad, 3x3 kernel, C = 16 * NV: the outputs whose gradient lands on
// window position q (a 2x2 window: 4 positions) are listed first (branch-free), then for each q the 3x3 x C patch
// sum over them, sum_o g[o] * w[o], is accumulated in registers (9 * NV vectors) and added into dx once.
template <int NV>
PYDLR_INLINE void pooled_cell_3x3(const ConvGeom& g, const float* __restrict gc, const uint8_t* __restrict ac,
                                  const float* __restrict wt, float* __restrict dn, int64_t oh0, int64_t ow0,
                                  int* __restrict lists) {
  const int64_t OC = g.OC, C = g.C;
  int count[4] = {0, 0, 0, 0};
  for (int64_t o = 0; o < OC; ++o) {
    const int q = ac[o] & 3;
    lists[q * OC + count[q]] = static_cast<int>(o);
    count[q] += gc[o] != 0.0f;  // a zero gradient adds nothing (see pooled_input_grad)
  }
  for (int q = 0; q < 4; ++q) {
    if (count[q] == 0) continue;
    vf16 acc[9][NV];
    for (int k = 0; k < 9; ++k)
      for (int v = 0; v < NV; ++v) acc[k][v] = vf16{};
    for (int i = 0; i < count[q]; ++i) {
      const int o = lists[q * OC + i];
      const float gv = gc[o];
      const float* w = wt + o * 9 * C;
      for (int k = 0; k < 9; ++k)
        for (int v = 0; v < NV; ++v) acc[k][v] += gv * vload(w + k * C + 16 * v);
    }
    const int64_t oh = oh0 + q / 2, ow = ow0 + q % 2;
    for (int kh = 0; kh < 3; ++kh) {
      const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int kw = 0; kw < 3; ++kw) {
        const int64_t iw = ow * g.sw - g.pw + kw * g.dw;
        if (iw < 0 || iw >= g.W) continue;
        float* d = dn + (ih * g.W + iw) * C;
        for (int v = 0; v < NV; ++v) vstore(d + 16 * v, vload(d + 16 * v) + acc[kh * 3 + kw][v]);
      }
    }
  }
}

// The input gradient of a Winograd conv + pool pair (3x3 kernel, C a multiple of 16 up to 64, 2x2 windows of
// stride 2) straight from the masked pooled gradient gm and the argmax (both channels-last [N][PH][PW][OC]), without
// the full-resolution gradient: each pooled element's gradient reaches one convolution output (its window's
// argmax), which spreads it through the kernel's taps, dx[n, ih, iw, :] += g * w[o, :, kh, kw]. That touches a
// quarter of the outputs and, after a ReLU, only the nonzero ones: the seed's 32->64 layer does ~30 M
// multiply-adds where the Winograd input gradient of the full-resolution gradient does 75 M (1.5 ms at batch 64,
// the largest operator of the step). A zero gradient is skipped: it adds zero times a weight, and a non-finite
// weight would already have made the loss, and so every gradient, non-finite. wt is the weight as
// [OC][3][3][C]; dx (channels-last, zeroed here) images [n0, n1).
PYDLR_CLONES void pooled_input_grad(const Fused& f, const float* gm, const uint8_t* am, const float* wt, float* dx,
                                    int64_t n0, int64_t n1) {
  const ConvGeom& g = f.g;
  const PoolGeom& p = f.p;
  const int64_t image = g.H * g.W * g.C;
  std::memset(dx + n0 * image, 0, sizeof(float) * (n1 - n0) * image);
  std::vector<int> lists(4 * g.OC);
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t ph = 0; ph < p.OH; ++ph) {
      for (int64_t pw = 0; pw < p.OW; ++pw) {
        const int64_t cell = ((n * p.OH + ph) * p.OW + pw) * g.OC;
        const float* gc = gm + cell;
        const uint8_t* ac = am + cell;
        float* dn = dx + n * image;
        switch (g.C / 16) {
          case 1: pooled_cell_3x3<1>(g, gc, ac, wt, dn, 2 * ph, 2 * pw, lists.data()); break;
          case 2: pooled_cell_3x3<2>(g, gc, ac, wt, dn, 2 * ph, 2 * pw, lists.data()); break;
          case 3: pooled_cell_3x3<3>(g, gc, ac, wt, dn, 2 * ph, 2 * pw, lists.data()); break;
          default: pooled_cell_3x3<4>(g, gc, ac, wt, dn, 2 * ph, 2 * pw, lists.data()); break;
        }
      }
    }
  }
}

}  // namespace

bool conv2d_act_pool_fusable(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef stride,
                             at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                             c10::string_view activation, at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride) {
  const Fused f = check_fused(kOp, input, weight, std::nullopt, stride, padding, dilation, groups, activation,
                              pool_kernel, pool_stride);
  return fused_kind(f.g, input, weight, stride, padding, dilation, groups, f.p) != Kind::None;
}

at::Tensor conv2d_act_pool_cpu(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                               at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                               c10::string_view activation, at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride) {
  const Fused f = check_fused(kOp, input, weight, bias, stride, padding, dilation, groups, activation, pool_kernel,
                              pool_stride);
  TORCH_CHECK(input.device().is_cpu(), kOp, ": CPU kernel called with a ", input.device(), " tensor");
  const Kind kind = fused_kind(f.g, input, weight, stride, padding, dilation, groups, f.p);
  if (kind == Kind::None) {
    return max_pool2d_cpu(conv2d_act_cpu(input, weight, bias, stride, padding, dilation, groups, activation),
                          pool_kernel, pool_stride);
  }
  return std::get<0>(fused_forward(kind, f, input, weight, bias, false));
}

std::tuple<at::Tensor, at::Tensor> conv2d_act_pool_with_argmax_cpu(
    const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
    at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, c10::string_view activation,
    at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride) {
  const Fused f = check_fused("pydlr::conv2d_act_pool_with_argmax", input, weight, bias, stride, padding, dilation,
                              groups, activation, pool_kernel, pool_stride);
  const Kind kind = fused_kind(f.g, input, weight, stride, padding, dilation, groups, f.p);
  TORCH_CHECK(kind != Kind::None,
              "pydlr::conv2d_act_pool_with_argmax: these arguments have no fused kernel (it needs a CPU float32 "
              "input, groups 1, and either at most 32 input channels x kernel taps, output channels a multiple of 16 "
              "up to 64 and non-overlapping pooling windows, or a convolution the Winograd F(4x4, 3x3) kernel runs "
              "and 2x2 windows with stride 2); check conv2d_act_pool_fusable first");
  return fused_forward(kind, f, input, weight, bias, true);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_act_pool_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& argmax, const at::Tensor& output, const at::Tensor& input,
    const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    int64_t groups, c10::string_view activation, at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride,
    std::array<bool, 3> output_mask) {
  const char* op = "pydlr::conv2d_act_pool_backward";
  const Fused f = check_fused(op, input, weight, std::nullopt, stride, padding, dilation, groups, activation,
                              pool_kernel, pool_stride);
  const Kind kind = fused_kind(f.g, input, weight, stride, padding, dilation, groups, f.p);
  TORCH_CHECK(kind != Kind::None, op, ": these arguments have no fused kernel");
  check_backward_tensors(op, f, grad_output, argmax, output, input);
  const ConvGeom& g = f.g;
  const PoolGeom& p = f.p;
  const auto cl = at::MemoryFormat::ChannelsLast;
  at::Tensor gm = grad_output.contiguous(cl);
  const at::Tensor yv = output.contiguous(cl);
  const at::Tensor am = argmax.contiguous(cl);
  at::Tensor gi, gw, gb;
  if (kind == Kind::Cell) {  // masks the gradient itself
    if (output_mask[1] || output_mask[2]) {
      std::tie(gw, gb) = cell_grads(f, input, gm, yv, am);
      if (!output_mask[1]) gw = at::Tensor();
      if (!output_mask[2]) gb = at::Tensor();
    }
    if (!output_mask[0]) return {gi, gw, gb};
  }
  // Masked pooled gradient: small (a quarter of the activation for 2x2 windows).
  if (f.act != 0) {  // one pass into a fresh tensor (the upstream gradient is not ours to overwrite)
    const at::Tensor g_in = gm;
    gm = at::empty(g_in.sizes(), g_in.options().memory_format(cl));
    const float* src = g_in.const_data_ptr<float>();
    float* gp = gm.mutable_data_ptr<float>();
    const float* yp = yv.const_data_ptr<float>();
    at::parallel_for(0, gm.numel(), 16384, [&](int64_t b0, int64_t b1) {
      for (int64_t i = b0; i < b1; ++i) gp[i] = masked(src[i], yp[i], f.act);
    });
  }
  if (kind == Kind::Winograd) {
    if (output_mask[1] || output_mask[2]) {  // the Winograd weight gradient reads the full-resolution gradient
      const at::Tensor shape_of_conv = at::empty({g.N, g.OC, g.OH, g.OW}, input.options().memory_format(cl));
      const at::Tensor gconv = max_pool2d_backward_cpu(gm, am, shape_of_conv, pool_kernel, pool_stride);
      std::tie(std::ignore, gw, gb) = conv2d_backward_cpu(gconv, input, weight, std::nullopt, stride, padding,
                                                          dilation, groups, "none",
                                                          {false, output_mask[1], output_mask[2]});
    }
    if (output_mask[0]) {
      const at::Tensor wt = weight.permute({0, 2, 3, 1}).contiguous();  // [OC][3][3][C]
      gi = at::empty({g.N, g.C, g.H, g.W}, input.options().memory_format(cl));
      const float* gp = gm.const_data_ptr<float>();
      const uint8_t* ap = am.const_data_ptr<uint8_t>();
      const float* wp = wt.const_data_ptr<float>();
      float* dp = gi.mutable_data_ptr<float>();
      at::parallel_for(0, g.N, 1, [&](int64_t n0, int64_t n1) { pooled_input_grad(f, gp, ap, wp, dp, n0, n1); });
      if (input.suggest_memory_format() != cl) gi = gi.contiguous();
    }
    return {gi, gw, gb};
  }
  if (kind == Kind::Dense && (output_mask[1] || output_mask[2])) {
    const int64_t row = g.OW * g.OC;
    const float* gp = gm.const_data_ptr<float>();
    const uint8_t* ap = am.const_data_ptr<uint8_t>();
    const PoolGeom tp = window_rows(f);
    std::tie(gw, gb) = detail::dense_direct_grads(g, input, 0, g.N * p.OH,
                                                  [&](int64_t b0, int64_t b1, const detail::DenseGradRow& add) {
      std::vector<float> tile(p.kh * row);
      for (int64_t t = b0; t < b1; ++t) {
        const int64_t n = t / p.OH, ph = t % p.OH, yo = t * p.OW * g.OC;
        // The pooled row's window rows, already masked: the whole [kh, OW, OC] tile, zeros off the argmax.
        detail::pool_bwd_row_cl(tp, ap + yo, gp + yo, tile.data(), 0, 0);
        // Rows between windows (stride > kernel) and below the last one get no gradient: nothing to add.
        for (int64_t i = 0; i < p.kh; ++i) add(tile.data() + i * row, nullptr, n, ph * p.sh + i);
      }
    });
    if (!output_mask[1]) gw = at::Tensor();
    if (!output_mask[2]) gb = at::Tensor();
  }
  if (output_mask[0]) {
    // Rare (the fused layer is usually the first): the full-resolution gradient, then the convolution's own
    // input-gradient kernel.
    const at::Tensor shape_of_conv = at::empty({g.N, g.OC, g.OH, g.OW}, input.options().memory_format(cl));
    const at::Tensor gconv = max_pool2d_backward_cpu(gm, am, shape_of_conv, pool_kernel, pool_stride);
    gi = std::get<0>(conv2d_backward_cpu(gconv, input, weight, std::nullopt, stride, padding, dilation, groups, "none",
                                         {true, false, false}));
  }
  return {gi, gw, gb};
}

// ------------------------------------------------------------------------------- bfloat16 on AMX tiles

namespace {
constexpr const char* kOpBf16 = "pydlr::conv2d_act_pool_bf16";

Fused check_bf16(const char* op, const at::Tensor& input, const at::Tensor& weight,
                 const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                 at::IntArrayRef dilation, int64_t groups, c10::string_view activation, at::IntArrayRef pool_kernel,
                 at::IntArrayRef pool_stride) {
  const Fused f = check_fused(op, input, weight, bias, stride, padding, dilation, groups, activation, pool_kernel,
                              pool_stride);
  TORCH_CHECK(detail::conv_pool_amx_ok(f.g, f.p, input, weight), op,
              ": these arguments have no bfloat16 kernel (it needs AMX-BF16, CPU float32 tensors, a 3x3 stride-1 "
              "convolution with the same padding on both axes, input and output channels multiples of 32 up to 256 "
              "and 2x2 windows of stride 2); check conv2d_act_pool_bf16_fusable first");
  return f;
}

at::Tensor defined_or_empty(const std::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() ? *t : at::Tensor();
}
}  // namespace

bool conv2d_act_pool_bf16_fusable(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef stride,
                                  at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                  c10::string_view activation, at::IntArrayRef pool_kernel,
                                  at::IntArrayRef pool_stride) {
  const Fused f = check_fused(kOpBf16, input, weight, std::nullopt, stride, padding, dilation, groups, activation,
                              pool_kernel, pool_stride);
  return detail::conv_pool_amx_ok(f.g, f.p, input, weight);
}

at::Tensor conv2d_act_pool_bf16_cpu(const at::Tensor& input, const at::Tensor& weight,
                                    const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                    at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                    c10::string_view activation, at::IntArrayRef pool_kernel,
                                    at::IntArrayRef pool_stride) {
  const Fused f = check_bf16(kOpBf16, input, weight, bias, stride, padding, dilation, groups, activation,
                             pool_kernel, pool_stride);
  return std::get<0>(detail::conv_pool_amx_forward(f.g, f.act, input, weight, defined_or_empty(bias), false));
}

std::tuple<at::Tensor, at::Tensor> conv2d_act_pool_bf16_with_argmax_cpu(
    const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
    at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, c10::string_view activation,
    at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride) {
  const Fused f = check_bf16("pydlr::conv2d_act_pool_bf16_with_argmax", input, weight, bias, stride, padding,
                             dilation, groups, activation, pool_kernel, pool_stride);
  return detail::conv_pool_amx_forward(f.g, f.act, input, weight, defined_or_empty(bias), true);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_act_pool_bf16_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& argmax, const at::Tensor& output, const at::Tensor& input,
    const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    int64_t groups, c10::string_view activation, at::IntArrayRef pool_kernel, at::IntArrayRef pool_stride,
    std::array<bool, 3> output_mask) {
  const char* op = "pydlr::conv2d_act_pool_bf16_backward";
  const Fused f = check_bf16(op, input, weight, std::nullopt, stride, padding, dilation, groups, activation,
                             pool_kernel, pool_stride);
  check_backward_tensors(op, f, grad_output, argmax, output, input);
  return detail::conv_pool_amx_backward(f.g, f.act, grad_output, argmax, output, input, weight, output_mask);
}

}  // namespace pydlr
