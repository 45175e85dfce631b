#!/usr/bin/env bash
# Set up calib in ./.venv (idempotent).  Usage: bash setup.sh [--test | --bench]
#   --test   also install the test tools (pytest, hypothesis, ruff)
#   --bench  also the benchmark references (small_gicp, pycolmap) on top of --test
set -euo pipefail
cd "$(dirname "$0")"
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
[ "${1:-}" = "--bench" ] && extras="[test,bench]"

py=${PYTHON:-python3}
"$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || { echo "setup.sh: calib needs Python >= 3.10 (found $("$py" --version 2>&1))" >&2; exit 1; }

# Open3D's wheel links against libusb-1.0 (a system library, not on PyPI).
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "setup.sh: installing libusb-1.0-0 (needed by open3d)" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null
  else
    echo "setup.sh: open3d needs the system library libusb-1.0: run 'sudo apt-get install libusb-1.0-0' (or your distribution's equivalent)" >&2
  fi
fi

# calib's kernels (csrc) are compiled by pip: a C compiler and Python's headers.
if ! command -v "${CC:-cc}" >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1; then
  echo "setup.sh: calib compiles C kernels: install a C compiler (Debian: 'apt-get install gcc python3-dev')" >&2
  exit 1
fi
if ! "$py" -c 'import os, sysconfig, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)'; then
  echo "setup.sh: calib compiles C kernels: Python's headers (Python.h) are missing (Debian: 'apt-get install python3-dev')" >&2
  exit 1
fi

# setuptools warns on every editable install with a compiled module that folders named like
# the package could shadow it; here the folder *is* the package, so that one note is muted.
export PYTHONWARNINGS="ignore:Editable installation"

[ -x .venv/bin/python ] || "$py" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# open3d and open3d-cpu install the same 'open3d' module: keep a user's existing one.
if .venv/bin/python -m pip show -q open3d >/dev/null 2>&1; then
  echo "setup.sh: using the installed 'open3d' package instead of 'open3d-cpu'" >&2
  .venv/bin/python -m pip install -q --no-deps -e ".${extras}"
  .venv/bin/python -m pip install -q numpy scipy opencv-python-headless typer matplotlib pyyaml \
    "dask[distributed]" threadpoolctl \
    $( [ -n "$extras" ] && echo pytest hypothesis ruff ) \
    $( [ "$extras" = "[test,bench]" ] && echo small_gicp pycolmap )
else
  .venv/bin/python -m pip install -q -e ".${extras}"
fi
.venv/bin/python -c 'import open3d, cv2, calib' \
  || { echo "setup.sh: the installation does not import (see the messages above)" >&2; exit 1; }
echo "setup.sh: ready (.venv/bin/calib --help)" >&2
