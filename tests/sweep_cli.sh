#!/usr/bin/env bash
# epee-train sweeps end to end on tiny data: a grid from the command line (folders, sweep.yaml/.csv/.md/.svg,
# best_model.h5), a rerun that skips finished trials, a random sweep file, errors before any run, a failing trial
# that does not stop the others, kill -9 of a sweep and its trial then a rerun whose results equal an
# uninterrupted run's, SIGTERM, and --jobs beyond the cores.
# usage: sweep_cli.sh EPEE_TRAIN
set -u
train=$1
source "$(dirname "$0")/cli_lib.sh"
wait_for() { # wait_for SECONDS CONDITION...: polls every 20 ms
  local until=$((SECONDS + $1))
  shift
  while [ $SECONDS -lt $until ]; do "$@" && return 0; sleep 0.02; done
  return 1
}
{ printf 'text\tlabel\n'
  for i in $(seq 1 40); do printf 'the cell membrane protein complex w%d\tCC\nregulation of any binding process w%d\tBP\n' $i $i; done
} > "$tmp/train.tsv"
head -13 "$tmp/train.tsv" > "$tmp/dev.tsv"
{ printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n'; tr ' \t' '\n\n' < "$tmp/train.tsv" | sort -u | grep -v '^$'; } > "$tmp/vocab.txt"
cat > "$tmp/base.yaml" <<YAML
model: {hidden: 16, layers: 3, heads: 2, intermediate: 32, max_position: 32}
tokenizer: {vocab: $tmp/vocab.txt, max_length: 16}
data: {train: $tmp/train.tsv, dev: $tmp/dev.tsv, test: $tmp/dev.tsv}
train: {max_steps: 12, eval_every: 6, batch_size: 8, lr: 1.0e-3}
run: {dir: $tmp/grid, threads: 1}
YAML
no_tmp() { ! find "$1" -name '*.tmp.*' | grep -q .; }

# ---- a grid from the command line, then the same command again
"$train" "$tmp/base.yaml" --sweep train.lr=1e-3,3e-3 train.loss_weights=asc,desc train.warmup=0.1 > "$tmp/log" 2>&1
check "grid sweep runs" [ $? -eq 0 ]
check "one folder per trial, named by its overrides" [ -f "$tmp/grid/train.lr=3e-3,train.loss_weights=desc/model.h5" ]
check "sweep.yaml lists the expanded trials" [ "$(grep -c '^- trial:' "$tmp/grid/sweep.yaml")" -eq 4 ]
check "sweep.csv has a row per trial" [ "$(grep -c ',done,' "$tmp/grid/sweep.csv")" -eq 4 ]
check "sweep.md and sweep.svg written" grep -q "Pareto front" "$tmp/grid/sweep.svg"
check "sweep.md table" grep -q '^| 1 .*| 1e-3 | asc | done |' "$tmp/grid/sweep.md"
check "best_model.h5 links a trial's model" [ -L "$tmp/grid/best_model.h5" -a -f "$tmp/grid/best_model.h5" ]
check "no temp file left" no_tmp "$tmp/grid"
touch "$tmp/mark"
"$train" "$tmp/base.yaml" --sweep train.lr=1e-3,3e-3 train.loss_weights=asc,desc train.warmup=0.1 > "$tmp/log" 2>&1
check "rerun exits 0" [ $? -eq 0 ]
check "rerun skips the finished trials" grep -q "4 finished (skipped), 0 to resume, 0 to start" "$tmp/log"
check "rerun leaves their models alone" [ -z "$(find "$tmp/grid" -name model.h5 -newer "$tmp/mark")" ]

# ---- a random sweep file, best = fastest within 1% of the most accurate
cat > "$tmp/random.yaml" <<YAML
config: $tmp/base.yaml
dir: $tmp/random
method: random
trials: 3
seed: 11
parameters:
  train.lr: {loguniform: [1.0e-4, 1.0e-2]}
  model.layers: {range: [2, 5]}
YAML
"$train" --sweep-file "$tmp/random.yaml" --sweep-best fastest-within=1% > "$tmp/log" 2>&1
check "random sweep file runs" [ $? -eq 0 ]
check "its trials drawn from the seed" [ "$(grep -c '^- trial:' "$tmp/random/sweep.yaml")" -eq 3 ]
check "best by fastest-within" grep -q "Best by the fastest (wall-clock) within 0.01" "$tmp/random/sweep.md"

# ---- errors before any run: nothing created
expect "bad value of a later trial" 1 "--sweep argument 'train.lr=1e-3,abc': override 'train.lr=abc': train.lr: expected float" -- \
  "$train" "$tmp/base.yaml" --sweep train.lr=1e-3,abc run.dir="$tmp/bad"
check "nothing created for it" [ ! -e "$tmp/bad" ]
printf 'config: %s\ndir: %s/bad\nparameters:\n  model.layers: [2, 3,\n    0]\n' "$tmp/base.yaml" "$tmp" > "$tmp/bad.yaml"
expect "sweep file value at line:col" 1 "bad.yaml:5:5: override 'model.layers=0': model.layers: must be in" -- \
  "$train" --sweep-file "$tmp/bad.yaml"
check "nothing created for it either" [ ! -e "$tmp/bad" ]
expect "--jobs beyond the cores" 1 "--jobs 64 x run.threads 1 = 64 threads, over the" -- \
  "$train" "$tmp/base.yaml" --sweep train.lr=1e-3,3e-3 run.dir="$tmp/jobs" --jobs 64
expect "unknown rule" 1 "--sweep-best 'fast'" -- "$train" "$tmp/base.yaml" --sweep train.lr=1e-3,3e-3 --sweep-best fast

# ---- a failing trial does not stop the others; the sweep exits 1
"$train" "$tmp/base.yaml" --sweep data.train="$tmp/none.tsv,$tmp/train.tsv" run.dir="$tmp/fails" > "$tmp/log" 2>&1
check "a failed trial: exit 1" [ $? -eq 1 ]
check "the other trial finished" [ "$(grep -c ',done,' "$tmp/fails/sweep.csv")" -eq 1 ]
check "the failure recorded with its error" grep -q "failed,.*none.tsv: cannot read it" "$tmp/fails/sweep.csv"
check "and said" grep -q "FAILED: data.train: $tmp/none.tsv: cannot read it" "$tmp/log"

# ---- kill -9 of the sweep and its running trial, then the same command: the resumed trial's results equal an
# uninterrupted run's
long=(train.max_steps=3000 train.eval_every=100 run.dir="$tmp/killed")
"$train" "$tmp/base.yaml" --sweep train.lr=1e-3,2e-3 "${long[@]}" > "$tmp/log" 2>&1 &
sweep_pid=$!
trial="$tmp/killed/train.lr=1e-3"
wait_for 300 grep -q '"step":300,"eval"' "$trial/metrics.jsonl" 2>/dev/null
trial_pid=$(tr -dc 0-9 < "$trial/.lock")
if [ -z "${GOMP_SPINCOUNT:-}${OMP_WAIT_POLICY:-}" ]; then # the CLIs' OpenMP default (core/machine.h)
  check "a trial runs with GOMP_SPINCOUNT=10000" grep -qz "^GOMP_SPINCOUNT=10000$" "/proc/$trial_pid/environ"
else
  echo "SKIP the GOMP_SPINCOUNT check: this shell sets GOMP_SPINCOUNT or OMP_WAIT_POLICY itself"
fi
kill -9 "$trial_pid" "$sweep_pid" 2>/dev/null
wait "$sweep_pid" 2>/dev/null
check "killed mid-trial (before its end)" [ ! -f "$trial/results.json" ]
"$train" "$tmp/base.yaml" --sweep train.lr=1e-3,2e-3 "${long[@]}" > "$tmp/log" 2>&1
check "rerun after kill -9 exits 0" [ $? -eq 0 ]
check "it resumed the killed trial" grep -q "1 to resume, 1 to start" "$tmp/log"
"$train" "$tmp/base.yaml" train.lr=1e-3 train.max_steps=3000 train.eval_every=100 run.dir="$tmp/whole" > /dev/null 2>&1
check "resumed summary.json = uninterrupted" cmp -s "$tmp/whole/summary.json" "$trial/summary.json"
check "resumed dev evaluations = uninterrupted" cmp -s <(grep '"eval"' "$tmp/whole/metrics.jsonl") <(grep '"eval"' "$trial/metrics.jsonl")

# ---- SIGTERM: running trials save a checkpoint, the sweep exits 128 + 15; the rerun finishes them
"$train" "$tmp/base.yaml" --sweep train.lr=1e-3,2e-3 train.max_steps=3000 train.eval_every=100 run.dir="$tmp/term" --jobs 2 > "$tmp/log" 2>&1 &
sweep_pid=$!
wait_for 300 grep -q '"step":200,"eval"' "$tmp/term/train.lr=2e-3/metrics.jsonl" 2>/dev/null
kill -TERM "$sweep_pid"
wait "$sweep_pid"
check "SIGTERM: exit 143" [ $? -eq 143 ]
check "trials recorded as interrupted" [ "$(grep -c interrupted "$tmp/term/sweep.csv")" -eq 2 ]
"$train" "$tmp/base.yaml" --sweep train.lr=1e-3,2e-3 train.max_steps=3000 train.eval_every=100 run.dir="$tmp/term" --jobs 2 > "$tmp/log" 2>&1
check "the rerun exits 0" [ $? -eq 0 ]
check "it resumed both" grep -q "2 to resume, 0 to start" "$tmp/log"

# ---- kill -9 of the sweep alone: its running trial is told (SIGTERM) and stops with a checkpoint
"$train" "$tmp/base.yaml" --sweep train.lr=1e-3,2e-3 train.max_steps=3000 train.eval_every=100 run.dir="$tmp/orphan" > "$tmp/log" 2>&1 &
sweep_pid=$!
trial="$tmp/orphan/train.lr=1e-3"
wait_for 300 grep -q '"step":200,"eval"' "$trial/metrics.jsonl" 2>/dev/null
kill -9 "$sweep_pid"
wait "$sweep_pid" 2>/dev/null
check "the orphaned trial stopped" wait_for 60 flock -n "$trial/.lock" true
check "with a checkpoint" [ -f "$trial/checkpoint.h5" ]
"$train" "$tmp/base.yaml" --sweep train.lr=1e-3,2e-3 train.max_steps=3000 train.eval_every=100 run.dir="$tmp/orphan" > "$tmp/log" 2>&1
check "and the rerun resumed it" grep -q "1 to resume, 1 to start" "$tmp/log"
finish
