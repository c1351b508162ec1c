"""A gallery of test images with the layer each one left the model at: the README's picture of early exit on
images. Reads a MedMNIST-layout .npz split and the JSON Lines predictions epee-infer wrote for it (same order),
and writes an SVG with a few images per exit layer, each captioned with its gold label, the predicted label and
its exit layer. Python's standard library only (zipfile, zlib: the PNGs inside the SVG are encoded here).

    build/release/infer/epee-infer runs/vit_mnist/model.h5 --input data/cache/mnist/mnist.npz --split test \
        --output runs/vit_mnist/test_predictions.jsonl
    python3 experiments/exit_gallery.py data/cache/mnist/mnist.npz test runs/vit_mnist/test_predictions.jsonl \
        docs/vit_mnist_exits.svg
"""
import ast
import base64
import json
import os
import struct
import sys
import zipfile
import zlib

PER_LAYER, SCALE, CELL = 6, 3, 100


def read_npy(z, name):
    """(shape, bytes) of a little-endian integer .npy entry (the layout fetch_data.sh and MedMNIST write)."""
    b = z.read(name)
    assert b[:6] == b"\x93NUMPY", f"{name}: not a .npy"
    hlen, off = (struct.unpack("<H", b[8:10])[0], 10) if b[6] == 1 else (struct.unpack("<I", b[8:12])[0], 12)
    h = ast.literal_eval(b[off:off + hlen].decode("latin1"))
    assert h["descr"] in ("|u1", "<u1") and not h["fortran_order"], f"{name}: expected uint8, C order"
    return h["shape"], b[off + hlen:]


def png(pixels, h, w, c):
    """8-bit grey (c = 1) or RGB (c = 3) PNG bytes."""
    rows = b"".join(b"\0" + pixels[r * w * c:(r + 1) * w * c] for r in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0 if c == 1 else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def main():
    npz, split, preds, out = sys.argv[1:5]
    with zipfile.ZipFile(npz) as z:
        shape, img = read_npy(z, f"{split}_images.npy")
        _, lab = read_npy(z, f"{split}_labels.npy")
    n, h, w = shape[:3]
    c = shape[3] if len(shape) == 4 else 1
    p = [json.loads(line) for line in open(preds)]
    assert len(p) == n, f"{preds}: {len(p)} predictions for {n} images"
    layers = sorted({q["exit_layer"] for q in p})
    picked = {l: [i for i in range(n) if p[i]["exit_layer"] == l][:PER_LAYER] for l in layers}
    width, height = CELL * PER_LAYER + 90, CELL * len(layers) + 40
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="11">', f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="8" y="18" font-size="13">Test images by the layer they exit at (gold / predicted label); '
           f'{n} images: ' + ", ".join(f"layer {l}: {sum(q['exit_layer'] == l for q in p)}" for l in layers) +
           "</text>"]
    for row, l in enumerate(layers):
        y0 = 30 + row * CELL
        svg.append(f'<text x="8" y="{y0 + 45}">exit {l}</text>')
        for col, i in enumerate(picked[l]):
            x0 = 80 + col * CELL
            data = base64.b64encode(png(img[i * h * w * c:(i + 1) * h * w * c], h, w, c)).decode()
            svg.append(f'<image x="{x0}" y="{y0}" width="{w * SCALE}" height="{h * SCALE}" '
                       f'style="image-rendering:pixelated" href="data:image/png;base64,{data}"/>')
            ok = "" if p[i]["label"] == str(lab[i]) else ' fill="#c00"'
            svg.append(f'<text x="{x0}" y="{y0 + h * SCALE + 11}"{ok}>{lab[i]} / {p[i]["label"]}</text>')
    svg.append("</svg>")
    with open(out + ".tmp", "w") as f:
        f.write("\n".join(svg) + "\n")
    os.replace(out + ".tmp", out)
    print(f"{out}: {sum(len(v) for v in picked.values())} images over exit layers {layers}")


if __name__ == "__main__":
    main()
