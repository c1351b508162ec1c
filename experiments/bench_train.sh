#!/usr/bin/env bash
# Training throughput, EPEE-C beside PyTorch eager fp32 in the same run, for every backbone (bert, albert, gpt2,
# vit; ARCHS="..." picks) on two shapes: the default config (6 x 256, 4 heads, sequence 64, batch 32) and BERT-base
# (12 x 768, 12 heads, sequence 128, batch 8; ALBERT with E 128 and one shared layer, as albert-base). ViT instead:
# configs/vit_mnist.yaml's shape (6 x 128, 28x28 grey in 7x7 patches, batch 64) and ViT-Base/16 (12 x 768, 224x224
# RGB, 197 tokens, batch 8), plus ViT-Base/16's batch-1 full-depth inference latency (no tape, eval mode).
# Both sides do the same work: no dropout (the twins have none), the same multi-exit loss, AdamW.
# Needs a Release build (build/release) and, for the baseline, Debian's python3-torch with libopenblas0-pthread
# (developer machine; without OpenBLAS, Debian's torch runs on the reference BLAS, ~7x slower).
# Never run it beside another heavy process: two OpenMP jobs on 2 cores make both figures noise.
# AVX2 on an AVX-512 machine (both sides): BUILD_DIR=build/avx2 (cmake -DEPEE_ISA=x86-64-v3) with
# ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-2}
archs=${ARCHS:-bert albert gpt2 vit}
build=${BUILD_DIR:-build/release}
bin=$build/experiments/bench_train
[ -x "$bin" ] || { echo "build first: cmake -S . -B $build && cmake --build $build --target bench_train"; exit 1; }
run() {
  OMP_NUM_THREADS=$threads "$bin" "$@"
  if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    OPENBLAS_NUM_THREADS=$threads /usr/bin/python3 experiments/bench_train_torch.py --threads "$threads" "$@"
  else
    echo "pytorch  (skipped: /usr/bin/python3 has no torch; apt-get install python3-torch)"
  fi
}
for arch in $archs; do
  if [ "$arch" = vit ]; then
    echo "== vit, configs/vit_mnist.yaml shape =="
    run --arch vit --layers 6 --hidden 128 --heads 4 --intermediate 256 --image 28 --patch 7 --channels 1 \
      --batch 64 --steps 10 --labels 10
    echo "== vit, ViT-Base/16 shape =="
    run --arch vit --layers 12 --hidden 768 --heads 12 --intermediate 3072 --image 224 --patch 16 --channels 3 \
      --batch 8 --steps 6
    echo "== vit, ViT-Base/16 batch-1 inference =="
    run --arch vit --layers 12 --hidden 768 --heads 12 --intermediate 3072 --image 224 --patch 16 --channels 3 \
      --batch 1 --steps 20 --infer 1
    continue
  fi
  echo "== $arch, default config shape =="
  run --arch "$arch" --layers 6 --hidden 256 --heads 4 --intermediate 1024 --seq 64 --batch 32 --steps 10
  echo "== $arch, BERT-base shape =="
  run --arch "$arch" --layers 12 --hidden 768 --heads 12 --intermediate 3072 --seq 128 --batch 8 --steps 6
done
