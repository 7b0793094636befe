#!/usr/bin/env bash
# ctest's Python.pytest: runs the pytest suite of tests/python against the module built in
# BUILD/python. Usage: run.sh PYTHON PYTHONPATH_DIR BUILD_DIR. Exits 77 (skipped) with a message when
# the module was not built or pytest/NumPy are missing; `make deps` installs them.
set -uo pipefail
py="$1" pkg="$2" build="$3"
here="$(cd "$(dirname "$0")" && pwd)"
[ -n "$py" ] || { echo "the Python module was not built (needs pybind11-dev, python3-dev): skipped"; exit 77; }
ls "$pkg"/flashrt/_flashrt*.so >/dev/null 2>&1 || { echo "no $pkg/flashrt/_flashrt*.so (build the 'python' target): skipped"; exit 77; }
"$py" -c "import pytest, numpy" 2>/dev/null || { echo "$py has no pytest or numpy (python3-pytest, python3-numpy): skipped"; exit 77; }
export PYTHONPATH="$pkg${PYTHONPATH:+:$PYTHONPATH}" FLASHRT_BUILD="$build"
cd "$here/../.." && exec "$py" -m pytest -q -p no:cacheprovider "$here" "${@:4}"
