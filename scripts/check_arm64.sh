#!/usr/bin/env bash
# Builds the C kernels for arm64 and runs scripts/arm64_gemm_check.c under user-mode QEMU: the NEON
# GEMM path (the baseline on arm64, Apple silicon included) against the reference, on a machine
# without arm64 hardware. Correctness only: QEMU says nothing about speed.
#   bash scripts/check_arm64.sh
# Needs clang (the Swift toolchain's), an arm64 sysroot and QEMU; on Debian:
#   apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG=${CLANG:-clang}
SYSROOT=${SYSROOT:-/usr/aarch64-linux-gnu}
for tool in "$CLANG" aarch64-linux-gnu-gcc qemu-aarch64-static; do
  command -v "$tool" >/dev/null || { echo "check_arm64.sh: $tool not found (see the header of this script)" >&2; exit 2; }
done
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
objs=()
for f in Sources/CKernels/*.c scripts/arm64_gemm_check.c; do
  o="$OUT/$(basename "${f%.c}").o"
  "$CLANG" --target=aarch64-linux-gnu --sysroot="$SYSROOT" -isystem "$SYSROOT/include" -O2 -Wall -Werror \
      -ISources/CKernels/include -c "$f" -o "$o"
  objs+=("$o")
done
aarch64-linux-gnu-gcc -static "${objs[@]}" -o "$OUT/check" -lpthread -lm
qemu-aarch64-static "$OUT/check"
