"""Build pydlr's native torch extension (pydlr._C) from native/*.cpp.

The CUDA sources (native/*.cu) are compiled only when torch has CUDA and nvcc is found (and PYDLR_NO_CUDA is
not set), so the CPU-only build never needs CUDA. TORCH_CUDA_ARCH_LIST picks the GPU targets (default: the GPUs
present); MAX_JOBS the parallel compiles (default 2); PYDLR_EXTRA_CFLAGS flags added last to the C++ compile and
the link (scripts/sanitize.sh builds with AddressSanitizer and UndefinedBehaviorSanitizer through it).
The batched PNG decoder (native/image_decode_cpu.cpp) links libpng where its headers are found (pkg-config,
else the system include folder); without them it is built as a stub and Pillow decodes every image. With libpng
it also links libdeflate where its header is found (Debian: libdeflate-dev; PYDLR_NO_LIBDEFLATE=1: not), which
inflates plain PNGs faster than zlib; without it zlib does (the same pixels).
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
    png = _pkg("libpng", "png.h", "-lpng")
    if png is None:
        return [], []
    cflags, libs = png
    # zlib comes with libpng (it depends on it); libdeflate is optional
    deflate = None if os.environ.get("PYDLR_NO_LIBDEFLATE", "") not in ("", "0") else \
        _pkg("libdeflate", "libdeflate.h", "-ldeflate")
    if deflate is not None:
        cflags, libs = cflags + deflate[0] + ["-DPYDLR_WITH_LIBDEFLATE"], libs + deflate[1]
    return ["-DPYDLR_WITH_LIBPNG"] + cflags, libs + ["-lz"]


def _pkg(name, header, lib):
    """(compile flags, link flags) of a library from pkg-config, else from the system include folder; None
    where it is not installed."""
    if shutil.which("pkg-config"):
        probe = subprocess.run(["pkg-config", "--cflags", "--libs", name], capture_output=True, text=True)
        if probe.returncode == 0:
            flags = probe.stdout.split()
            return [f for f in flags if not f.startswith("-l")], [f for f in flags if f.startswith("-l")]
    if os.path.exists(f"/usr/include/{header}"):
        return [], [lib]
    return None


def _torch_has_cuda():
    import torch

    return torch.version.cuda is not None


setup(
    ext_modules=[_extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
