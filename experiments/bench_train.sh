#!/usr/bin/env bash
# Training throughput, EPEE-C beside PyTorch eager fp32 in the same run, for every backbone (bert, albert, gpt2;
# ARCHS="..." picks) on two shapes: the default config (6 x 256, 4 heads, sequence 64, batch 32) and BERT-base
# (12 x 768, 12 heads, sequence 128, batch 8; ALBERT with E 128 and one shared layer, as albert-base).
# Both sides do the same work: no dropout (the twins have none), the same multi-exit loss, AdamW.
# Needs a Release build (build/release) and, for the baseline, Debian's python3-torch with libopenblas0-pthread
# (developer machine; without OpenBLAS, Debian's torch runs on the reference BLAS, ~7x slower).
# Never run it beside another heavy process: two OpenMP jobs on 2 cores make both figures noise.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-2}
archs=${ARCHS:-bert albert gpt2}
bin=build/release/experiments/bench_train
[ -x "$bin" ] || { echo "build first: cmake -S . -B build/release && cmake --build build/release --target bench_train"; exit 1; }
run() {
  OMP_NUM_THREADS=$threads "$bin" "$@"
  if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    OPENBLAS_NUM_THREADS=$threads /usr/bin/python3 experiments/bench_train_torch.py --threads "$threads" "$@"
  else
    echo "pytorch  (skipped: /usr/bin/python3 has no torch; apt-get install python3-torch)"
  fi
}
for arch in $archs; do
  echo "== $arch, default config shape =="
  run --arch "$arch" --layers 6 --hidden 256 --heads 4 --intermediate 1024 --seq 64 --batch 32 --steps 10
  echo "== $arch, BERT-base shape =="
  run --arch "$arch" --layers 12 --hidden 768 --heads 12 --intermediate 3072 --seq 128 --batch 8 --steps 6
done
