"""PyTorch twin of EPEE-C's multi-exit ALBERT: writes tests/fixtures/albert_tiny.h5 (one hidden group shared
by all 3 layers) and tests/fixtures/albert_groups.h5 (4 layers in 2 groups), which the C model is compared
against (logits of every exit, weighted loss, every gradient), as tests/test_bert_twin.c does for BERT.

Regenerate (developer machine only; CI never runs Python, the fixtures are committed):

    /usr/bin/python3 tests/twin/albert_twin.py        # Debian python3-torch 1.13 + python3-h5py

The model is plain torch written to HuggingFace AlbertModel semantics (transformers is not needed), with
its state_dict keys (albert.embeddings.*, albert.encoder.embedding_hidden_mapping_in.*,
albert.encoder.albert_layer_groups.<g>.albert_layers.0.*, albert.pooler.*) plus classifiers.<i>.*:
  emb = LayerNorm_E(word + token_type + position), all of width embedding_size E;
  h = embedding_hidden_mapping_in(emb)  (E -> hidden H);
  layer i (0-based) applies group int(i / (layers / hidden_groups)) (HF's formula; inner_group_num = 1):
    a = attention.LayerNorm(h + attention.dense(ctx(h))), ctx = multi-head softmax(q k^T / sqrt(head_dim)
        + (1 - mask) * finfo.min) v;
    h = full_layer_layer_norm(ffn_output(gelu_new(ffn(a))) + a), gelu_new = the tanh form (HF's ALBERT
        default hidden_act, checked equal to torch's gelu(approximate='tanh'));
  exit_i = classifiers.<i>(tanh(albert.pooler(h_i[:, 0]))), one pooler shared by all exits (PABEE/EPEE).
A group's weights serve several layers and every exit sees them, so their gradients sum over every
application and every exit (autograd does it). The loss is sum_i w_i CE(z_i, y) / sum_i w_i, w_i = i + 1,
CE averaged over the batch. Dropout is 0, so the run is deterministic. word_embeddings has no padding_idx
(HF's would keep the pad row's gradient at zero), as in bert_twin.py: padding is the mask's business.

The fixture is computed in float32, as the C side computes; the float64 rerun only reports the float32
noise floor. Batch, initialisation (every parameter N(0, 0.2^2), LayerNorm weights 1 + N(0, 0.2^2)), loss,
padding check and file layout: tests/twin/common.py.
"""
import math
import os

import torch
from torch import nn

from common import FIXTURES, check_gelu_new, gelu_new, make_fixture

CONFIG = dict(arch="albert", vocab=50, hidden=16, layers=3, heads=2, intermediate=24, max_position=20,
              num_labels=3, layer_norm_eps=1e-12, type_vocab=2, embedding_size=8, hidden_groups=1)
CONFIG_GROUPS = dict(CONFIG, layers=4, hidden_groups=2)


class Embeddings(nn.Module):
    def __init__(self, k):
        super().__init__()
        e = k["embedding_size"]
        self.word_embeddings = nn.Embedding(k["vocab"], e)
        self.position_embeddings = nn.Embedding(k["max_position"], e)
        self.token_type_embeddings = nn.Embedding(k["type_vocab"], e)
        self.LayerNorm = nn.LayerNorm(e, eps=k["layer_norm_eps"])

    def forward(self, ids, type_ids):
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.word_embeddings(ids) + self.token_type_embeddings(type_ids) + self.position_embeddings(pos)
        return self.LayerNorm(x)


class Attention(nn.Module):
    """HF AlbertAttention: self-attention, output dense, residual, LayerNorm in one module."""

    def __init__(self, k):
        super().__init__()
        d = k["hidden"]
        self.heads = k["heads"]
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.dense = nn.Linear(d, d)
        self.LayerNorm = nn.LayerNorm(d, eps=k["layer_norm_eps"])

    def split(self, x):  # [B, T, H*hd] -> [B, H, T, hd]
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).permute(0, 2, 1, 3)

    def forward(self, h, ext_mask):
        q, k, v = self.split(self.query(h)), self.split(self.key(h)), self.split(self.value(h))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + ext_mask
        ctx = torch.softmax(scores, dim=-1) @ v
        b, _, t, _ = ctx.shape
        ctx = ctx.permute(0, 2, 1, 3).reshape(b, t, -1)
        return self.LayerNorm(h + self.dense(ctx))


class Layer(nn.Module):
    """HF AlbertLayer (registration order as HF: full_layer_layer_norm, attention, ffn, ffn_output)."""

    def __init__(self, k):
        super().__init__()
        self.full_layer_layer_norm = nn.LayerNorm(k["hidden"], eps=k["layer_norm_eps"])
        self.attention = Attention(k)
        self.ffn = nn.Linear(k["hidden"], k["intermediate"])
        self.ffn_output = nn.Linear(k["intermediate"], k["hidden"])

    def forward(self, h, ext_mask):
        a = self.attention(h, ext_mask)
        return self.full_layer_layer_norm(self.ffn_output(gelu_new(self.ffn(a))) + a)


class LayerGroup(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.albert_layers = nn.ModuleList([Layer(k)])  # inner_group_num = 1


class Encoder(nn.Module):
    """HF AlbertTransformer."""

    def __init__(self, k):
        super().__init__()
        self.embedding_hidden_mapping_in = nn.Linear(k["embedding_size"], k["hidden"])
        self.albert_layer_groups = nn.ModuleList(LayerGroup(k) for _ in range(k["hidden_groups"]))


class Albert(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.embeddings = Embeddings(k)
        self.encoder = Encoder(k)
        self.pooler = nn.Linear(k["hidden"], k["hidden"])  # HF: a bare Linear named pooler, then tanh


class MultiExitAlbert(nn.Module):
    """AlbertModel + one classifier per layer; forward returns the L exits' logits, each [B, C]."""

    def __init__(self, k):
        super().__init__()
        self.layers, self.groups = k["layers"], k["hidden_groups"]  # HF does not require layers % groups == 0
        self.albert = Albert(k)
        self.classifiers = nn.ModuleList(nn.Linear(k["hidden"], k["num_labels"]) for _ in range(k["layers"]))

    def group_of(self, i):
        # HF AlbertTransformer's formula, in floating point: equal to i * groups // layers whenever groups
        # divides layers, but not always otherwise (layers 18, groups 14: layer 9 -> 6 here, 7 in integers)
        return int(i / (self.layers / self.groups))

    def forward(self, ids, type_ids, mask):
        ext_mask = ((1.0 - mask) * torch.finfo(mask.dtype).min)[:, None, None, :]  # [B, 1, 1, T]
        h = self.albert.encoder.embedding_hidden_mapping_in(self.albert.embeddings(ids, type_ids))
        logits = []
        for i, classifier in enumerate(self.classifiers):
            h = self.albert.encoder.albert_layer_groups[self.group_of(i)].albert_layers[0](h, ext_mask)
            logits.append(classifier(torch.tanh(self.albert.pooler(h[:, 0]))))  # exit dropout p = 0
        return logits


def main():
    check_gelu_new()
    for cfg, name in ((CONFIG, "albert_tiny.h5"), (CONFIG_GROUPS, "albert_groups.h5")):
        model = MultiExitAlbert(cfg)
        print(f"{name}: layers {cfg['layers']}, hidden_groups {cfg['hidden_groups']}, layer -> group "
              f"{[model.group_of(i) for i in range(cfg['layers'])]}")
        make_fixture(model, cfg, os.path.join(FIXTURES, name))


if __name__ == "__main__":
    main()
