#!/usr/bin/env bash
# Recurrent vs PyTorch, same machine, same session, same thread count and allocator settings.
#   bench/side_by_side.sh [seconds-per-repeat] [threads]
# Needs a venv with torch (see ../shared/bench/README.md) at $VENV (default /work/venv) and a
# release build. Writes bench/results/*.json and prints a table of chars/s and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=${1:-3}
THREADS=${2:-2}
VENV=${VENV:-/work/venv}
SHARED=${SHARED:-../shared}
OUT=bench/results
mkdir -p "$OUT"
swift build -c release --product recurrent >/dev/null
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=536870912:glibc.malloc.hugetlb=1
configs="lstm128 lstm256 lstm512 gru256 rnn256 eval512"
for c in $configs; do
  .build/release/recurrent bench --config "$c" --seconds "$SECONDS_PER" --repeats 3 --threads "$THREADS" \
      --data "$SHARED/data/tinyshakespeare/input.txt" --json > "$OUT/recurrent-$c.json"
  echo "recurrent $c: $(cat "$OUT/recurrent-$c.json")"
done
.build/release/recurrent bench --config sample --repeats 3 --threads "$THREADS" --data "$SHARED/data/tinyshakespeare/input.txt" --json > "$OUT/recurrent-sample.json"
echo "recurrent sample: $(cat "$OUT/recurrent-sample.json")"
unset GLIBC_TUNABLES   # torch_ref.py sets the same tunables for its workers itself
"$VENV/bin/python" "$SHARED/bench/torch_ref.py" --only "$(echo $configs | tr ' ' ','),sample" --seconds "$SECONDS_PER" --repeats 3 \
    --threads "$THREADS" --no-compile --out "$PWD/$OUT/torch_ref_results.md" --fresh
echo "torch results: $OUT/torch_ref_results.md"
