#!/usr/bin/env bash
# Recurrent vs PyTorch, same machine, same session, same thread count and allocator settings.
#   bench/side_by_side.sh [seconds-per-repeat] [threads]
# Needs a venv with torch (see ../shared/bench/README.md) at $VENV (default /work/venv) and a
# release build. The two run interleaved, config by config (Recurrent, then torch_ref.py on the
# same config), so a shared machine's drift in speed hits both alike; an FMA loop (`bench --mode
# peak`) at the start and the end records the machine's ceiling during the run. Writes
# bench/results/*.json, torch_ref_results.{md,json}, side_by_side.md, and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=${1:-3}
THREADS=${2:-2}
VENV=${VENV:-/work/venv}
SHARED=${SHARED:-../shared}
OUT=bench/results
DATA="$SHARED/data/tinyshakespeare/input.txt"
mkdir -p "$OUT"
swift build -c release --product recurrent >/dev/null
R=.build/release/recurrent
TUNED=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=536870912:glibc.malloc.hugetlb=1
torch_ref() {   # torch_ref.py sets the same malloc tunables for its workers itself
  "$VENV/bin/python" "$SHARED/bench/torch_ref.py" --seconds "$SECONDS_PER" --repeats 3 --threads "$THREADS" \
      --no-compile --out "$PWD/$OUT/torch_ref_results.md" "$@" >/dev/null
}
$R bench --mode peak --threads "$THREADS" --json > "$OUT/peak-start.json"
fresh=--fresh
for c in lstm128 lstm256 lstm512 gru256 rnn256 eval512; do
  GLIBC_TUNABLES=$TUNED $R bench --config "$c" --seconds "$SECONDS_PER" --repeats 3 --threads "$THREADS" \
      --data "$DATA" --json > "$OUT/recurrent-$c.json"
  torch_ref --only "$c" $fresh
  fresh=
  echo "done: $c"
done
GLIBC_TUNABLES=$TUNED $R bench --config sample --repeats 3 --threads "$THREADS" --data "$DATA" --json > "$OUT/recurrent-sample.json"
GLIBC_TUNABLES=$TUNED $R bench --config sample --repeats 3 --threads "$THREADS" --data "$DATA" --int8 --json > "$OUT/recurrent-sample-int8.json"
torch_ref --only sample
$R bench --mode peak --threads "$THREADS" --json > "$OUT/peak-end.json"
"$VENV/bin/python" - "$OUT" <<'EOF' | tee "$OUT/side_by_side.md"
import json, sys, os
out = sys.argv[1]
torch = json.load(open(os.path.join(out, "torch_ref_results.json")))
peaks = [json.load(open(os.path.join(out, f)))["gflops"] for f in ("peak-start.json", "peak-end.json")]
targets = {"lstm128": 1.5, "lstm256": 1.3, "lstm512": 1.1, "gru256": 2.5, "rnn256": 2.5, "eval512": 1.05}
print(f"FMA loop (bench --mode peak) at start / end: {peaks[0]:.0f} / {peaks[1]:.0f} GFLOP/s; the issue's figure: 530\n")
print("| config | Recurrent chars/s | PyTorch chars/s | ratio | target | Recurrent GFLOP/s | share of 530 | share of measured FMA loop | executed GFLOP/s (share of the loop) | peak RSS MiB (Recurrent / PyTorch) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for c, t in targets.items():
    r = json.load(open(os.path.join(out, f"recurrent-{c}.json")))
    p = torch[c]
    ratio = r["chars_per_second"] / p["median"]
    g = r["gflops"]
    e = r.get("executed_gflops", g)
    print(f"| {c} | {r['chars_per_second']:,.0f} | {p['median']:,.0f} | {ratio:.3f} | {t} | {g:.0f} | {g / 530:.0%} | {g / max(peaks):.0%}–{g / min(peaks):.0%} | "
          f"{e:.0f} ({e / max(peaks):.0%}–{e / min(peaks):.0%}) | {r['peak_rss_bytes'] / 2**20:.0f} / {p.get('rss_peak_mib', 0):.0f} |")
variants = torch["sample"]["variants"]
eager = max(v["median"] for v in variants if v["variant"] == "eager" and v["what"] == "sample")
for name in ("sample", "sample-int8"):
    r = json.load(open(os.path.join(out, f"recurrent-{name}.json")))
    print(f"| {name} (batch 1) | {r['chars_per_second']:,.0f} | {eager:,.0f} (eager) | {r['chars_per_second'] / eager:.1f} | 15,000 chars/s | | | | | {r['peak_rss_bytes'] / 2**20:.0f} |")
EOF
