// CUDA kernels of pydlr's convolution, registered under TORCH_LIBRARY_IMPL(pydlr, CUDA, m).
//
// Compiled only when nvcc and a CUDA build of torch are present (setup.py); the CPU-only build never sees
// this file. Tested on an H200 (tests/test_native_cuda.py, docs/gpu.md): correct, but slower than cuDNN on
// nearly every shape measured, so the layers' "auto" backend (which times both per shape) rarely takes it.
//
// Paths: groups == 1 with a long reduction (C*KH*KW >= 32): im2col kernel + cuBLAS GEMM (at::mm) per chunk of
// images, then one fused bias + activation kernel. Everything else (depthwise, grouped, few channels): a direct
// kernel, one thread per output element, bias and activation fused. Backward: gradient masking fused with the
// input-gradient gather kernel's reads; weight gradient by im2col + GEMM (groups == 1) or a block reduction per
// weight element. Internally NCHW-contiguous; the output follows the input's memory format like the CPU kernels.
#include "conv.h"

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

namespace pydlr {
namespace {

constexpr int kThreads = 256;

inline int blocks_for(int64_t n) { return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 8)); }

template <typename T>
__device__ __forceinline__ T act_apply(T v, int act) {
  if (act == 1) return v < T(0) ? T(0) : v;
  if (act == 2) return v < T(0) ? T(0) : (v > T(6) ? T(6) : v);
  return v;
}

template <typename T>
__device__ __forceinline__ T act_grad(T g, T y, int act) {
  if (act == 1) return y > T(0) ? g : T(0);
  if (act == 2) return (y > T(0) && y < T(6)) ? g : T(0);
  return g;
}

struct Geom {
  int64_t N, C, H, W, OC, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, G;
};

Geom to_geom(const ConvGeom& g) {
  return {g.N, g.C, g.H, g.W, g.OC, g.KH, g.KW, g.OH, g.OW, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.G};
}

// One thread per output element (n, oc, oh, ow), NCHW.
template <typename T>
__global__ void direct_fwd_kernel(Geom g, const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                  T* __restrict__ y, int act) {
  const int64_t total = g.N * g.OC * g.OH * g.OW;
  const int64_t Cg = g.C / g.G, OCg = g.OC / g.G;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t ow = i % g.OW, oh = (i / g.OW) % g.OH, oc = (i / (g.OW * g.OH)) % g.OC, n = i / (g.OW * g.OH * g.OC);
    const int64_t gi = oc / OCg;
    T acc = b ? b[oc] : T(0);
    for (int64_t c = 0; c < Cg; ++c) {
      const T* xc = x + ((n * g.C + gi * Cg + c) * g.H) * g.W;
      const T* wc = w + (oc * Cg + c) * g.KH * g.KW;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
        if (ih < 0 || ih >= g.H) continue;
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const int64_t iw = ow * g.sw - g.pw + kw * g.dw;
          if (iw < 0 || iw >= g.W) continue;
          acc += xc[ih * g.W + iw] * wc[kh * g.KW + kw];
        }
      }
    }
    y[i] = act_apply(acc, act);
  }
}

// col[(c, kh, kw), (n - n0, oh, ow)] for images [n0, n0 + nc).
template <typename T>
__global__ void im2col_kernel(Geom g, const T* __restrict__ x, T* __restrict__ col, int64_t n0, int64_t nc) {
  const int64_t P = g.OH * g.OW, cols = nc * P, total = g.C * g.KH * g.KW * cols;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t j = i % cols, r = i / cols;
    const int64_t kw = r % g.KW, kh = (r / g.KW) % g.KH, c = r / (g.KW * g.KH);
    const int64_t n = n0 + j / P, p = j % P, oh = p / g.OW, ow = p % g.OW;
    const int64_t ih = oh * g.sh - g.ph + kh * g.dh, iw = ow * g.sw - g.pw + kw * g.dw;
    col[i] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? x[((n * g.C + c) * g.H + ih) * g.W + iw] : T(0);
  }
}

// out [OC, nc, P] (GEMM layout) -> y [n0 + .., OC, P] with bias and activation.
template <typename T>
__global__ void scatter_bias_act_kernel(Geom g, const T* __restrict__ out, const T* __restrict__ b,
                                        T* __restrict__ y, int64_t n0, int64_t nc, int act) {
  const int64_t P = g.OH * g.OW, total = g.OC * nc * P;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t p = i % P, n = (i / P) % nc, oc = i / (P * nc);
    const T v = out[i] + (b ? b[oc] : T(0));
    y[((n0 + n) * g.OC + oc) * P + p] = act_apply(v, act);
  }
}

template <typename T>
__global__ void mask_kernel(const T* __restrict__ go, const T* __restrict__ y, T* __restrict__ gm, int64_t n, int act) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    gm[i] = act_grad(go[i], y[i], act);
  }
}

// Input gradient, one thread per input element (gather: no atomics).
template <typename T>
__global__ void dx_kernel(Geom g, const T* __restrict__ gm, const T* __restrict__ w, T* __restrict__ dx) {
  const int64_t total = g.N * g.C * g.H * g.W;
  const int64_t Cg = g.C / g.G, OCg = g.OC / g.G;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t iw = i % g.W, ih = (i / g.W) % g.H, c = (i / (g.W * g.H)) % g.C, n = i / (g.W * g.H * g.C);
    const int64_t gi = c / Cg, cl = c % Cg;
    T acc = T(0);
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t th = ih + g.ph - kh * g.dh;
      if (th < 0 || th % g.sh != 0 || th / g.sh >= g.OH) continue;
      const int64_t oh = th / g.sh;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t tw = iw + g.pw - kw * g.dw;
        if (tw < 0 || tw % g.sw != 0 || tw / g.sw >= g.OW) continue;
        const int64_t ow = tw / g.sw;
        for (int64_t o = 0; o < OCg; ++o) {
          const int64_t oc = gi * OCg + o;
          acc += gm[((n * g.OC + oc) * g.OH + oh) * g.OW + ow] * w[((oc * Cg + cl) * g.KH + kh) * g.KW + kw];
        }
      }
    }
    dx[i] = acc;
  }
}

// Weight gradient, one block per weight element, threads reduce over (n, oh, ow).
template <typename T>
__global__ void dw_kernel(Geom g, const T* __restrict__ x, const T* __restrict__ gm, T* __restrict__ dw) {
  const int64_t Cg = g.C / g.G, OCg = g.OC / g.G;
  const int64_t e = blockIdx.x;  // (oc, cl, kh, kw)
  const int64_t kw = e % g.KW, kh = (e / g.KW) % g.KH, cl = (e / (g.KW * g.KH)) % Cg, oc = e / (g.KW * g.KH * Cg);
  const int64_t c = (oc / OCg) * Cg + cl;
  const int64_t P = g.OH * g.OW, total = g.N * P;
  T acc = T(0);
  for (int64_t i = threadIdx.x; i < total; i += blockDim.x) {
    const int64_t n = i / P, p = i % P, oh = p / g.OW, ow = p % g.OW;
    const int64_t ih = oh * g.sh - g.ph + kh * g.dh, iw = ow * g.sw - g.pw + kw * g.dw;
    if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) {
      acc += gm[(n * g.OC + oc) * P + p] * x[((n * g.C + c) * g.H + ih) * g.W + iw];
    }
  }
  __shared__ T buf[kThreads];
  buf[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) dw[e] = buf[0];
}

inline bool use_gemm(const ConvGeom& g) { return g.G == 1 && g.C * g.KH * g.KW >= 32; }

// Images per GEMM chunk so that the im2col buffer stays below ~256 MiB.
inline int64_t chunk_images(const ConvGeom& g, int64_t elem) {
  const int64_t per = g.C * g.KH * g.KW * g.OH * g.OW * elem;
  return std::max<int64_t>(1, std::min<int64_t>(g.N, (int64_t(256) << 20) / std::max<int64_t>(per, 1)));
}

at::Tensor conv2d_act_cuda(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                           at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                           c10::string_view activation) {
  const ConvGeom cg = check_conv_args("pydlr::conv2d", input, weight, bias, stride, padding, dilation, groups);
  const int act = static_cast<int>(parse_act(activation));
  TORCH_CHECK(input.is_cuda(), "pydlr::conv2d: CUDA kernel called with a ", input.device(), " tensor");
  c10::cuda::CUDAGuard guard(input.device());
  const auto fmt = input.suggest_memory_format();
  const at::Tensor x = input.contiguous();
  const at::Tensor w = weight.contiguous();
  const at::Tensor b = bias.has_value() && bias->defined() ? bias->contiguous() : at::Tensor();
  at::Tensor y = at::empty({cg.N, cg.OC, cg.OH, cg.OW}, input.options());
  const Geom g = to_geom(cg);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "pydlr_conv2d_cuda", [&] {
    const scalar_t* bp = b.defined() ? b.const_data_ptr<scalar_t>() : nullptr;
    if (use_gemm(cg)) {
      const int64_t Kdim = cg.C * cg.KH * cg.KW, P = cg.OH * cg.OW, nb = chunk_images(cg, sizeof(scalar_t));
      at::Tensor col = at::empty({Kdim, nb * P}, input.options());
      const at::Tensor w2 = w.view({cg.OC, Kdim});
      for (int64_t n0 = 0; n0 < cg.N; n0 += nb) {
        const int64_t nc = std::min(nb, cg.N - n0);
        at::Tensor colc = col.narrow(1, 0, nc * P);
        im2col_kernel<scalar_t><<<blocks_for(Kdim * nc * P), kThreads, 0, stream>>>(
            g, x.const_data_ptr<scalar_t>(), colc.mutable_data_ptr<scalar_t>(), n0, nc);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        const at::Tensor out = at::mm(w2, colc);  // [OC, nc * P], cuBLAS
        scatter_bias_act_kernel<scalar_t><<<blocks_for(cg.OC * nc * P), kThreads, 0, stream>>>(
            g, out.const_data_ptr<scalar_t>(), bp, y.mutable_data_ptr<scalar_t>(), n0, nc, act);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
    } else {
      direct_fwd_kernel<scalar_t><<<blocks_for(y.numel()), kThreads, 0, stream>>>(
          g, x.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), bp, y.mutable_data_ptr<scalar_t>(), act);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return fmt == at::MemoryFormat::ChannelsLast ? y.contiguous(fmt) : y;
}

at::Tensor conv2d_cuda(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  return conv2d_act_cuda(input, weight, bias, stride, padding, dilation, groups, "none");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
    const std::optional<at::Tensor>& output, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef dilation, int64_t groups, c10::string_view activation, std::array<bool, 3> output_mask) {
  const ConvGeom cg = check_conv_args("pydlr::conv2d_backward", input, weight, std::nullopt, stride, padding,
                                      dilation, groups);
  const int act = static_cast<int>(parse_act(activation));
  TORCH_CHECK(act == 0 || (output.has_value() && output->defined()),
              "pydlr::conv2d_backward: the activated output is needed for activation \"", std::string(activation),
              "\"");
  c10::cuda::CUDAGuard guard(input.device());
  const auto fmt = input.suggest_memory_format();
  const at::Tensor x = input.contiguous();
  const at::Tensor w = weight.contiguous();
  const Geom g = to_geom(cg);
  auto stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor gm = grad_output.contiguous();
  if (act != 0) {
    const at::Tensor y = output->contiguous();
    at::Tensor masked = at::empty_like(gm);
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "pydlr_conv2d_mask_cuda", [&] {
      mask_kernel<scalar_t><<<blocks_for(gm.numel()), kThreads, 0, stream>>>(
          gm.const_data_ptr<scalar_t>(), y.const_data_ptr<scalar_t>(), masked.mutable_data_ptr<scalar_t>(),
          gm.numel(), act);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    gm = masked;
  }
  at::Tensor gi, gw, gb;
  if (output_mask[2]) gb = gm.sum({0, 2, 3});
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "pydlr_conv2d_backward_cuda", [&] {
    if (output_mask[0]) {
      gi = at::empty({cg.N, cg.C, cg.H, cg.W}, input.options());
      dx_kernel<scalar_t><<<blocks_for(gi.numel()), kThreads, 0, stream>>>(
          g, gm.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), gi.mutable_data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      if (fmt == at::MemoryFormat::ChannelsLast) gi = gi.contiguous(fmt);
    }
    if (output_mask[1]) {
      if (use_gemm(cg)) {
        const int64_t Kdim = cg.C * cg.KH * cg.KW, P = cg.OH * cg.OW, nb = chunk_images(cg, sizeof(scalar_t));
        at::Tensor col = at::empty({Kdim, nb * P}, input.options());
        gw = at::zeros({cg.OC, Kdim}, input.options());
        for (int64_t n0 = 0; n0 < cg.N; n0 += nb) {
          const int64_t nc = std::min(nb, cg.N - n0);
          at::Tensor colc = col.narrow(1, 0, nc * P);
          im2col_kernel<scalar_t><<<blocks_for(Kdim * nc * P), kThreads, 0, stream>>>(
              g, x.const_data_ptr<scalar_t>(), colc.mutable_data_ptr<scalar_t>(), n0, nc);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
          // [OC, nc * P] view of the chunk's gradient (n, oc, p) -> (oc, n, p).
          const at::Tensor gchunk = gm.narrow(0, n0, nc).view({nc, cg.OC, P}).permute({1, 0, 2}).reshape({cg.OC, nc * P});
          gw.addmm_(gchunk, colc.t());
        }
        gw = gw.view({cg.OC, cg.C, cg.KH, cg.KW});
      } else {
        gw = at::empty_like(w);
        dw_kernel<scalar_t><<<static_cast<unsigned>(gw.numel()), kThreads, 0, stream>>>(
            g, x.const_data_ptr<scalar_t>(), gm.const_data_ptr<scalar_t>(), gw.mutable_data_ptr<scalar_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
    }
  });
  return {gi, gw, gb};
}

}  // namespace
}  // namespace pydlr

TORCH_LIBRARY_IMPL(pydlr, CUDA, m) {
  m.impl("conv2d", pydlr::conv2d_cuda);
  m.impl("conv2d_act", pydlr::conv2d_act_cuda);
  m.impl("conv2d_backward", pydlr::conv2d_backward_cuda);
}
