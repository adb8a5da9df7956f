#!/usr/bin/env bash
# Recurrent's matrix products against OpenBLAS in one process, taking turns (scripts/gemm_vs_openblas.c).
#   bash scripts/gemm_vs_openblas.sh [threads, default 2] [rounds, default 15]
# The kernels are built here the way `swift build -c release` builds them (clang -O2). OpenBLAS is
# the one in NumPy's wheel (OPENBLAS=path to pick another, e.g. Debian's libopenblas.so.0); NumPy
# comes from the venv of ../shared/bench/README (VENV, default /work/venv). Development tool only:
# the product never loads a BLAS.
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG=${CLANG:-clang}
VENV=${VENV:-/work/venv}
if [ -z "${OPENBLAS:-}" ]; then
  OPENBLAS=$(ls "$VENV"/lib/python3*/site-packages/numpy.libs/libscipy_openblas*.so 2>/dev/null | head -1 || true)
fi
[ -n "$OPENBLAS" ] && [ -f "$OPENBLAS" ] || { echo "gemm_vs_openblas.sh: no OpenBLAS found (set OPENBLAS=/path/to/libopenblas.so)" >&2; exit 2; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$CLANG" -O2 -Wall -ISources/CKernels/include Sources/CKernels/*.c scripts/gemm_vs_openblas.c -o "$OUT/gemm_vs_openblas" -lpthread -lm -ldl
"$OUT/gemm_vs_openblas" "$OPENBLAS" "${1:-2}" "${2:-15}"
