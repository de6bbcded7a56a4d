"""The compiled part of garment: the conversion kernel (everything else is in pyproject.toml)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "garment._convert",
            sources=["src/garment/_convert.c"],
            # Every float operation rounds as written (no fused multiply-adds, no fast math):
            # the kernel reproduces NumPy's and Pillow's arithmetic pixel for pixel.
            extra_compile_args=["-O3", "-std=c11", "-ffp-contract=off", "-fno-fast-math"],
        )
    ]
)
