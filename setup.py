"""Build of the native soil-column kernel; everything else about the package is in pyproject.toml.

The kernel (`cryograd/_native/heat.cc`) is a plain shared library that cryograd loads with
ctypes and registers as an XLA FFI target; it needs only XLA's header-only FFI API, which
jaxlib ships (`jax.ffi.include_dir()`, a build requirement). It is compiled for the
installing machine's CPU (`-march=native`; set CRYOGRAD_NATIVE_MARCH, e.g. `x86-64-v2`, to
build for other machines). The build is optional: without a C++ compiler cryograd installs
without it and `PermafrostColumn(solver="native")` says so.
"""

import os

import jax.ffi
from setuptools import Extension, setup

march = os.environ.get("CRYOGRAD_NATIVE_MARCH", "native")

setup(
    ext_modules=[
        Extension(
            "cryograd._native._heat",
            sources=["cryograd/_native/heat.cc"],
            include_dirs=[jax.ffi.include_dir()],
            language="c++",
            extra_compile_args=["-O3", f"-march={march}", "-std=c++17", "-fno-math-errno"],
            optional=True,
        )
    ]
)
