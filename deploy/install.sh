#!/bin/sh
# The images' install step, in one place: every Dockerfile under deploy/ runs it in its build
# stage, and tests/deploy/test_image_install.py runs it into a plain venv on the host, so what
# the images install and what the test checks cannot drift apart.
#   usage: sh deploy/install.sh PREFIX [SOURCE_TREE]
# PREFIX becomes a venv holding ebbtide without extras, at the versions in deploy/constraints.txt.
# PYTHON picks the interpreter (default python3). The images set PIP_NO_CACHE_DIR=1; the test
# keeps pip's cache so it does not download every wheel again.
set -eu
prefix="$1"
tree="${2:-.}"
"${PYTHON:-python3}" -m venv "$prefix"
"$prefix/bin/pip" install --quiet --disable-pip-version-check --no-compile \
  -c "$tree/deploy/constraints.txt" "$tree"
find "$prefix" -name '__pycache__' -prune -exec rm -rf {} +
