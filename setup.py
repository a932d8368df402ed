"""Build pydlr's native torch extension (pydlr._C) from native/*.cpp.

The CUDA sources (native/*.cu) are compiled only when torch has CUDA and nvcc is found,
so the CPU-only build never needs CUDA.
"""
import glob
import os

from setuptools import setup
from torch.utils import cpp_extension

os.environ.setdefault("MAX_JOBS", "2")


def _extension():
    cpp_sources = sorted(glob.glob("native/*.cpp"))
    cu_sources = sorted(glob.glob("native/*.cu"))
    # -fno-math-errno: sqrt and friends vectorise (nothing here reads errno).
    cxx_flags = ["-O3", "-fopenmp", "-std=c++17", "-fno-math-errno"]
    use_cuda = bool(cu_sources) and cpp_extension.CUDA_HOME is not None and _torch_has_cuda()
    if use_cuda:
        return cpp_extension.CUDAExtension(
            "pydlr._C",
            cpp_sources + cu_sources,
            extra_compile_args={"cxx": cxx_flags + ["-DPYDLR_WITH_CUDA"], "nvcc": ["-O3"]},
            extra_link_args=["-fopenmp"],
        )
    return cpp_extension.CppExtension(
        "pydlr._C", cpp_sources, extra_compile_args=cxx_flags, extra_link_args=["-fopenmp"]
    )


def _torch_has_cuda():
    import torch

    return torch.version.cuda is not None


setup(
    ext_modules=[_extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
