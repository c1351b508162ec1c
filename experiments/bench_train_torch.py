"""PyTorch eager fp32 baseline for experiments/bench_train.c: the same multi-exit backbone (the twins in
tests/twin/<arch>_twin.py, HF semantics and names), one training step = forward of all exits, weighted
loss, backward, AdamW; median over steps. With --infer 1: the full-depth forward under torch.no_grad() in eval
mode, the last exit only (what bench_train --infer times). Developer machine only (Debian python3-torch).

    /usr/bin/python3 experiments/bench_train_torch.py --arch gpt2 --layers 12 --hidden 768 --heads 12 \
        --intermediate 3072 --seq 128 --batch 8 --steps 10 --threads 2
The twins have no dropout layers; bench_train runs with dropout 0 too, so both do the same work."""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "twin"))
from albert_twin import MultiExitAlbert  # noqa: E402
from bert_twin import MultiExitBert, blas_in_use, weighted_loss  # noqa: E402
from gpt2_twin import MultiExitGPT2  # noqa: E402
from vit_twin import MultiExitViT  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", choices=["bert", "albert", "gpt2", "vit"], default="bert")
    for k, v in dict(layers=12, hidden=768, heads=12, intermediate=3072, seq=128, batch=8, steps=10, vocab=30522,
                     labels=3, threads=2, embedding=128, groups=1, image=224, patch=16, channels=3,
                     infer=0).items():
        p.add_argument("--" + k, type=int, default=v)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    k = dict(arch=a.arch, vocab=a.vocab, hidden=a.hidden, layers=a.layers, heads=a.heads,
             intermediate=a.intermediate, max_position=512, type_vocab=2, num_labels=a.labels,
             layer_norm_eps=1e-12, embedding_size=a.embedding, hidden_groups=a.groups, exit_norm=True,
             image_size=a.image, patch_size=a.patch, channels=a.channels)
    model = {"bert": MultiExitBert, "albert": MultiExitAlbert, "gpt2": MultiExitGPT2, "vit": MultiExitViT}[a.arch](k)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
    if a.arch == "vit":
        a.seq = (a.image // a.patch) ** 2 + 1
        inputs = (torch.randn(a.batch, a.channels, a.image, a.image),)
    else:
        ids = torch.randint(0, a.vocab, (a.batch, a.seq))
        inputs = (ids, torch.zeros_like(ids), torch.ones(a.batch, a.seq))
    labels = torch.arange(a.batch) % a.labels
    w = torch.arange(1, a.layers + 1, dtype=torch.float32)
    times = []
    if a.infer:
        model.eval()
    for s in range(a.steps + 2):
        t0 = time.perf_counter()
        if a.infer:
            with torch.no_grad():
                model(*inputs)[-1].argmax(-1)
        else:
            opt.zero_grad()
            loss = weighted_loss(model(*inputs), labels, w)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        if s >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    D, F, L, T = a.hidden, a.intermediate, a.layers, a.seq
    flop_tok = 2 * L * (4 * D * D + 2 * D * F) + 4 * L * T * D
    gflops = (1 if a.infer else 3) * flop_tok * a.batch * T / med / 1e9
    what = "infer " if a.infer else "train "
    print(f"pytorch  {what} {a.arch} L={L} D={D} H={a.heads} F={F} T={T} B={a.batch} threads={a.threads}: median "
          f"{'forward' if a.infer else 'step'} {1e3 * med:.1f} ms, {a.batch / med:.1f} examples/s, {gflops:.1f} GFLOP/s (torch {torch.__version__}, "
          f"BLAS {blas_in_use()})")


if __name__ == "__main__":
    main()
