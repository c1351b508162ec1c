"""Loads an exported model.h5 BY NAME into the PyTorch twin of its arch (tests/twin/<arch>_twin.py: bert, albert,
gpt2) and checks that its logits equal the C engine's on the same token ids. Developer machine only (Debian
python3-torch, h5py).

    build/release/experiments/export_logits runs/bert_go/model.h5 data/cache/go/test.tsv /tmp/engine_logits.h5
    /usr/bin/python3 experiments/check_export.py runs/bert_go/model.h5 /tmp/engine_logits.h5

The model file (format_version 3, infer/model_file.h) names its backbone in the "arch" attribute; its
"model_config" holds exactly the fields that arch reads, which are the twin's config keys. Dropout is off
(eval mode; the twins have no dropout layers).
"""
import json
import os
import sys

import h5py
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "twin"))
from albert_twin import MultiExitAlbert  # noqa: E402
from bert_twin import MultiExitBert  # noqa: E402
from gpt2_twin import MultiExitGPT2  # noqa: E402

TWINS = {"bert": MultiExitBert, "albert": MultiExitAlbert, "gpt2": MultiExitGPT2}


def text(attr):
    return attr.decode() if isinstance(attr, bytes) else str(attr)


def main(model_path, logits_path):
    with h5py.File(model_path, "r") as f:
        version = text(f.attrs["format_version"])
        if version != "3":
            print(f"{model_path}: format_version {version}, this script reads version 3")
            return 1
        arch = text(f.attrs["arch"])
        if arch not in TWINS:
            print(f"{model_path}: arch '{arch}' has no twin here (known: {', '.join(TWINS)})")
            return 1
        cfg = json.loads(text(f.attrs["model_config"]))
        cfg["arch"] = arch
        state = {k: torch.from_numpy(v[()]) for k, v in f["weights"].items()}
        policy = json.loads(text(f.attrs["policy"]))
        tokenizer = json.loads(text(f.attrs["tokenizer_config"]))
    print(f"{model_path}: {arch}, {tokenizer['type']} tokenizer; {len(state)} tensors loaded by name into the "
          f"PyTorch twin; policy {policy}")
    return twin_vs_engine(TWINS[arch](cfg), state, logits_path)


def twin_vs_engine(model, state, logits_path):
    """Loads state into the twin by name (strict: none missing, none left over), runs the engine's inputs and
    prints the largest relative logit difference and the argmax agreement. 0 if they agree."""
    model.load_state_dict(state, strict=True)
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
    print(f"max |twin - engine| / max(1, |engine|) over {tuple(engine.shape)} logits: {err:.2e}; "
          f"argmax agreement {100 * same:.1f}%")
    return 0 if err < 1e-4 and same == 1.0 else 1

if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
