"""PyTorch twin of EPEE-C's multi-exit BERT (models/bert.c): writes tests/fixtures/bert_tiny.h5, which
tests/test_bert_twin.c compares the C model against (logits of every exit, weighted loss, every gradient).

Regenerate (developer machine only; CI never runs Python, the fixture is committed):

    /usr/bin/python3 tests/twin/bert_twin.py          # Debian python3-torch 1.13 + python3-h5py

The model is plain torch written to HuggingFace BertModel semantics (transformers is not needed):
embeddings = LayerNorm(word + token_type + position); post-LN blocks; attention scores / sqrt(head_dim)
plus the extended mask (1 - mask) * finfo(float32).min; GELU erf; pooler = tanh(dense(h[:, 0])), one
pooler shared by all exits (PABEE/EPEE); exit_i = classifiers.<i>(dropout(pooler(h_i))). The loss is
sum_i w_i CE(z_i, y) / sum_i w_i with w_i = i + 1 ("asc", as PABEE), CE averaged over the batch.
Parameter names are the HF state_dict keys, as in the C model. Dropout is 0, so the run is deterministic.

The fixture is computed in float32, as the C side computes; the float64 rerun only reports the float32
noise floor, so a failing C comparison can be judged against it. The batch, the initialisation (every
parameter N(0, 0.2^2), LayerNorm weights 1 + N(0, 0.2^2)), the loss, the padding check (new ids at padded
positions change no logit) and the file layout are shared with the other twins: tests/twin/common.py.
"""
import math
import os

import torch
from torch import nn

from common import make_fixture, weighted_loss  # noqa: F401 (weighted_loss: for experiments/)

CONFIG = dict(arch="bert", vocab=50, hidden=16, layers=3, heads=2, intermediate=24, max_position=20,
              type_vocab=2, num_labels=3, layer_norm_eps=1e-12)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "bert_tiny.h5")


class Embeddings(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.word_embeddings = nn.Embedding(k["vocab"], k["hidden"])
        self.position_embeddings = nn.Embedding(k["max_position"], k["hidden"])
        self.token_type_embeddings = nn.Embedding(k["type_vocab"], k["hidden"])
        self.LayerNorm = nn.LayerNorm(k["hidden"], eps=k["layer_norm_eps"])

    def forward(self, ids, type_ids):
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.word_embeddings(ids) + self.token_type_embeddings(type_ids) + self.position_embeddings(pos)
        return self.LayerNorm(x)


class SelfAttention(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.heads = k["heads"]
        self.query = nn.Linear(k["hidden"], k["hidden"])
        self.key = nn.Linear(k["hidden"], k["hidden"])
        self.value = nn.Linear(k["hidden"], k["hidden"])

    def split(self, x):  # [B, T, H*hd] -> [B, H, T, hd]
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).permute(0, 2, 1, 3)

    def forward(self, h, ext_mask):
        q, k, v = self.split(self.query(h)), self.split(self.key(h)), self.split(self.value(h))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + ext_mask
        ctx = torch.softmax(scores, dim=-1) @ v
        b, _, t, _ = ctx.shape
        return ctx.permute(0, 2, 1, 3).reshape(b, t, -1)


class DenseAddNorm(nn.Module):
    """HF BertSelfOutput / BertOutput: LayerNorm(dense(x) + residual)."""

    def __init__(self, d_in, d_out, eps):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.self = SelfAttention(k)
        self.output = DenseAddNorm(k["hidden"], k["hidden"], k["layer_norm_eps"])

    def forward(self, h, ext_mask):
        return self.output(self.self(h, ext_mask), h)


class Intermediate(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.dense = nn.Linear(k["hidden"], k["intermediate"])

    def forward(self, x):
        return nn.functional.gelu(self.dense(x))  # erf form (approximate='none')


class Layer(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.attention = Attention(k)
        self.intermediate = Intermediate(k)
        self.output = DenseAddNorm(k["intermediate"], k["hidden"], k["layer_norm_eps"])

    def forward(self, h, ext_mask):
        a = self.attention(h, ext_mask)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.layer = nn.ModuleList(Layer(k) for _ in range(k["layers"]))


class Pooler(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.dense = nn.Linear(k["hidden"], k["hidden"])

    def forward(self, h):
        return torch.tanh(self.dense(h[:, 0]))


class Bert(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.embeddings = Embeddings(k)
        self.encoder = Encoder(k)
        self.pooler = Pooler(k)


class MultiExitBert(nn.Module):
    """BertModel + one classifier per layer; forward returns the L exits' logits, each [B, C]."""

    def __init__(self, k):
        super().__init__()
        self.bert = Bert(k)
        self.classifiers = nn.ModuleList(nn.Linear(k["hidden"], k["num_labels"]) for _ in range(k["layers"]))

    def forward(self, ids, type_ids, mask):
        ext_mask = ((1.0 - mask) * torch.finfo(mask.dtype).min)[:, None, None, :]  # [B, 1, 1, T]
        h = self.bert.embeddings(ids, type_ids)
        logits = []
        for layer, classifier in zip(self.bert.encoder.layer, self.classifiers):
            h = layer(h, ext_mask)
            logits.append(classifier(self.bert.pooler(h)))  # exit dropout p = 0
        return logits


def main():
    make_fixture(MultiExitBert(CONFIG), CONFIG, OUT)


if __name__ == "__main__":
    main()


def blas_in_use():
    """The BLAS library this process loaded (Debian's torch links the system libblas.so.3, which the
    alternatives system points at the reference BLAS unless OpenBLAS is installed: a ~7x slower torch)."""
    import torch
    torch.ones(8, 8) @ torch.ones(8, 8)
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
    libs = sorted(os.path.realpath(x) for x in libs)
    return ", ".join(libs) if libs else "none found"

