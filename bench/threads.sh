#!/usr/bin/env bash
# 1 → 2 thread scaling of lstm512 training, next to the scaling of the machine itself.
#   bench/threads.sh [rounds] [seconds-per-repeat] [config]
# The two vCPUs here are shared with other machines, so the second core's speed moves from one
# minute to the next: the FMA loop (`bench --mode peak`) on two threads has read 1.5× to 2.0× one
# thread within the same hour. Each round therefore measures, back to back, the FMA loop on 1 and 2
# threads and the config on 1 and 2 threads (the order flipped every other round), and reports
# both ratios and their quotient: how much of the machine's own 1 → 2 scaling the config keeps at
# that moment. Writes bench/results/threads.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
SECONDS_PER=${2:-3}
CONFIG=${3:-lstm512}
swift build -c release --product recurrent >/dev/null
R=.build/release/recurrent
OUT=bench/results/threads.md
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=536870912:glibc.malloc.hugetlb=1
for round in $(seq "$ROUNDS"); do
  order="1 2"; [ $((round % 2)) -eq 0 ] && order="2 1"
  for t in $order; do
    $R bench --mode peak --threads "$t" --json > "$TMP/peak-$round-$t.json"
    $R bench --config "$CONFIG" --threads "$t" --seconds "$SECONDS_PER" --repeats 3 --json > "$TMP/run-$round-$t.json"
  done
  echo "round $round: done" >&2
done
python3 - "$TMP" "$ROUNDS" "$CONFIG" "$(date -u '+%Y-%m-%d %H:%M UTC')" <<'PY' | tee "$OUT"
import json, statistics, sys
tmp, rounds, config, when = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def load(kind, r, t):
    with open(f"{tmp}/{kind}-{r}-{t}.json") as f:
        return json.load(f)
def fma(d):
    return d["gflops"]
print(f"`bash bench/threads.sh {rounds}` ({config}, {when}): per round, the FMA loop and {config} "
      "on 1 and 2 threads, back to back.\n")
print("| round | FMA loop 1 → 2 threads, GFLOP/s | FMA ratio | " + config + " chars/s, 1 → 2 threads | " + config
      + " ratio | kept of the machine's scaling |")
print("|---:|---:|---:|---:|---:|---:|")
ratios, kept = [], []
for r in range(1, rounds + 1):
    p1, p2 = fma(load("peak", r, 1)), fma(load("peak", r, 2))
    c1, c2 = load("run", r, 1)["chars_per_second"], load("run", r, 2)["chars_per_second"]
    ratios.append(c2 / c1); kept.append((c2 / c1) / (p2 / p1))
    print(f"| {r} | {p1:.0f} → {p2:.0f} | {p2 / p1:.2f} | {c1:,.0f} → {c2:,.0f} | {c2 / c1:.2f} | {kept[-1]:.0%} |")
print(f"\nMedian {config} ratio {statistics.median(ratios):.2f} (≥ 1.7 in {sum(x >= 1.7 for x in ratios)} of {rounds}); "
      f"median share of the FMA loop's own scaling kept: {statistics.median(kept):.0%}.")
PY
