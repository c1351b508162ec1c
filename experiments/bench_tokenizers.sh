#!/usr/bin/env bash
# Tokenizer throughput on one thread (experiments/bench_tokenizers.c): npm gpt-3-encoder's Encoder.js timed by node
# on the same GO train definitions (median of 5 passes; its word cache is warm after the first), then ours, with
# the ratio. Needs the data (scripts/fetch_data.sh) and bench_tokenizers built in BUILD_DIR (default build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build/release}
bin=$build/experiments/bench_tokenizers
[ -x "$bin" ] || { echo "build first: cmake -S . -B $build && cmake --build $build --target bench_tokenizers" >&2; exit 2; }
[ -f data/cache/gpt2/js/Encoder.js ] || { echo "data/cache/gpt2/js/Encoder.js missing (run scripts/fetch_data.sh)" >&2; exit 2; }
js=$(node - data/cache/go/train.tsv "$PWD/data/cache/gpt2/js/Encoder.js" <<'JS'
const fs = require('fs');
const [file, encoder] = process.argv.slice(2);
const E = require(encoder);
// the text column of every row after the header, as bench_tokenizers.c takes it
const texts = fs.readFileSync(file, 'utf8').split('\n').slice(1).filter(l => l.length).map(l => l.split('\t')[0]);
const bytes = texts.reduce((a, t) => a + Buffer.byteLength(t, 'utf8'), 0);
const secs = [];
for (let r = 0; r < 5; r++) {
  const t0 = process.hrtime.bigint();
  for (const t of texts) E.encode(t);
  secs.push(Number(process.hrtime.bigint() - t0) / 1e9);
}
secs.sort((a, b) => a - b);
console.log((bytes / 1e6 / secs[2]).toFixed(3));
JS
)
echo "node $(node --version): Encoder.js $js MB/s"
"$bin" --js "$js"
