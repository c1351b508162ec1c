"""PyTorch twin of EPEE-C's multi-exit ViT (models/vit.c): writes tests/fixtures/vit_tiny.h5 (3 channels, exits
read the raw layer output, exit_norm false) and tests/fixtures/vit_norm.h5 (1 channel, exits read the final
vit.layernorm, exit_norm true), which tests/test_twins.c compares the C model against (logits of every exit,
weighted loss, every gradient).

Regenerate (developer machine only; CI never runs Python, the fixtures are committed):

    /usr/bin/python3 tests/twin/vit_twin.py           # Debian python3-torch 1.13 + python3-h5py

The model is plain torch written to HuggingFace ViTModel semantics (transformers is not needed; no pooler, as
ViTForImageClassification), with its state_dict keys (vit.embeddings.*, vit.encoder.layer.<i>.*, vit.layernorm)
plus classifiers.<i>.*:
  patches = embeddings.patch_embeddings.projection(pixels), a Conv2d(C, D, kernel = stride = P), flattened
    over the (H/P, W/P) grid row-major and transposed to [B, N, D];
  h = cat(embeddings.cls_token, patches) + embeddings.position_embeddings   [B, N + 1, D];
  pre-LN layer: x = h + attention.output.dense(attn(layernorm_before(h))),
                h = x + output.dense(gelu(intermediate.dense(layernorm_after(x))));
  attn: attention.attention.query / key / value (nn.Linear, bias), heads as HF transpose_for_scores,
    softmax(q k^T / sqrt(head_dim)) @ v with no mask (every position is real), merged heads;
  gelu = the erf form (ViT's hidden_act "gelu"); LayerNorm eps from the config (1e-12, HF ViT's default);
  exit_i = classifiers.<i>(vit.layernorm(h_i)[:, 0]) when exit_norm, classifiers.<i>(h_i[:, 0]) when not
    (the EPEE reference code: no norm), h_i the output of layer i. The last exit with exit_norm is HF's
    ViTForImageClassification head.
With exit_norm false nothing reads vit.layernorm, so its gradient is zero; it is kept in weights/ and grads/
(grads all zero) all the same, as HF declares it either way. The loss is sum_i w_i CE(z_i, y) / sum_i w_i,
w_i = i + 1, CE averaged over the batch. Dropout is 0, so the run is deterministic.

The fixtures are computed in float32, as the C side computes; the float64 rerun only reports the float32
noise floor. Initialisation (every parameter N(0, 0.2^2), LayerNorm weights 1 + N(0, 0.2^2)), pixels N(0, 1),
loss, the image check (each image alone gives its batch logits) and file layout: tests/twin/common.py.
"""
import os

import torch
from torch import nn

from bert_twin import SelfAttention  # query/key/value and the heads, as HF ViTSelfAttention
from common import FIXTURES, make_fixture

CONFIG = dict(arch="vit", hidden=16, layers=3, heads=2, intermediate=32, num_labels=3, layer_norm_eps=1e-12,
              image_size=8, patch_size=4, channels=3, exit_norm=False)
CONFIG_NORM = dict(arch="vit", hidden=12, layers=2, heads=3, intermediate=24, num_labels=4, layer_norm_eps=1e-12,
                   image_size=6, patch_size=2, channels=1, exit_norm=True)


class PatchEmbeddings(nn.Module):
    def __init__(self, k):
        super().__init__()
        p = k["patch_size"]
        self.projection = nn.Conv2d(k["channels"], k["hidden"], kernel_size=p, stride=p)

    def forward(self, pixels):  # [B, C, H, W] -> [B, N, D]
        return self.projection(pixels).flatten(2).transpose(1, 2)


class Embeddings(nn.Module):
    """HF ViTEmbeddings (registration order as HF: cls_token, patch_embeddings, position_embeddings)."""

    def __init__(self, k):
        super().__init__()
        n = (k["image_size"] // k["patch_size"]) ** 2
        self.cls_token = nn.Parameter(torch.empty(1, 1, k["hidden"]))
        self.patch_embeddings = PatchEmbeddings(k)
        self.position_embeddings = nn.Parameter(torch.empty(1, n + 1, k["hidden"]))

    def forward(self, pixels):
        x = self.patch_embeddings(pixels)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        return x + self.position_embeddings  # hidden dropout p = 0


class Dense(nn.Module):
    """HF ViTSelfOutput / ViTOutput without the residual (ViTLayer adds it): dense(x)."""

    def __init__(self, d_in, d_out):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)

    def forward(self, x):
        return self.dense(x)  # hidden dropout p = 0


class Attention(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.attention = SelfAttention(k)
        self.output = Dense(k["hidden"], k["hidden"])

    def forward(self, x):
        return self.output(self.attention(x, 0.0))  # BERT's self-attention without a mask: every patch is real


class Layer(nn.Module):
    """HF ViTLayer, pre-LN (registration order as HF: attention, intermediate, output, layernorm_before,
    layernorm_after)."""

    def __init__(self, k):
        super().__init__()
        self.attention = Attention(k)
        self.intermediate = Dense(k["hidden"], k["intermediate"])
        self.output = Dense(k["intermediate"], k["hidden"])
        self.layernorm_before = nn.LayerNorm(k["hidden"], eps=k["layer_norm_eps"])
        self.layernorm_after = nn.LayerNorm(k["hidden"], eps=k["layer_norm_eps"])

    def forward(self, h):
        x = h + self.attention(self.layernorm_before(h))
        return x + self.output(nn.functional.gelu(self.intermediate(self.layernorm_after(x))))  # erf form


class Encoder(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.layer = nn.ModuleList(Layer(k) for _ in range(k["layers"]))


class ViT(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.embeddings = Embeddings(k)
        self.encoder = Encoder(k)
        self.layernorm = nn.LayerNorm(k["hidden"], eps=k["layer_norm_eps"])


class MultiExitViT(nn.Module):
    """ViTModel (no pooler) + one classifier per layer on the [CLS] position; forward returns the L exits'
    logits, each [B, C]."""

    def __init__(self, k):
        super().__init__()
        self.exit_norm = k["exit_norm"]
        self.vit = ViT(k)
        self.classifiers = nn.ModuleList(nn.Linear(k["hidden"], k["num_labels"]) for _ in range(k["layers"]))

    def forward(self, pixels):
        h = self.vit.embeddings(pixels)
        logits = []
        for layer, classifier in zip(self.vit.encoder.layer, self.classifiers):
            h = layer(h)
            x = self.vit.layernorm(h) if self.exit_norm else h
            logits.append(classifier(x[:, 0]))  # exit dropout p = 0
        return logits


def check_patch_embedding():
    """The Conv2d patch embedding is im2col + matmul, patch (py, px) -> row py * (W/P) + px, column order
    (channel, ky, kx) = the weight's [C, P, P] (what core/ops_patch.c computes). float64, asserted."""
    g = torch.Generator().manual_seed(7)
    b, c, s, p, d = 2, 3, 6, 2, 5
    x = torch.randn(b, c, s, s, generator=g, dtype=torch.float64)
    conv = nn.Conv2d(c, d, p, stride=p).double()
    ref = conv(x).flatten(2).transpose(1, 2)
    cols = x.view(b, c, s // p, p, s // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, (s // p) ** 2, c * p * p)
    mine = cols @ conv.weight.reshape(d, -1).t() + conv.bias
    err = (mine - ref).abs().max().item()
    print(f"patch embedding = im2col @ W^T + b: max |diff| {err:.1e} (float64)")
    assert err < 1e-12


def main():
    check_patch_embedding()
    for cfg, name in ((CONFIG, "vit_tiny.h5"), (CONFIG_NORM, "vit_norm.h5")):
        print(f"{name}: channels {cfg['channels']}, image {cfg['image_size']}, patch {cfg['patch_size']}, "
              f"exit_norm {cfg['exit_norm']}")
        make_fixture(MultiExitViT(cfg), cfg, os.path.join(FIXTURES, name))


if __name__ == "__main__":
    main()
