#!/usr/bin/env bash
# Checks that our GPT-2 BPE (data/bpe.c) gives exactly the ids of npm gpt-3-encoder's own Encoder.js under node, on
# every GO text (go/{train,dev,test}.tsv, go_rel/{train,dev,test}.tsv both columns) and a list of hostile texts
# (emoji, ZWJ sequences, CJK, combining marks, controls, invalid UTF-8, 10,000 repeats, whitespace runs, ...;
# listed in experiments/bpe_check.js). Prints "N/N identical" and the first difference; exits 1 on any.
#   experiments/bpe_check.sh              the check
#   experiments/bpe_check.sh --fixture    also rewrites tests/fixtures/bpe_expected.txt (tests/test_bpe.c)
# Needs the data (scripts/fetch_data.sh) and tokenize_dump built in BUILD_DIR (default build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build/release}
dump=$build/experiments/tokenize_dump
cache=data/cache
gpt2=$cache/gpt2
[ -x "$dump" ] || { echo "bpe_check: build first: cmake -S . -B $build && cmake --build $build --target tokenize_dump" >&2; exit 2; }
for f in "$gpt2/vocab.json" "$gpt2/merges.txt" "$gpt2/js/Encoder.js" "$cache/go/train.tsv" "$cache/go_rel/train.tsv"; do
  [ -f "$f" ] || { echo "bpe_check: $f missing (run scripts/fetch_data.sh)" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "${1:-}" = "--fixture" ]; then
  node experiments/bpe_check.js fixture "$cache" "$gpt2/js" tests/fixtures/bpe_expected.txt
fi
node experiments/bpe_check.js texts "$cache" "$tmp/texts"
"$dump" -z --no-lower bpe "$gpt2/vocab.json" "$gpt2/merges.txt" < "$tmp/texts" > "$tmp/ours"
node experiments/bpe_check.js encode "$gpt2/js" "$tmp/texts" > "$tmp/theirs"
node experiments/bpe_check.js compare "$tmp/texts" "$tmp/ours" "$tmp/theirs"
