"""Build rnnkit, with its optional native extension ``rnnkit._native``.

The extension (csrc/rnnkit_native.cpp, the fused recurrent kernels) is built
against the installed torch with ``torch.utils.cpp_extension``. It is
optional: if torch's build helpers, the compiler or the build fail, the pure
Python package still installs and ``rnnkit.kernels.explain`` says why the
reference loop runs. Portable flags only (no -march=native): the pointwise
kernels carry their own AVX-512/AVX2 clones, picked at load time.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

SOURCE = os.path.join("csrc", "rnnkit_native.cpp")
HEADER = os.path.join("csrc", "step_gemm.h")  # its AVX-512 product kernel
FLAGS = ["-O3", "-ffp-contract=fast", "-fopenmp-simd", "-fno-math-errno", "-std=c++17"]
if sys.platform.startswith("linux"):
    # at::parallel_for is a header template: without -fopenmp it runs serially in
    # the extension. The OpenMP runtime is torch's own (libtorch_cpu loads libgomp).
    FLAGS.append("-fopenmp")


def native_extensions():
    if os.environ.get("RNNKIT_NO_NATIVE") == "1":
        print("rnnkit: RNNKIT_NO_NATIVE=1, skipping the native extension", file=sys.stderr)
        return [], {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except Exception as exc:  # no torch at build time: pure Python install
        print(f"rnnkit: native extension skipped (torch's build helpers unavailable: {exc})", file=sys.stderr)
        return [], {}

    class OptionalBuildExtension(BuildExtension):
        """torch's BuildExtension, but a failed build only warns."""

        def run(self):
            try:
                super().run()
            except Exception as exc:
                self._warn(exc)

        def build_extension(self, ext):
            try:
                super().build_extension(ext)
            except Exception as exc:
                self._warn(exc)

        @staticmethod
        def _warn(exc):
            print(
                f"rnnkit: WARNING: the native extension failed to build ({exc}); "
                "rnnkit installs without it and runs the reference loop",
                file=sys.stderr,
            )

    ext = CppExtension("rnnkit._native", [SOURCE], extra_compile_args=FLAGS, depends=[HEADER])
    return [ext], {"build_ext": OptionalBuildExtension.with_options(use_ninja=False)}


ext_modules, cmdclass = native_extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
