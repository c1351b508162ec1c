#!/usr/bin/env bash
# Import of a BERT-base-sized HF checkpoint (random weights, ~440 MB) against reading the file once, warm cache:
# medians of 5 `cat FILE > /dev/null` and of 5 imports (each its own process), and the imports' peak RSS against
# the weights' float32 size. Targets (issue 10): import <= 2x cat, peak RSS <= 1.25x the weights.
# The copy into the parameters runs on OMP_NUM_THREADS threads (the fresh pages' faults dominate; threads fault
# in parallel): with 1 thread expect about 3x cat.
# usage: experiments/bench_import.sh [BUILD_DIR]   (default build/release; the file goes to experiments/out/)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
bin=$build/experiments/bench_import
file=experiments/out/bert_base.safetensors
mkdir -p experiments/out
[ -f "$file" ] || "$bin" make "$file"
"$bin" machine
echo "file: $file, $(du -m "$file" | cut -f1) MB"
cat "$file" > /dev/null # warm the page cache
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
cats=$(for i in 1 2 3 4 5; do
  s=$(date +%s.%N); cat "$file" > /dev/null; t=$(date +%s.%N); awk -v a="$s" -v b="$t" 'BEGIN {print b - a}'
done | median)
out=$(for i in 1 2 3 4 5; do "$bin" load "$file"; done)
echo "$out" | tail -1
imp=$(echo "$out" | awk '{print $2}' | median)
rss=$(echo "$out" | awk '{print $6}' | sort -g | tail -1)
w=$(echo "$out" | awk '{print $10}' | head -1)
printf 'cat (median of 5): %.3f s; import (median of 5): %.3f s = %.2fx cat (target <= 2)\n' "$cats" "$imp" \
  "$(awk -v a="$imp" -v b="$cats" 'BEGIN {print a / b}')"
printf 'peak RSS (max of 5): %.1f MB = %.2fx the weights'"'"' %.1f MB (target <= 1.25)\n' "$rss" \
  "$(awk -v a="$rss" -v b="$w" 'BEGIN {print a / b}')" "$w"
