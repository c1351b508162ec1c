#!/usr/bin/env bash
# The main job on the built-in default: install what is missing, fetch the real data (Gene Ontology
# definitions + BERT vocab, pinned by sha256), build, train BERT with an exit after every layer,
# calibrate the exit policy on dev, evaluate on test, export runs/<name>/model.h5, then serve the test
# split with epee-infer (early exit, batched) and print its results.
# usage: scripts/run_main.sh [CONFIG.yaml [section.key=value ...]]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/bert_go.yaml}
shift || true
scripts/setup.sh
scripts/fetch_data.sh
echo "building (log: build/release.log)"
scripts/quiet.sh build/release.log cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release
scripts/quiet.sh build/release.log cmake --build build/release -j"$(nproc)" --target epee-train epee-infer
build/release/train/epee-train --overwrite "$config" "$@" # the main job trains afresh each time
# run.dir and data.test as the trainer saw them: the effective config it saved, or overrides
value() { sed -n "s/^ *$1: *\"\{0,1\}\([^\"# ]*\).*/\1/p" "$2" | head -1; }
run_dir=$(value dir "$config")
for a in "$@"; do case "$a" in run.dir=*) run_dir=${a#run.dir=} ;; esac; done
test_file=$(value test "$run_dir/config.yaml")
echo
echo "=== epee-infer on $test_file with the exported model (calibrated EPEE policy, batch 64) ==="
build/release/infer/epee-infer "$run_dir/model.h5" --input "$test_file" --batch 64 --output "$run_dir/test_predictions.jsonl"
