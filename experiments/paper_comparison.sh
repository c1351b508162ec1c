#!/usr/bin/env bash
# The paper's comparison (no exit / entropy / patience / EPEE, plus PCEE), backbone x task: BERT, ALBERT and
# GPT-2 on the real tasks this machine can fetch, GO definitions -> ontology (classification,
# configs/<arch>_go.yaml) and GO term pairs -> relation (relation classification, configs/<arch>_go_rel.yaml),
# and ViT on images (configs/vit_mnist.yaml, the MNIST stand-in for MedMNIST). Each policy at its own setting chosen on dev, judged on
# test through the engine (results.json of each run). Trains a task only when its run folder has no
# results.json yet (FORCE=1 retrains), then prints one table and writes experiments/out/paper_comparison.md.
# Unlike the reference code, speed-up is also measured in wall-clock time, at batch 1 and batched.
# usage: experiments/paper_comparison.sh [CONFIG.yaml ...]   (default: the seven configs, ~1.5 hours on 2 idle cores)
set -euo pipefail
cd "$(dirname "$0")/.."
configs=("$@")
[ ${#configs[@]} -gt 0 ] || for a in bert albert gpt2; do configs+=(configs/${a}_go.yaml configs/${a}_go_rel.yaml); done
[ $# -gt 0 ] || configs+=(configs/vit_mnist.yaml)
scripts/setup.sh
scripts/fetch_data.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build/release -j"$(nproc)" --target epee-train > /dev/null
runs=()
for c in "${configs[@]}"; do
  dir=$(sed -n 's/^ *dir: *\([^ #]*\).*/\1/p' "$c" | head -1)
  [ -n "$dir" ] || { echo "$c: no run.dir" >&2; exit 1; }
  if [ "${FORCE:-0}" = 1 ] || [ ! -f "$dir/results.json" ]; then
    build/release/train/epee-train --overwrite "$c"
  else
    echo "$c: using $dir/results.json (FORCE=1 retrains)"
  fi
  runs+=("$c=$dir")
done
mkdir -p experiments/out
python3 - "${runs[@]}" > experiments/out/paper_comparison.md.tmp <<'EOF'
import json, sys
print("| backbone | task (config) | policy | tau | p | test acc | test macro-F1 | mean exit layer | layer speed-up "
      "| wall speed-up b=1 | wall speed-up batched |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for arg in sys.argv[1:]:
    config, run = arg.split("=", 1)
    r = json.load(open(f"{run}/results.json"))
    arch = json.load(open(f"{run}/summary.json")).get("arch", "?")
    for i, (name, p) in enumerate(r["policies"].items()):
        t = p["test"]
        batched = next(v for k, v in t.items() if k.startswith("wall_speedup_batch") and k != "wall_speedup_batch1")
        first = f"| {arch} | {config}" if i == 0 else "| |"
        print(f"{first} | {name} | {p['tau']:g} | {p['patience']} | {100 * t['accuracy']:.2f} | "
              f"{100 * t['macro_f1']:.2f} | {t['mean_exit_layer']:.2f} | {t['layer_speedup']:.2f}x | "
              f"{t['wall_speedup_batch1']:.2f}x | {batched:.2f}x |")
EOF
mv experiments/out/paper_comparison.md.tmp experiments/out/paper_comparison.md
cat experiments/out/paper_comparison.md
echo "(written to experiments/out/paper_comparison.md; per-task plots: <run dir>/calibration.svg)"
