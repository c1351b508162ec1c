#!/usr/bin/env bash
# epee-train from a HuggingFace folder, end to end on tiny data: model.init (the twin's tests/fixtures/hf/bert),
# the load report, export.hf, --export-hf (the same bytes), and a second run from the export with its exits;
# then the model.init errors, one line each.
# usage: hf_cli.sh EPEE_TRAIN
set -u
train=$1
source "$(dirname "$0")/cli_lib.sh"
{ printf 'text\tlabel\n'
  for i in $(seq 1 24); do printf 'the cell membrane protein complex\tCC\nregulation of any binding process\tBP\n'; done
} > "$tmp/train.tsv"
head -9 "$tmp/train.tsv" > "$tmp/dev.tsv"
cat > "$tmp/c.yaml" <<YAML
model:
  init: tests/fixtures/hf/bert
data: {train: $tmp/train.tsv, dev: $tmp/dev.tsv, test: $tmp/dev.tsv}
tokenizer: {max_length: 16}
train: {max_steps: 6, eval_every: 3, batch_size: 8, lr: 1.0e-3}
export: {hf: hf}
run: {dir: $tmp/run, threads: 1}
YAML
"$train" "$tmp/c.yaml" > "$tmp/log" 2>&1
check "fine-tune from the folder" [ $? -eq 0 ]
check "load report printed" grep -q "init: tests/fixtures/hf/bert/model.safetensors: 55 tensors loaded, 8 in the file not used, 6 parameters newly initialised" "$tmp/log"
check "load report saved" grep -q '"cls.predictions.bias"' "$tmp/run/init_report.json"
check "config.json set model.*" grep -qE '^  hidden: 16' "$tmp/run/config.yaml"
check "tokenizer from the folder" grep -qE 'vocab: .?tests/fixtures/hf/bert/vocab.txt' "$tmp/run/config.yaml"
check "export.hf written" [ -f "$tmp/run/hf/model.safetensors" -a -f "$tmp/run/hf/vocab.txt" -a -f "$tmp/run/hf/tokenizer_config.json" ]
"$train" --export-hf "$tmp/run" "$tmp/again" > /dev/null 2>&1
check "--export-hf writes the same weights" cmp -s "$tmp/run/hf/model.safetensors" "$tmp/again/model.safetensors"
"$train" "$tmp/c.yaml" model.init="$tmp/run/hf" model.init_exits=true run.dir="$tmp/run2" export.hf='""' > "$tmp/log2" 2>&1
check "a run from the export, exits included" grep -q "0 in the file not used, 0 parameters newly initialised" "$tmp/log2"
expect "explicit key disagrees" 1 "model.hidden is given in the config but tests/fixtures/hf/bert/config.json (hidden) says 16" -- \
  "$train" "$tmp/c.yaml" model.hidden=32 run.dir="$tmp/r3"
expect "no such folder" 1 "model.init: $tmp/none: expected a HuggingFace model folder" -- \
  "$train" "$tmp/c.yaml" model.init="$tmp/none" run.dir="$tmp/r4"
mkdir -p "$tmp/empty"
expect "folder without weights" 1 "$tmp/empty: no model.safetensors" -- "$train" "$tmp/c.yaml" model.init="$tmp/empty" run.dir="$tmp/r5"
expect "another vocabulary given" 1 "tokenizer.vocab is given in the config but model.init (its own vocab.txt" -- \
  "$train" "$tmp/c.yaml" tokenizer.vocab="$tmp/train.tsv" run.dir="$tmp/r6"
finish
