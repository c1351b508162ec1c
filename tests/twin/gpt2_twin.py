"""PyTorch twin of EPEE-C's multi-exit GPT-2: writes tests/fixtures/gpt2_tiny.h5 (exits read the shared final
ln_f, exit_norm true) and tests/fixtures/gpt2_nonorm.h5 (exits read the raw block output, exit_norm false),
which the C model is compared against (logits of every exit, weighted loss, every gradient), as
tests/test_bert_twin.c does for BERT.

Regenerate (developer machine only; CI never runs Python, the fixtures are committed):

    /usr/bin/python3 tests/twin/gpt2_twin.py          # Debian python3-torch 1.13 + python3-h5py

The model is plain torch written to HuggingFace GPT2Model semantics (transformers is not needed), with the
state_dict keys of GPT2ForSequenceClassification's body (transformer.wte, transformer.wpe,
transformer.h.<i>.*, transformer.ln_f) plus classifiers.<i>.*. Every c_attn / c_proj / c_fc is HF's Conv1D:
weight [in, out], y = x W + b (the transpose of nn.Linear).
  h = wte(ids) + wpe(0..T-1)  (no token types: type_ids are all 0 in the fixture and unused);
  pre-LN block: h = h + attn.c_proj(attn(ln_1(h))), h = h + mlp.c_proj(gelu_new(mlp.c_fc(ln_2(h))));
  attn: q, k, v = c_attn(x) split in that order along the last dim, heads as HF _split_heads; scores =
    q k^T / sqrt(head_dim), then as HF: where(causal, scores, finfo.min) + (1 - mask) * finfo.min (a padded
    future key gets finfo.min twice, i.e. -inf: weight 0 all the same); softmax; @ v; merged heads;
  gelu_new = the tanh form (HF's GPT-2 activation_function; checked equal to torch's
    gelu(approximate='tanh'));
  LayerNorm eps 1e-5 everywhere;
  exit_i = classifiers.<i>(ln_f(h_i)[b, last_b]) when exit_norm, classifiers.<i>(h_i[b, last_b]) when not,
    h_i the output of block i, last_b = (number of mask-1 tokens of row b) - 1 = the LAST REAL token of row b
    (right padding), not the last padded position. The last exit with exit_norm is HF's
    GPT2ForSequenceClassification head (whose score Linear has no bias; the classifiers here have one).
With exit_norm false nothing reads ln_f, so its gradient is zero; transformer.ln_f.weight / bias are kept in
weights/ and grads/ (grads all zero) all the same, so that the C model, which always declares ln_f, loads the
same set of tensors from both fixtures. The loss is sum_i w_i CE(z_i, y) / sum_i w_i, w_i = i + 1, CE
averaged over the batch. Dropout is 0, so the run is deterministic.

The fixture is computed in float32, as the C side computes; the float64 rerun only reports the float32
noise floor. Batch, initialisation (every parameter N(0, 0.2^2), LayerNorm weights 1 + N(0, 0.2^2)), loss,
padding check and file layout: tests/twin/common.py.
"""
import math
import os

import torch
from torch import nn

from common import FIXTURES, check_gelu_new, gelu_new, make_fixture

CONFIG = dict(arch="gpt2", vocab=50, hidden=16, layers=3, heads=2, intermediate=24, max_position=20,
              num_labels=3, layer_norm_eps=1e-5, exit_norm=True)
CONFIG_NONORM = dict(CONFIG, exit_norm=False)


class Conv1D(nn.Module):
    """HF Conv1D: weight [in, out] (registered before bias, as HF), y = x W + b."""

    def __init__(self, d_in, d_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_in, d_out))
        self.bias = nn.Parameter(torch.empty(d_out))

    def forward(self, x):
        return x @ self.weight + self.bias


class Attention(nn.Module):
    """HF GPT2Attention (causal self-attention, no cache, no cross-attention)."""

    def __init__(self, k):
        super().__init__()
        d = k["hidden"]
        self.heads = k["heads"]
        self.c_attn = Conv1D(d, 3 * d)
        self.c_proj = Conv1D(d, d)

    def split(self, x):  # [B, T, H*hd] -> [B, H, T, hd]
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).permute(0, 2, 1, 3)

    def forward(self, x, ext_mask):
        d = x.shape[-1]
        q, k, v = (self.split(y) for y in self.c_attn(x).split(d, dim=2))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        t = x.shape[1]
        causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
        scores = torch.where(causal, scores, torch.tensor(torch.finfo(scores.dtype).min, dtype=scores.dtype))
        ctx = torch.softmax(scores + ext_mask, dim=-1) @ v
        b = ctx.shape[0]
        return self.c_proj(ctx.permute(0, 2, 1, 3).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.c_fc = Conv1D(k["hidden"], k["intermediate"])
        self.c_proj = Conv1D(k["intermediate"], k["hidden"])

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class Block(nn.Module):
    """HF GPT2Block, pre-LN (registration order as HF: ln_1, attn, ln_2, mlp)."""

    def __init__(self, k):
        super().__init__()
        self.ln_1 = nn.LayerNorm(k["hidden"], eps=k["layer_norm_eps"])
        self.attn = Attention(k)
        self.ln_2 = nn.LayerNorm(k["hidden"], eps=k["layer_norm_eps"])
        self.mlp = MLP(k)

    def forward(self, h, ext_mask):
        h = h + self.attn(self.ln_1(h), ext_mask)
        return h + self.mlp(self.ln_2(h))


class GPT2(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.wte = nn.Embedding(k["vocab"], k["hidden"])
        self.wpe = nn.Embedding(k["max_position"], k["hidden"])
        self.h = nn.ModuleList(Block(k) for _ in range(k["layers"]))
        self.ln_f = nn.LayerNorm(k["hidden"], eps=k["layer_norm_eps"])


class MultiExitGPT2(nn.Module):
    """GPT2Model + one classifier per layer on the last real token; forward returns the L exits' logits,
    each [B, C]. type_ids is accepted (the twins' common signature) and ignored."""

    def __init__(self, k):
        super().__init__()
        self.exit_norm = k["exit_norm"]
        self.transformer = GPT2(k)
        self.classifiers = nn.ModuleList(nn.Linear(k["hidden"], k["num_labels"]) for _ in range(k["layers"]))

    def forward(self, ids, type_ids, mask):
        del type_ids
        ext_mask = ((1.0 - mask) * torch.finfo(mask.dtype).min)[:, None, None, :]  # [B, 1, 1, T]
        rows = torch.arange(ids.shape[0])
        last = mask.sum(dim=1).long() - 1  # last real token of each row (right padding)
        tr = self.transformer
        h = tr.wte(ids) + tr.wpe(torch.arange(ids.shape[1]).unsqueeze(0))
        logits = []
        for block, classifier in zip(tr.h, self.classifiers):
            h = block(h, ext_mask)
            x = h[rows, last]
            logits.append(classifier(tr.ln_f(x) if self.exit_norm else x))  # exit dropout p = 0
        return logits


def main():
    check_gelu_new()
    for cfg, name in ((CONFIG, "gpt2_tiny.h5"), (CONFIG_NONORM, "gpt2_nonorm.h5")):
        print(f"{name}: exit_norm {cfg['exit_norm']}")
        make_fixture(MultiExitGPT2(cfg), cfg, os.path.join(FIXTURES, name), token_types=False)


if __name__ == "__main__":
    main()
