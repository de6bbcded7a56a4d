"""The compiled part of garment: the conversion kernel (everything else is in pyproject.toml)."""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

#: Every float operation rounds as written (no fused multiply-adds, no fast math).
GCC_FLAGS = ["-O3", "-std=c11", "-ffp-contract=off", "-fno-fast-math"]
MSVC_FLAGS = ["/O2", "/std:c11", "/fp:precise"]


class BuildExt(build_ext):
    """The flags of the compiler at hand: GCC and Clang's, or MSVC's."""

    def build_extensions(self) -> None:
        flags = MSVC_FLAGS if self.compiler.compiler_type == "msvc" else GCC_FLAGS
        for ext in self.extensions:
            ext.extra_compile_args = flags
        super().build_extensions()


setup(
    ext_modules=[Extension("garment._convert", sources=["src/garment/_convert.c"])],
    cmdclass={"build_ext": BuildExt},
)
