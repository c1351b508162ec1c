"""Tiny HuggingFace model folders, one per backbone, written from the PyTorch twins: what `model.init` reads
(tests/test_hf.c). Each folder is laid out as transformers' save_pretrained lays one out, in a different variant
per arch, so that every import path is exercised:

    hf/bert/    BertForPreTraining-like names ("bert." prefix), F32, plus an MLM head key (cls.predictions.bias)
                and the I64 buffer bert.embeddings.position_ids (both unused); vocab.txt + tokenizer_config.json
    hf/albert/  AlbertModel names (no prefix), F16; spiece.model (tests/fixtures/spm_expected.tiny.model)
    hf/gpt2/    GPT2LMHeadModel names ("transformer." prefix), BF16, plus the tied lm_head.weight and the BOOL
                causal-mask buffers h.<i>.attn.bias (unused); vocab.json + merges.txt of 256 bytes + 8 merges
    hf/vit/     ViTModel names (no prefix), F32, plus the pooler (pooler.dense.*, unused);
                preprocessor_config.json
Every folder also holds the exits (classifiers.<i>.*), as an EPEE export does, so that the C side can compare
logits. Beside each folder, hf/<arch>_expected.h5 holds the twin's inputs and its float32 logits [L, B, C] computed
from the weights as stored (F16/BF16 rounded). The twin then loads the folder back by name and must reproduce
them (asserted), so the files are what the twin means.

Developer machine only: /usr/bin/python3 with Debian's python3-torch, python3-h5py.
"""
import json
import os
import struct
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import B, FIXTURES, SEED, T, init_weights, make_image_inputs, make_inputs  # noqa: E402
from albert_twin import MultiExitAlbert  # noqa: E402
from bert_twin import MultiExitBert  # noqa: E402
from gpt2_twin import MultiExitGPT2  # noqa: E402
from vit_twin import MultiExitViT  # noqa: E402

OUT = os.path.join(FIXTURES, "hf")
DTYPES = {"F32": (torch.float32, "<f4"), "F16": (torch.float16, "<f2"), "BF16": (torch.bfloat16, None),
          "I64": (torch.int64, "<i8"), "BOOL": (torch.bool, "|b1")}


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, torch tensor, dtype name), written in that order, 8-byte aligned header."""
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name, t, dt in tensors:
        t = t.detach().contiguous().to(DTYPES[dt][0])
        raw = t.view(torch.int16).numpy().astype("<i2").tobytes() if dt == "BF16" else \
            t.numpy().astype(DTYPES[dt][1]).tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    """name -> float32 tensor (float dtypes only), the way transformers would load the file."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header, base, out = json.loads(data[8:8 + n]), 8 + n, {}
    for name, v in header.items():
        if name == "__metadata__" or v["dtype"] not in ("F32", "F16", "BF16"):
            continue
        raw = data[base + v["data_offsets"][0]:base + v["data_offsets"][1]]
        if v["dtype"] == "BF16":
            t = torch.from_numpy(np.frombuffer(raw, "<i2").copy()).view(torch.bfloat16)
        else:
            t = torch.from_numpy(np.frombuffer(raw, DTYPES[v["dtype"]][1]).copy())
        out[name] = t.reshape(v["shape"]).float()
    return out


def bytes_to_unicode():
    """GPT-2's byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


MERGES = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d"]


def gpt2_tokenizer(d):
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    for i, m in enumerate(MERGES):
        vocab[m.replace(" ", "")] = 256 + i
    vocab["<|endoftext|>"] = 256 + len(MERGES)
    with open(os.path.join(d, "vocab.json"), "w") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    return len(vocab)


BERT_WORDS = ["the", "a", "of", "cell", "protein", "binding", "process", "activity", "membrane", "any",
              "regulation", "complex", "##s", "##ing", "to", "in", "that", "is", "by", "with", ",", ".", "-", "(", ")"]


def bert_tokenizer(d, vocab):
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + BERT_WORDS
    words += [f"w{i}" for i in range(vocab - len(words))]
    with open(os.path.join(d, "vocab.txt"), "w") as f:
        f.write("\n".join(words) + "\n")
    return len(words)


# Tiny configs: the twins' shapes, each vocabulary sized to its tokenizer.
CASES = {
    "bert": dict(twin=MultiExitBert, dtype="F32", prefix=True,
                 cfg=dict(arch="bert", vocab=40, hidden=16, layers=3, heads=2, intermediate=24, max_position=20,
                          type_vocab=2, num_labels=3, layer_norm_eps=1e-12),
                 hf=lambda k: dict(architectures=["BertForPreTraining"], model_type="bert", vocab_size=k["vocab"],
                                   hidden_size=k["hidden"], num_hidden_layers=k["layers"],
                                   num_attention_heads=k["heads"], intermediate_size=k["intermediate"],
                                   max_position_embeddings=k["max_position"], type_vocab_size=k["type_vocab"],
                                   layer_norm_eps=k["layer_norm_eps"], hidden_act="gelu", hidden_dropout_prob=0.1,
                                   attention_probs_dropout_prob=0.1, initializer_range=0.02,
                                   position_embedding_type="absolute", pad_token_id=0)),
    "albert": dict(twin=MultiExitAlbert, dtype="F16", prefix=False,
                   cfg=dict(arch="albert", vocab=120, hidden=16, layers=3, heads=2, intermediate=24,
                            max_position=20, num_labels=3, layer_norm_eps=1e-12, type_vocab=2, embedding_size=8,
                            hidden_groups=1),
                   hf=lambda k: dict(architectures=["AlbertModel"], model_type="albert", vocab_size=k["vocab"],
                                     embedding_size=k["embedding_size"], hidden_size=k["hidden"],
                                     num_hidden_layers=k["layers"], num_hidden_groups=k["hidden_groups"],
                                     num_attention_heads=k["heads"], intermediate_size=k["intermediate"],
                                     inner_group_num=1, hidden_act="gelu_new", max_position_embeddings=k["max_position"],
                                     type_vocab_size=k["type_vocab"], layer_norm_eps=k["layer_norm_eps"],
                                     hidden_dropout_prob=0, attention_probs_dropout_prob=0, initializer_range=0.02)),
    "gpt2": dict(twin=MultiExitGPT2, dtype="BF16", prefix=True,
                 cfg=dict(arch="gpt2", vocab=256 + len(MERGES) + 1, hidden=16, layers=3, heads=2, intermediate=24,
                          max_position=20, num_labels=3, layer_norm_eps=1e-5, exit_norm=True),
                 hf=lambda k: dict(architectures=["GPT2LMHeadModel"], model_type="gpt2", vocab_size=k["vocab"],
                                   n_embd=k["hidden"], n_layer=k["layers"], n_head=k["heads"],
                                   n_inner=k["intermediate"], n_positions=k["max_position"], n_ctx=k["max_position"],
                                   layer_norm_epsilon=k["layer_norm_eps"], activation_function="gelu_new",
                                   resid_pdrop=0.1, attn_pdrop=0.1, embd_pdrop=0.1, initializer_range=0.02,
                                   scale_attn_weights=True, bos_token_id=k["vocab"] - 1,
                                   eos_token_id=k["vocab"] - 1, epee={"exit_norm": True})),
    "vit": dict(twin=MultiExitViT, dtype="F32", prefix=False,
                cfg=dict(arch="vit", hidden=16, layers=3, heads=2, intermediate=32, num_labels=3,
                         layer_norm_eps=1e-12, image_size=8, patch_size=4, channels=3, exit_norm=False),
                hf=lambda k: dict(architectures=["ViTModel"], model_type="vit", hidden_size=k["hidden"],
                                  num_hidden_layers=k["layers"], num_attention_heads=k["heads"],
                                  intermediate_size=k["intermediate"], hidden_act="gelu",
                                  layer_norm_eps=k["layer_norm_eps"], image_size=k["image_size"],
                                  patch_size=k["patch_size"], num_channels=k["channels"], qkv_bias=True,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.02,
                                  epee={"exit_norm": False})),
}
PREFIX = {"bert": "bert.", "albert": "albert.", "gpt2": "transformer.", "vit": "vit."}


def file_name(arch, key, prefixed):
    """The twin's state_dict key (prefixed, as EPEE-C names parameters) as this variant's file stores it."""
    p = PREFIX[arch]
    if key.startswith("classifiers.") or prefixed:
        return key
    return key[len(p):]


def make(arch):
    case = CASES[arch]
    k, dt = case["cfg"], case["dtype"]
    d = os.path.join(OUT, arch)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    model = case["twin"](k)
    g = torch.Generator().manual_seed(SEED)
    init_weights(model, g)
    image = arch == "vit"
    inputs = make_image_inputs(g, k) if image else make_inputs(g, k, token_types=arch != "gpt2")
    # the weights as the file stores them (rounded to F16 / BF16), back in float32 in the twin
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(DTYPES[dt][0]).float())
    sd = model.state_dict()
    tensors = [(file_name(arch, n, case["prefix"]), t, dt) for n, t in sd.items()]
    if arch == "bert":
        tensors += [("cls.predictions.bias", torch.zeros(k["vocab"]), "F32"),
                    ("bert.embeddings.position_ids", torch.arange(k["max_position"])[None], "I64")]
    if arch == "gpt2":
        tensors += [("lm_head.weight", sd["transformer.wte.weight"], dt)]
        P = k["max_position"]
        tensors += [(f"transformer.h.{i}.attn.bias", torch.tril(torch.ones(P, P, dtype=torch.bool))[None, None],
                     "BOOL") for i in range(k["layers"])]
    if arch == "vit":
        tensors += [("pooler.dense.weight", torch.zeros(k["hidden"], k["hidden"]), "F32"),
                    ("pooler.dense.bias", torch.zeros(k["hidden"]), "F32")]
    write_safetensors(os.path.join(d, "model.safetensors"), tensors, {"format": "pt"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(case["hf"](k), f, indent=2)
    if arch == "bert":
        assert bert_tokenizer(d, k["vocab"]) == k["vocab"]
        json.dump({"do_lower_case": True, "tokenizer_class": "BertTokenizer"}, open(os.path.join(d, "tokenizer_config.json"), "w"))
    elif arch == "albert":
        with open(os.path.join(FIXTURES, "spm_expected.tiny.model"), "rb") as s, open(os.path.join(d, "spiece.model"), "wb") as o:
            o.write(s.read())
        json.dump({"do_lower_case": True, "tokenizer_class": "AlbertTokenizer"}, open(os.path.join(d, "tokenizer_config.json"), "w"))
    elif arch == "gpt2":
        assert gpt2_tokenizer(d) == k["vocab"]
    else:
        json.dump({"image_processor_type": "ViTImageProcessor", "do_normalize": True, "image_mean": [0.5, 0.5, 0.5],
                   "image_std": [0.5, 0.5, 0.5], "do_resize": True, "size": {"height": 8, "width": 8}},
                  open(os.path.join(d, "preprocessor_config.json"), "w"))

    with torch.no_grad():
        logits = torch.stack(model(*inputs[:-1]))
    # the twin reads the folder back by name (prefix restored) and must reproduce the logits exactly
    back = read_safetensors(os.path.join(d, "model.safetensors"))
    fresh = case["twin"](k)
    fresh.load_state_dict({n: back[file_name(arch, n, case["prefix"])] for n in fresh.state_dict()})
    with torch.no_grad():
        again = torch.stack(fresh(*inputs[:-1]))
    assert torch.equal(again, logits), "the twin does not reproduce its logits from the folder"
    with h5py.File(os.path.join(OUT, f"{arch}_expected.h5"), "w") as f:
        if image:
            f["inputs/pixels"] = inputs[0].numpy()
        else:
            f["inputs/ids"] = inputs[0].to(torch.int32).numpy()
            f["inputs/type_ids"] = inputs[1].to(torch.int32).numpy()
            f["inputs/mask"] = inputs[2].numpy()
        f["inputs/labels"] = inputs[-1].to(torch.int32).numpy()
        f["logits"] = logits.numpy()
    size = sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d))
    print(f"hf/{arch}: {dt}, {len(tensors)} tensors, {size} bytes; logits {tuple(logits.shape)}")


if __name__ == "__main__":
    for a in CASES:
        make(a)
