#!/usr/bin/env bash
# Recurrent vs PyTorch, same machine, same session, same thread count and allocator settings.
#   bench/side_by_side.sh [seconds-per-repeat] [threads] [rounds]
# Needs a venv with torch (see ../shared/bench/README.md) at $VENV (default /work/venv) and a
# release build. The machine this runs on is shared and its speed drifts by ±25% within minutes,
# so the two run interleaved at a fine grain: in each round, config by config, Recurrent then
# torch_ref.py on the same config (a few seconds apart), and the ratio is taken per round, then
# the median over the rounds. An FMA loop (`bench --mode peak`) at the start and the end records
# the machine's ceiling during the run. Writes bench/results/rounds/*.json, the last round's
# torch_ref_results.{md,json}, side_by_side.md, and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=${1:-3}
THREADS=${2:-2}
ROUNDS=${3:-3}
VENV=${VENV:-/work/venv}
SHARED=${SHARED:-../shared}
OUT=bench/results
DATA="$SHARED/data/tinyshakespeare/input.txt"
mkdir -p "$OUT/rounds"
rm -f "$OUT"/rounds/*.json
swift build -c release --product recurrent >/dev/null
R=.build/release/recurrent
TUNED=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=536870912:glibc.malloc.hugetlb=1
torch_ref() {   # torch_ref.py sets the same malloc tunables for its workers itself
  "$VENV/bin/python" "$SHARED/bench/torch_ref.py" --seconds "$SECONDS_PER" --repeats 3 --threads "$THREADS" \
      --no-compile "$@" >/dev/null
}
$R bench --mode peak --threads "$THREADS" --json > "$OUT/peak-start.json"
for round in $(seq "$ROUNDS"); do
  fresh=--fresh
  for c in lstm128 lstm256 lstm512 gru256 rnn256 eval512; do
    GLIBC_TUNABLES=$TUNED $R bench --config "$c" --seconds "$SECONDS_PER" --repeats 3 --threads "$THREADS" \
        --data "$DATA" --json > "$OUT/rounds/recurrent-$c-$round.json"
    torch_ref --only "$c" --out "$PWD/$OUT/rounds/torch-$round.md" $fresh
    fresh=
    echo "round $round: $c"
  done
done
cp "$OUT/rounds/torch-$ROUNDS.md" "$OUT/torch_ref_results.md"
cp "$OUT/rounds/torch-$ROUNDS.json" "$OUT/torch_ref_results.json"
for c in lstm128 lstm256 lstm512 gru256 rnn256 eval512; do cp "$OUT/rounds/recurrent-$c-$ROUNDS.json" "$OUT/recurrent-$c.json"; done
GLIBC_TUNABLES=$TUNED $R bench --config sample --repeats 3 --threads "$THREADS" --data "$DATA" --json > "$OUT/recurrent-sample.json"
GLIBC_TUNABLES=$TUNED $R bench --config sample --repeats 3 --threads "$THREADS" --data "$DATA" --int8 --json > "$OUT/recurrent-sample-int8.json"
torch_ref --only sample --out "$PWD/$OUT/torch_ref_results.md"
$R bench --mode peak --threads "$THREADS" --json > "$OUT/peak-end.json"
"$VENV/bin/python" - "$OUT" "$ROUNDS" <<'EOF' | tee "$OUT/side_by_side.md"
import json, sys, os, statistics
out, rounds = sys.argv[1], int(sys.argv[2])
def load(path): return json.load(open(os.path.join(out, path)))
peaks = [load(f)["gflops"] for f in ("peak-start.json", "peak-end.json")]
targets = {"lstm128": 1.5, "lstm256": 1.3, "lstm512": 1.1, "gru256": 2.5, "rnn256": 2.5, "eval512": 1.05}
print(f"FMA loop (bench --mode peak) at start / end: {peaks[0]:.0f} / {peaks[1]:.0f} GFLOP/s; the issue's figure: 530")
print(f"{rounds} rounds; in each, Recurrent then PyTorch on one config, config by config. Ratio = Recurrent / PyTorch "
      "per round; the median round (by ratio) gives the other columns.\n")
print("| config | ratio per round | median ratio | target | rounds met | Recurrent chars/s | PyTorch chars/s | Recurrent GFLOP/s | share of 530 | share of measured FMA loop | executed GFLOP/s (share of the loop) | peak RSS MiB (Recurrent / PyTorch) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for c, t in targets.items():
    runs = []
    for k in range(1, rounds + 1):
        r = load(f"rounds/recurrent-{c}-{k}.json")
        p = load(f"rounds/torch-{k}.json")[c]
        runs.append((r["chars_per_second"] / p["median"], r, p))
    ratios = [x[0] for x in runs]
    ratio, r, p = sorted(runs, key=lambda x: x[0])[len(runs) // 2]
    g = r["gflops"]
    e = r.get("executed_gflops", g)
    met = sum(x >= t for x in ratios)
    print(f"| {c} | {' / '.join(f'{x:.2f}' for x in ratios)} | {statistics.median(ratios):.3f} | {t} | {met} of {rounds} | "
          f"{r['chars_per_second']:,.0f} | {p['median']:,.0f} | {g:.0f} | {g / 530:.0%} | {g / max(peaks):.0%}–{g / min(peaks):.0%} | "
          f"{e:.0f} ({e / max(peaks):.0%}–{e / min(peaks):.0%}) | {r['peak_rss_bytes'] / 2**20:.0f} / {p.get('rss_peak_mib', 0):.0f} |")
torch = load("torch_ref_results.json")
variants = torch["sample"]["variants"]
eager = max(v["median"] for v in variants if v["variant"] == "eager" and v["what"] == "sample")
for name in ("sample", "sample-int8"):
    r = load(f"recurrent-{name}.json")
    print(f"| {name} (batch 1) | | {r['chars_per_second'] / eager:.1f} | 15,000 chars/s | | {r['chars_per_second']:,.0f} | {eager:,.0f} (eager) | | | | | {r['peak_rss_bytes'] / 2**20:.0f} |")
EOF
