"""Packages the native module that CMake builds (`make python`) with python/flashrt.

The extension is not compiled by setuptools: the CMake tree (FLASHRT_BUILD_DIR, default `build`)
builds it with the rest of flashrt, and this copies build/python/flashrt into the wheel. When the
module is missing, it runs the CMake build of the `flashrt_python` target first.
"""

import glob
import os
import shutil
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(os.environ.get("FLASHRT_BUILD_DIR", os.path.join(ROOT, "build")))


class CMakeBuilt(build_ext):
    def build_extension(self, ext):
        pattern = os.path.join(BUILD, "python", "flashrt", "_flashrt*.so")
        if not glob.glob(pattern):
            if not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
                subprocess.check_call(
                    ["cmake", "-S", ROOT, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release"])
            subprocess.check_call(["cmake", "--build", BUILD, "--target", "flashrt_python"])
        built = glob.glob(pattern)
        if not built:
            raise RuntimeError(f"CMake built no module matching {pattern}")
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(built[0], target)


setup(
    packages=["flashrt"],
    package_dir={"flashrt": "python/flashrt"},
    package_data={"flashrt": ["__init__.pyi", "py.typed"]},
    ext_modules=[Extension("flashrt._flashrt", sources=[])],
    cmdclass={"build_ext": CMakeBuilt},
    zip_safe=False,
    # setuptools' own scratch tree, beside (not inside) the CMake tree `build`.
    options={"build": {"build_base": "build-pip"}},
)
