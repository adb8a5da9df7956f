#!/usr/bin/env bash
# How training time grows with H, B, T and layers, and the 1 → 2 thread scaling of lstm512.
#   bench/scaling.sh [seconds-per-repeat]
# Prints a Markdown table (µs per step, chars/s, GFLOP/s) and writes bench/results/scaling.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=${1:-2}
swift build -c release --product recurrent >/dev/null
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=536870912:glibc.malloc.hugetlb=1
OUT=bench/results/scaling.md
run() { # cell layers hidden batch seq threads
  .build/release/recurrent bench --cell "$1" --layers "$2" --hidden "$3" --batch-size "$4" --seq-len "$5" --threads "$6" \
      --mode train --seconds "$SECONDS_PER" --repeats 3 --json
}
row() {
  local json; json=$(run "$@")
  python3 - "$json" "$@" <<'PY'
import json, sys
d = json.loads(sys.argv[1]); cell, L, H, B, T, th = sys.argv[2:8]
cps = d["chars_per_second"]; step_ms = int(B) * int(T) / cps * 1000
print(f"| {cell} | {L} | {H} | {B} | {T} | {th} | {step_ms:.1f} | {cps:,.0f} | {d['gflops']:.0f} |")
PY
}
{
  echo "| cell | layers | H | B | T | threads | ms per step | chars/s | GFLOP/s |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for H in 128 256 512; do row lstm 2 "$H" 64 100 2; done
  for B in 16 32 128; do row lstm 2 256 "$B" 100 2; done
  for T in 25 50 200; do row lstm 2 256 64 "$T" 2; done
  for L in 1 3; do row lstm "$L" 256 64 100 2; done
  row lstm 2 512 64 100 1
} | tee "$OUT"
