"""Loads an exported HuggingFace folder (export.hf, or epee-train --export-hf) BY NAME into the PyTorch twin of its
arch and checks that its logits equal the C engine's on the same token ids: what AutoModel.from_pretrained(DIR)
plus the exits would compute. Developer machine only (Debian python3-torch, h5py).

    build/release/train/epee-train --export-hf runs/bert_go /tmp/bert_go_hf
    build/release/experiments/export_logits runs/bert_go/model.h5 data/cache/go/test.tsv /tmp/engine_logits.h5
    /usr/bin/python3 experiments/check_hf_export.py /tmp/bert_go_hf /tmp/engine_logits.h5

config.json is read as transformers reads it (BertConfig / AlbertConfig / GPT2Config names); model.safetensors holds
the base model's keys (no "bert." prefix, as BertModel.save_pretrained writes them) and classifiers.<i>.*.
"""
import json
import os
import sys


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "twin"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_export import TWINS, twin_vs_engine  # noqa: E402
from hf_fixtures import PREFIX, read_safetensors  # noqa: E402
KEYS = {"bert": dict(vocab="vocab_size", hidden="hidden_size", layers="num_hidden_layers", heads="num_attention_heads",
                     intermediate="intermediate_size", max_position="max_position_embeddings",
                     type_vocab="type_vocab_size", layer_norm_eps="layer_norm_eps"),
        "gpt2": dict(vocab="vocab_size", hidden="n_embd", layers="n_layer", heads="n_head", intermediate="n_inner",
                     max_position="n_positions", layer_norm_eps="layer_norm_epsilon")}
KEYS["albert"] = dict(KEYS["bert"], embedding_size="embedding_size", hidden_groups="num_hidden_groups")


def main(folder, logits_path):
    c = json.load(open(os.path.join(folder, "config.json")))
    arch = c["model_type"]
    cfg = {k: c[v] for k, v in KEYS[arch].items()}
    cfg.update(arch=arch, num_labels=len(c["id2label"]), **{k: v for k, v in c["epee"].items() if k == "exit_norm"})
    tensors = read_safetensors(os.path.join(folder, "model.safetensors"))
    state = {(k if k.startswith("classifiers.") else PREFIX[arch] + k): v for k, v in tensors.items()}
    print(f"{folder}: {arch} ({c['architectures'][0]}), {len(tensors)} tensors read by name; labels "
          f"{list(c['id2label'].values())}; policy {c['epee']['policy']}")
    return twin_vs_engine(TWINS[arch](cfg), state, logits_path)

if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
