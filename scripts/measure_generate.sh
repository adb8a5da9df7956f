#!/usr/bin/env bash
# Share of generated names that the names classifier assigns to the requested language, against the
# same share for real names of that language (random names from the data file, mostly names the
# classifier was trained on) and the uniform baseline 1/18.
#
#   scripts/measure_generate.sh RECURRENT GENERATOR.safetensors CLASSIFIER.safetensors NAMES_DIR [COUNT] [TEMPERATURE]
#
# Prints one markdown row per language and a macro-average row. Seeds are fixed (generate --seed 1;
# the real names are drawn with shuf seeded by a fixed byte stream).
set -euo pipefail
R=$1; GEN=$2; CLS=$3; NAMES=$4; COUNT=${5:-100}; TEMP=${6:-0.8}
seeded() { openssl enc -aes-256-ctr -pass pass:"$1" -nosalt </dev/zero 2>/dev/null; }
echo "| language | generated → language | real names → language | novel generated | example generated names |"
echo "|---|---|---|---|---|"
sum_g=0; sum_r=0; n=0
for f in "$NAMES"/*.txt; do
  lang=$(basename "$f" .txt)
  gen=$("$R" generate --checkpoint "$GEN" --condition "$lang" --count "$COUNT" --temperature "$TEMP" --seed 1 --threads 1)
  g=$(printf '%s\n' "$gen" | "$R" classify predict --checkpoint "$CLS" --threads 1 | awk -F'\t' -v L="$lang" '$1==L{c++} END{printf "%.3f", c/NR}')
  real=$(grep -v '^[[:space:]]*$' "$f" | shuf -n "$COUNT" --random-source=<(seeded 1))
  r=$(printf '%s\n' "$real" | "$R" classify predict --checkpoint "$CLS" --threads 1 | awk -F'\t' -v L="$lang" '$1==L{c++} END{printf "%.3f", c/NR}')
  novel=$(printf '%s\n' "$gen" | awk 'NR==FNR{seen[$0]=1; next} !($0 in seen){c++} END{printf "%.2f", c/FNR}' <(sed 's/\r$//' "$f") -)
  examples=$(printf '%s\n' "$gen" | head -5 | paste -sd, - | sed 's/,/, /g')
  echo "| $lang | $g | $r | $novel | $examples |"
  sum_g=$(awk -v a="$sum_g" -v b="$g" 'BEGIN{print a+b}'); sum_r=$(awk -v a="$sum_r" -v b="$r" 'BEGIN{print a+b}'); n=$((n+1))
done
awk -v g="$sum_g" -v r="$sum_r" -v n="$n" 'BEGIN{printf "| **mean over %d languages** | **%.3f** | **%.3f** | | uniform baseline %.3f |\n", n, g/n, r/n, 1/n}'
