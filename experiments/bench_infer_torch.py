"""PyTorch eager fp32 full-depth batch-1 latency on the same model and the same inputs as epee-infer --bench:
loads model.h5 by name into the twin (tests/twin/bert_twin.py) and times each input alone at its own length.
Developer machine only.

    apt-get install python3-torch python3-h5py libopenblas0-pthread
    build/release/experiments/export_logits runs/bert_go/model.h5 data/cache/go/test.tsv /tmp/inputs.h5 1000
    OPENBLAS_NUM_THREADS=2 /usr/bin/python3 experiments/bench_infer_torch.py runs/bert_go/model.h5 /tmp/inputs.h5 \
        --threads 1

Debian's torch does its GEMMs in the system libblas.so.3: without OpenBLAS installed that is the reference
BLAS and torch is several times slower (p50 109 ms here instead of 12-20 ms), so the line printed names the
BLAS in use. Of the settings tried (torch threads 1 or 2, OpenBLAS threads 1 or 2), the one above was the
fastest for torch at batch 1. --batch B instead times full-depth throughput at batch B (the inputs sorted by length,
so each batch pads little: the most favourable batching for torch), as epee-infer --bench's batch-64 line.
"""
import argparse
import json
import os
import sys
import time

import h5py
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "twin"))
from bert_twin import MultiExitBert, blas_in_use  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("inputs")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=1, help="1: per-input latency; B > 1: throughput at batch B")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    with h5py.File(a.model, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        state = {k: torch.from_numpy(v[()]) for k, v in f["weights"].items()}
    model = MultiExitBert(cfg)
    model.load_state_dict(state, strict=True)
    model.eval()
    with h5py.File(a.inputs, "r") as f:
        ids = torch.from_numpy(f["ids"][()]).long()
        types = torch.from_numpy(f["type_ids"][()]).long()
        mask = torch.from_numpy(f["mask"][()])
    lens = mask.sum(1).long().tolist()
    if a.batch > 1:
        order = sorted(range(len(lens)), key=lambda i: lens[i])
        batches = [order[i:i + a.batch] for i in range(0, len(order), a.batch)]
        with torch.inference_mode():
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                for b in batches:
                    n = max(lens[i] for i in b)
                    model(ids[b, :n], types[b, :n], mask[b, :n])
                runs.append(time.perf_counter() - t0)
        runs.sort()
        print(f"pytorch {torch.__version__} eager fp32, full depth, batch {a.batch}, {len(lens)} inputs, {a.threads} "
              f"threads: {len(lens) / runs[1]:.1f} inputs/s (median of 3 passes; BLAS {blas_in_use()})")
        return
    times = []
    with torch.inference_mode():
        for i in range(min(20, len(lens))):  # warm-up
            model(ids[i:i + 1, :lens[i]], types[i:i + 1, :lens[i]], mask[i:i + 1, :lens[i]])
        for i, n in enumerate(lens):
            t0 = time.perf_counter()
            model(ids[i:i + 1, :n], types[i:i + 1, :n], mask[i:i + 1, :n])
            times.append(1e3 * (time.perf_counter() - t0))
    times.sort()
    q = lambda f: times[int(f * (len(times) - 1))]
    print(f"pytorch {torch.__version__} eager fp32, full depth, batch 1, {len(times)} inputs, {a.threads} threads: "
          f"p50 {q(0.5):.2f} ms  p90 {q(0.9):.2f} ms  p99 {q(0.99):.2f} ms  mean {sum(times) / len(times):.2f} ms "
          f"(BLAS {blas_in_use()})")


if __name__ == "__main__":
    main()
