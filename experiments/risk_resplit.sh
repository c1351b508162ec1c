#!/usr/bin/env bash
# Selection rules under re-splitting (issue 14): for each finished run, the settings fastest_within and risk choose
# on dev, their dev and test risk, and over SPLITS random re-splits of dev + test (same sizes) how often each
# rule's test risk exceeded calibrate.epsilon. Needs RUN/logits.h5 (written by epee-train; for an older run,
# `epee-train --calibrate RUN` writes it). The grid is the current default (tau up to 1) unless OVERRIDES says
# otherwise; any calibrate.* key can be overridden (e.g. OVERRIDES="calibrate.epsilon=0.01 calibrate.risk=accuracy_drop").
# usage: experiments/risk_resplit.sh [RUN_DIR ...]   (default: runs/<arch>_<task> for the GO configs that exist)
# Writes experiments/out/risk_resplit.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/release}
SPLITS=${SPLITS:-50}
OVERRIDES=${OVERRIDES:-"calibrate.tau=[0.001,0.005,0.01,0.03,0.05,0.1,0.2,0.3,0.5,0.7,1]"}
runs=("$@")
if [ ${#runs[@]} -eq 0 ]; then
  for t in go go_rel; do for a in bert albert gpt2; do [ -f runs/${a}_$t/config.yaml ] && runs+=(runs/${a}_$t); done; done
fi
[ ${#runs[@]} -gt 0 ] || { echo "risk_resplit.sh: no run folder (train one: epee-train configs/bert_go.yaml)" >&2; exit 1; }
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target risk_resplit epee-train > /dev/null
mkdir -p experiments/out
out=experiments/out/risk_resplit.md
: > "$out.tmp"
for r in "${runs[@]}"; do
  [ -f "$r/logits.h5" ] || "$BUILD_DIR/train/epee-train" --calibrate "$r" > "$r/calibrate.log"
  # shellcheck disable=SC2086  # OVERRIDES is a list of words
  "$BUILD_DIR/experiments/risk_resplit" "$r" "$SPLITS" $OVERRIDES >> "$out.tmp"
  echo >> "$out.tmp"
done
mv "$out.tmp" "$out"
cat "$out"
