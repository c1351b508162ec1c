"""What every PyTorch twin of an EPEE-C model with exits shares (tests/twin/*_twin.py): the padded test
batch, the random nonzero initialisation, the weighted loss over the exits, the float32 run with its float64
noise floor, the padding check, and the fixture file every tests/test_*_twin.c reads.

A twin is a plain-torch module whose state_dict keys are the HuggingFace ones (so the C model loads the
fixture by name) and whose forward(ids, type_ids, mask) (an image twin: forward(pixels)) returns the L exits'
logits, each [B, C]. Fixture layout (all float32 / int32):

    attrs["config"]   JSON, the C side's generic model config: "arch", "vocab", "hidden", "layers", "heads",
                      "intermediate", "max_position", "num_labels", "layer_norm_eps", plus per arch
                      bert: "type_vocab"; albert: "type_vocab", "embedding_size", "hidden_groups";
                      gpt2: "exit_norm"; vit: "image_size", "patch_size", "channels", "exit_norm" and
                      no "vocab" / "max_position"
    inputs/ids, inputs/type_ids [B, T] int32, inputs/mask [B, T] (1 real, 0 padding), inputs/labels [B];
    an image twin instead: inputs/pixels [B, C, H, W] float32 N(0, 1), inputs/labels [B] (no padding: every
                      position real; the C side builds the all-ones mask [B, N + 1] itself)
    loss_weights [L]  w_i = i + 1; loss = sum_i w_i CE(z_i, y) / sum_i w_i, CE averaged over the batch
    logits [L, B, C], loss [1]
    weights/<name>, grads/<name>   every parameter and its gradient of the loss, by HF state_dict key

Developer machine only (Debian python3-torch 1.13 + python3-h5py, run with /usr/bin/python3).
"""
import json
import math
import os

import h5py
import torch
from torch import nn

B, T = 3, 7
LENGTHS = [7, 5, 3]   # real tokens per row; the rest is padding (mask 0 at the end)
SEED = 1234
STD = 0.2             # bigger than the usual 0.02 so that every gradient is well above float32 noise
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")

CONFIG_KEYS = ["arch", "vocab", "hidden", "layers", "heads", "intermediate", "max_position", "num_labels",
               "layer_norm_eps"]
ARCH_KEYS = {"bert": ["type_vocab"], "albert": ["type_vocab", "embedding_size", "hidden_groups"],
             "gpt2": ["exit_norm"], "vit": ["image_size", "patch_size", "channels", "exit_norm"]}
IMAGE_ARCHS = {"vit"}  # pixels in, not ids: no vocab, no max_position
TEXT_ONLY_KEYS = {"vocab", "max_position"}


def config_json(cfg):
    """The config attribute: exactly the generic keys plus the arch's own, nothing else."""
    want = set(CONFIG_KEYS + ARCH_KEYS[cfg["arch"]])
    if cfg["arch"] in IMAGE_ARCHS:
        want -= TEXT_ONLY_KEYS
    assert set(cfg) == want, f"config keys {sorted(set(cfg) ^ want)} wrong for arch {cfg['arch']}"
    return json.dumps(cfg)


def gelu_new(x):
    """HF "gelu_new" (NewGELUActivation, the GPT-2 / ALBERT default): the tanh approximation of GELU."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def check_gelu_new():
    """gelu_new is torch's gelu(approximate='tanh') (same formula; only rounding may differ)."""
    x = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    d64 = (gelu_new(x) - nn.functional.gelu(x, approximate="tanh")).abs().max().item()
    x = x.float()
    d32 = (gelu_new(x) - nn.functional.gelu(x, approximate="tanh")).abs().max().item()
    print(f"gelu_new vs torch gelu(approximate='tanh') on [-8, 8]: max |diff| float64 {d64:.1e}, "
          f"float32 {d32:.1e}")
    assert d64 < 1e-14 and d32 < 1e-6


def make_inputs(g, cfg, token_types=True):
    """ids [B, T], type_ids [B, T], mask [B, T], labels [B]. With token_types, the second segment (type 1)
    is the back half of each row, padding included (it must not matter); without, type_ids are all 0."""
    ids = torch.randint(0, cfg["vocab"], (B, T), generator=g)
    type_ids = torch.zeros(B, T, dtype=torch.long)
    mask = torch.zeros(B, T)
    for b, n in enumerate(LENGTHS):
        mask[b, :n] = 1
        if token_types:
            type_ids[b, n // 2:] = 1
    labels = torch.randint(0, cfg["num_labels"], (B,), generator=g)
    return ids, type_ids, mask, labels


def make_image_inputs(g, cfg):
    """pixels [B, C, H, W] N(0, 1), labels [B]."""
    s = cfg["image_size"]
    pixels = torch.randn(B, cfg["channels"], s, s, generator=g)
    labels = torch.randint(0, cfg["num_labels"], (B,), generator=g)
    return pixels, labels


def init_weights(model, g):
    """Every parameter random and nonzero (biases and LayerNorm too), so each one shows in the comparison:
    N(0, STD^2), LayerNorm weights 1 + N(0, STD^2). Drawn in named_parameters() order."""
    ln_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.LayerNorm)}
    with torch.no_grad():
        for _, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g) * STD
            p.copy_(1.0 + r if id(p) in ln_weights else r)


def weighted_loss(logits, labels, w):
    ce = torch.stack([nn.functional.cross_entropy(z, labels) for z in logits])
    return (w * ce).sum() / w.sum()


def run(model, inputs, w, dtype):
    """Logits [L, B, C], loss and every gradient, computed in dtype. A parameter the loss does not reach
    gets a zero gradient."""
    model = model.to(dtype)
    model.zero_grad()
    *xs, labels = inputs  # (ids, type_ids, mask, labels) or (pixels, labels); the float ones go to dtype
    logits = model(*(x.to(dtype) if x.is_floating_point() else x for x in xs))
    loss = weighted_loss(logits, labels, w.to(dtype))
    loss.backward()
    grads = {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p.detach()))
             for n, p in model.named_parameters()}
    return torch.stack(logits).detach(), loss.detach(), grads


def logits_of(model, ids, type_ids, mask):
    with torch.no_grad():
        return torch.stack(model(ids, type_ids, mask))  # [L, B, C]


def check_padding(model, inputs, V):
    """New ids at every padded position leave every exit's logits unchanged; a new id at one real
    non-first position (the control, as in the C tests) changes them; and each row run alone, cut to its
    real tokens (no padding at all), gives the logits it has in the padded batch. All asserted; float32."""
    model = model.to(torch.float32)
    ids, type_ids, mask, _ = inputs

    def logits(x):
        return logits_of(model, x, type_ids, mask)

    base = logits(ids)
    flat, m = ids.flatten().clone(), mask.flatten()
    real = -1
    for i in range(flat.numel()):
        if m[i] == 0:
            flat[i] = (flat[i] + 1 + i % (V - 1)) % V  # always a different id
        elif i % T != 0:
            real = i
    pads = int((m == 0).sum())
    e_pad = (logits(flat.view(B, T)) - base).abs().max().item()
    flat = ids.flatten().clone()
    flat[real] = (flat[real] + 1) % V
    e_real = (logits(flat.view(B, T)) - base).abs().max().item()
    # each row alone, cut to its real tokens with no padding at all, gives its logits in the batch
    alone = [logits_of(model, ids[b:b + 1, :n], type_ids[b:b + 1, :n], torch.ones(1, n)) - base[:, b:b + 1]
             for b, n in enumerate(LENGTHS)]
    e_alone = max(d.abs().max().item() for d in alone)
    print(f"padding check: {pads} padded ids changed -> logits change {e_pad:.2e} (must be <= 1e-6); "
          f"one real id changed -> {e_real:.2e} (must be > 1e-4); each row alone at its length -> "
          f"{e_alone:.2e} (must be <= 1e-5)")
    assert pads > 0 and e_pad <= 1e-6 and e_real > 1e-4 and e_alone <= 1e-5


def check_image(model, inputs):
    """The image twins' stand-in for the padding check (they have none): each image run alone gives the
    logits it has in the batch, and one changed pixel (the control) changes them. Asserted; float32."""
    model = model.to(torch.float32)
    pixels, _ = inputs
    with torch.no_grad():
        base = torch.stack(model(pixels))
        e_alone = max((torch.stack(model(pixels[b:b + 1])) - base[:, b:b + 1]).abs().max().item()
                      for b in range(pixels.shape[0]))
        other = pixels.clone()
        other[0, -1, -1, -1] += 1.0  # the last pixel: in the last patch
        e_pixel = (torch.stack(model(other)) - base).abs().max().item()
    print(f"image check: each image alone -> {e_alone:.2e} (must be <= 1e-5); one pixel changed -> "
          f"{e_pixel:.2e} (must be > 1e-4)")
    assert e_alone <= 1e-5 and e_pixel > 1e-4


def write_fixture(path, cfg, inputs, w, logits, loss, weights, grads):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["config"] = config_json(cfg)
        if cfg["arch"] in IMAGE_ARCHS:
            pixels, labels = inputs
            f["inputs/pixels"] = pixels.numpy()
        else:
            ids, type_ids, mask, labels = inputs
            f["inputs/ids"] = ids.to(torch.int32).numpy()
            f["inputs/type_ids"] = type_ids.to(torch.int32).numpy()
            f["inputs/mask"] = mask.numpy()
        f["inputs/labels"] = labels.to(torch.int32).numpy()
        f["loss_weights"] = w.numpy()
        f["logits"] = logits.numpy()
        f["loss"] = loss.reshape(1).numpy()
        for n in weights:
            f["weights/" + n] = weights[n].numpy()
            f["grads/" + n] = grads[n].numpy()
    print(f"wrote {os.path.normpath(path)} ({os.path.getsize(path)} bytes, {len(weights)} parameters)")


def make_fixture(model, cfg, out, token_types=True, seed=SEED):
    """The whole recipe: seed, init (parameters first, then the batch, from one generator), the float32 run
    written to out, the float64 rerun printed as the float32 noise floor, the padding check (an image twin:
    the image check)."""
    image = cfg["arch"] in IMAGE_ARCHS
    g = torch.Generator().manual_seed(seed)
    init_weights(model, g)
    inputs = make_image_inputs(g, cfg) if image else make_inputs(g, cfg, token_types)
    w = torch.arange(1, cfg["layers"] + 1, dtype=torch.float32)
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}

    logits, loss, grads = run(model, inputs, w, torch.float32)
    logits64, loss64, grads64 = run(model, inputs, w, torch.float64)  # same float32 weights, widened
    rel = lambda a, b: ((a.double() - b).abs() / b.abs().clamp(min=1)).max().item()
    print(f"float32 vs float64: logits {rel(logits, logits64):.2e}, loss {rel(loss, loss64):.2e}, "
          f"grads {max(rel(grads[n], grads64[n]) for n in grads):.2e}")
    zero = [n for n in grads if not grads[n].any()]
    small = min((n for n in grads if n not in zero), key=lambda n: grads[n].abs().max().item())
    print(f"loss {loss.item():.6f}; smallest max|grad| over tensors {grads[small].abs().max().item():.2e} "
          f"({small})" + (f"; all-zero gradients: {', '.join(zero)}" if zero else ""))
    if image:
        check_image(model, inputs)
    else:
        check_padding(model, inputs, cfg["vocab"])
    write_fixture(out, cfg, inputs, w, logits, loss, weights, grads)
