"""How far a bfloat16 Winograd convolution lands from the exact result, against a bfloat16 direct convolution.

A bf16 Winograd kernel would round the transformed input (B^T d B) and the transformed weight (G g G^T) to bf16
before their elementwise products (the GEMM stage, where vdpbf16ps pays), accumulating in float32. The output
transform A^T (.) A then amplifies the rounding (F(4x4, 3x3)'s A has entries up to 8). This script computes, in
float64 apart from those roundings, 3x3 convolutions of ReLU-like inputs (64 -> 64 channels, He-scaled weights)
by F(2x2), F(3x3) and F(4x4, 3x3) (the transforms of native/winograd_cpu.cpp) and by a direct convolution of
bf16-rounded input and weight (what oneDNN's bf16 convolution and torch's autocast compute), and prints the error
relative to the exact output (L2 norm ratio, and max error over max |y|).

Run: python bench/bench_bf16_winograd_error.py
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

D = torch.float64
# (B^T, G, A^T) of each tile size; F(3x3) and F(4x4) as native/winograd_cpu.cpp's F33 / F43.
TRANSFORMS = {
    "F(2x2,3x3)": (
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]],
    ),
    "F(3x3,3x3)": (
        [[2, -1, -2, 1, 0], [0, -2, -1, 1, 0], [0, 2, -3, 1, 0], [0, -1, 0, 1, 0], [0, 2, -1, -2, 1]],
        [[0.5, 0, 0], [-0.5, -0.5, -0.5], [-1 / 6, 1 / 6, -1 / 6], [1 / 6, 1 / 3, 2 / 3], [0, 0, 1]],
        [[1, 1, 1, 1, 0], [0, 1, -1, 2, 0], [0, 1, 1, 4, 1]],
    ),
    "F(4x4,3x3)": (
        [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
         [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
         [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
}


def bf16(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.bfloat16).to(D)


def winograd(x: torch.Tensor, w: torch.Tensor, bt, g, at, round_bf16: bool) -> torch.Tensor:
    """Valid 3x3 correlation of x (N, C, H, W) by w, output tile by output tile (H - 2 a multiple of the tile)."""
    bt, g, at = (torch.tensor(m, dtype=D) for m in (bt, g, at))
    t, m = bt.shape[0], at.shape[0]
    u = torch.einsum("ik,ockl,jl->ocij", g, w, g)
    u = bf16(u) if round_bf16 else u
    n, _, h, _ = x.shape
    tiles = (h - 2) // m
    y = torch.zeros(n, w.shape[0], tiles * m, tiles * m, dtype=D)
    for a in range(tiles):
        for b in range(tiles):
            v = torch.einsum("ik,nckl,jl->ncij", bt, x[:, :, a * m:a * m + t, b * m:b * m + t], bt)
            v = bf16(v) if round_bf16 else v
            prod = torch.einsum("ncij,ocij->noij", v, u)
            y[:, :, a * m:(a + 1) * m, b * m:(b + 1) * m] = torch.einsum("ik,nokl,jl->noij", at, prod, at)
    return y


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help; no options
    torch.manual_seed(0)
    c = 64
    x = torch.randn(16, c, 14, 14, dtype=D).clamp(min=0)  # 12x12 outputs: a multiple of 2, 3 and 4
    w = torch.randn(64, c, 3, 3, dtype=D) * (2 / (9 * c)) ** 0.5
    ref = F.conv2d(x, w)

    def errors(y: torch.Tensor) -> str:
        return f"{((y - ref).norm() / ref.norm()).item():.1e}  {((y - ref).abs().max() / ref.abs().max()).item():.1e}"

    print(f"3x3 convolution {c} -> 64 channels, 16 images of 14x14; error relative to the exact output: L2, max")
    print(f"{'direct, bf16 input and weight':32s} {errors(F.conv2d(bf16(x), bf16(w)))}")
    for name, (bt, g, at) in TRANSFORMS.items():
        exact = winograd(x, w, bt, g, at, False)
        assert (exact - ref).abs().max() < 1e-10 * ref.abs().max(), name  # the transforms are right
        print(f"{name + ', bf16 GEMM stage':32s} {errors(winograd(x, w, bt, g, at, True))}")


if __name__ == "__main__":
    main()
