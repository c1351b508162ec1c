"""Loads an exported model.h5 BY NAME into the PyTorch twin (tests/twin/bert_twin.py) and checks that its
logits equal the C engine's on the same token ids. Developer machine only (Debian python3-torch, h5py).

    build/release/experiments/export_logits runs/bert_go/model.h5 data/cache/go/test.tsv /tmp/engine_logits.h5
    /usr/bin/python3 experiments/check_export.py runs/bert_go/model.h5 /tmp/engine_logits.h5
"""
import json
import os
import sys

import h5py
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "twin"))
from bert_twin import MultiExitBert  # noqa: E402


def main(model_path, logits_path):
    with h5py.File(model_path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        state = {k: torch.from_numpy(v[()]) for k, v in f["weights"].items()}
        policy = json.loads(f.attrs["policy"])
    model = MultiExitBert(cfg)
    missing, unexpected = model.load_state_dict(state, strict=True), None
    del missing, unexpected
    model.eval()
    with h5py.File(logits_path, "r") as f:
        ids = torch.from_numpy(f["ids"][()]).long()
        types = torch.from_numpy(f["type_ids"][()]).long()
        mask = torch.from_numpy(f["mask"][()])
        engine = torch.from_numpy(f["logits"][()])
    with torch.no_grad():
        twin = torch.stack(model(ids, types, mask), dim=1)  # [N, L, C]
    err = ((twin - engine).abs() / engine.abs().clamp(min=1)).max().item()
    same = (twin.argmax(-1) == engine.argmax(-1)).float().mean().item()
    print(f"{model_path}: {len(state)} tensors loaded by name into the PyTorch twin; policy {policy}")
    print(f"max |twin - engine| / max(1, |engine|) over {tuple(engine.shape)} logits: {err:.2e}; "
          f"argmax agreement {100 * same:.1f}%")
    return 0 if err < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
