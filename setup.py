"""Build pydlr's native torch extension (pydlr._C) from native/*.cpp.

The CUDA sources (native/*.cu) are compiled only when torch has CUDA and nvcc is found (and PYDLR_NO_CUDA is
not set), so the CPU-only build never needs CUDA. TORCH_CUDA_ARCH_LIST picks the GPU targets (default: the GPUs
present); MAX_JOBS the parallel compiles (default 2); PYDLR_EXTRA_CFLAGS flags added last to the C++ compile and
the link (scripts/sanitize.sh builds with AddressSanitizer and UndefinedBehaviorSanitizer through it).
The batched PNG decoder (native/image_decode_cpu.cpp) links libpng where its headers are found (pkg-config,
else the system include folder); without them it is built as a stub and Pillow decodes every image.
"""
import glob
import os
import shutil
import subprocess

from setuptools import setup
from torch.utils import cpp_extension

os.environ.setdefault("MAX_JOBS", "2")


def _extension():
    cpp_sources = sorted(glob.glob("native/*.cpp"))
    cu_sources = sorted(glob.glob("native/*.cu"))
    # -fno-math-errno: sqrt and friends vectorise (nothing here reads errno).
    extra = os.environ.get("PYDLR_EXTRA_CFLAGS", "").split()
    cxx_flags = ["-O3", "-fopenmp", "-std=c++17", "-fno-math-errno"] + extra
    png_cflags, png_libs = _libpng()
    cxx_flags += png_cflags
    # PYDLR_NO_CUDA=1: the CPU-only extension even where CUDA could be built (a fallback when nvcc fails).
    use_cuda = (bool(cu_sources) and cpp_extension.CUDA_HOME is not None and _torch_has_cuda()
                and os.environ.get("PYDLR_NO_CUDA", "") in ("", "0"))
    if use_cuda:
        return cpp_extension.CUDAExtension(
            "pydlr._C",
            cpp_sources + cu_sources,
            extra_compile_args={"cxx": cxx_flags + ["-DPYDLR_WITH_CUDA"], "nvcc": ["-O3"]},
            extra_link_args=["-fopenmp"] + png_libs + extra,
        )
    return cpp_extension.CppExtension(
        "pydlr._C", cpp_sources, extra_compile_args=cxx_flags, extra_link_args=["-fopenmp"] + png_libs + extra
    )


def _libpng():
    """(compile flags, link flags) for libpng, or ([], []) where it is not installed (PYDLR_NO_LIBPNG=1: the
    same on purpose)."""
    if os.environ.get("PYDLR_NO_LIBPNG", "") not in ("", "0"):
        return [], []
    if shutil.which("pkg-config"):
        probe = subprocess.run(["pkg-config", "--cflags", "--libs", "libpng"], capture_output=True, text=True)
        if probe.returncode == 0:
            flags = probe.stdout.split()
            return ["-DPYDLR_WITH_LIBPNG"] + [f for f in flags if not f.startswith("-l")], \
                [f for f in flags if f.startswith("-l")]
    if os.path.exists("/usr/include/png.h"):
        return ["-DPYDLR_WITH_LIBPNG"], ["-lpng"]
    return [], []


def _torch_has_cuda():
    import torch

    return torch.version.cuda is not None


setup(
    ext_modules=[_extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
