"""Checks the C SentencePiece kind (data/sentencepiece.c, through experiments/tokenize_dump) against Python: Debian's
python3-sentencepiece with a reimplementation of HF AlbertTokenizer's preprocessing and _tokenize rules (the same
steps as data/sentencepiece.h lists). Developer machine only (apt-get install python3-sentencepiece; run with
Debian's /usr/bin/python3, whose unicodedata is Unicode 14.0.0 like the C side's libunistring).

    /usr/bin/python3 experiments/spm_check.py build/release/experiments/tokenize_dump
        1. preprocessing, C vs Python: every code point (U+0001..U+10FFFF but surrogates) in 4 contexts (alone,
           and around a capital sigma), more final-sigma cases, the hostile strings, 3000 random byte strings
           (invalid UTF-8 included); lowercase on and off;
        2. data/cache/spm/train.txt (written by scripts/fetch_data.sh's node preprocessing) vs the C preprocessing
           of the same train texts;
        3. ids, C vs Python, with data/cache/spm/go.model: the whole GO dev split (definitions; relation terms);
        4. tests/fixtures/spm_expected.tsv is what Python computes today.
    /usr/bin/python3 experiments/spm_check.py --write-fixtures
        trains tests/fixtures/spm_expected.tiny.model (spm_train, identity normalizer so that it stays a few KB)
        and writes tests/fixtures/spm_expected.tsv: Python's ids for both models (see its header).

Invalid UTF-8: the C side reads every byte outside a valid sequence as U+FFFD (data/utf8.h). Python here decodes
with errors="surrogateescape" and maps each escape (U+DC80..U+DCFF) to U+FFFD, which is the same byte for byte.
(errors="replace" would differ: it gives ONE U+FFFD for a truncated multi-byte sequence such as b"\\xe2\\x82".)
"""
import os
import random
import subprocess
import sys
import tempfile
import unicodedata

import sentencepiece as spm

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURE = os.path.join(REPO, "tests", "fixtures", "spm_expected.tsv")
TINY = os.path.join(REPO, "tests", "fixtures", "spm_expected.tiny.model")
GO_MODEL = os.path.join(REPO, "data", "cache", "spm", "go.model")
CACHE = os.path.join(REPO, "data", "cache")
MARK = "\u2581"  # SentencePiece's word-start mark


# ---- the Python reference ----------------------------------------------------------------------------------

def decode(b):
    s = b.decode("utf-8", errors="surrogateescape")
    return "".join("\ufffd" if "\udc80" <= c <= "\udcff" else c for c in s)


def preprocess(text, lower):
    """AlbertTokenizer.preprocess_text with remove_space=True, keep_accents=False, do_lower_case=lower."""
    s = " ".join(text.split())  # split() with no argument also drops leading and trailing whitespace
    s = s.replace("``", '"').replace("''", '"')
    s = "".join(c for c in unicodedata.normalize("NFKD", s) if unicodedata.combining(c) == 0)
    return s.lower() if lower else s


def pieces(sp, text, lower):
    """AlbertTokenizer._tokenize: the model's pieces, with the digit-comma rule."""
    out = []
    for p in sp.encode(preprocess(text, lower), out_type=str):
        if not (len(p) > 1 and p[-1] == "," and p[-2].isdigit()):
            out.append(p)
            continue
        sub = sp.encode(p[:-1].replace(MARK, ""), out_type=str)
        if not p.startswith(MARK) and sub[0].startswith(MARK):  # the dummy prefix's mark goes
            sub = sub[1:] if sub[0] == MARK else [sub[0][1:]] + sub[1:]
        out += sub + [","]
    return out


def ids(sp, b, lower):
    return [sp.piece_to_id(p) for p in pieces(sp, decode(b), lower)]


def fnv1a64(b):
    h = 0xCBF29CE484222325
    for x in b:
        h = ((h ^ x) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


# ---- inputs ------------------------------------------------------------------------------------------------

HOSTILE = [s.encode() if isinstance(s, str) else s for s in [
    "", " ", "   \t  ", "\t\n\r\x0b\x0c", "\x1c\x1d\x1e\x1f", "a\x1cb\x1fc", "a\u00a0b\u3000c\u2028d\u0085e\u2029f",
    "  the   cell \t membrane  ", "\u200b zero\u200bwidth \ufeff bom \u00ad soft\u00adhyphen \u200e mark",
    "a\x01b\x7fc\x1bd\x08e", "\x01\x02\x03",
    "\U0001F600 cell \U0001F44D\U0001F3FD family \U0001F468\u200d\U0001F469\u200d\U0001F467 \U0001F1E9\U0001F1EA",
    "细胞膜 蛋白质", "タンパク質の輸送", "세포막 단백질", "\u0e40\u0e0b\u0e25\u0e25\u0e4c thai",
    "café naïve Åland Ωmega", "cafe\u0301 e\u0301\u0301 a\u0345 \u0345", "Việt Nam Đà Nẵng",
    "ﬁbre ﬂux x² ½ 5℃ 3㎒ Ⅻ ㍻", "ＡＢＣ　１２３ ｶﾀｶﾅ", "İstanbul ǅ ǈ ﬀ", "ΣΑΣ ΟΔΟΣ ΣΑΣ. Σ ὈΔΥΣΣΕΎΣ", "Straße STRASSE ẞ",
    "\ufffd replacement \ue000 private \uffff non \U0010ffff last \U000e0001 tag",
    b"\xff\xfe", b"abc\x80def", b"\xe2\x82", b"\xe2\x82(", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
    b"\xf0\x9f\x98 cut emoji", b"ok \xf0\x9f\x98\x80 ok \xf8\x88\x80\x80\x80",
    "1,2,3", "1, 2, 3,", "10,000,000 cells", "a1,b2,", "(1,3)-beta-d-glucan", "2,4-dichlorophenoxyacetic acid",
    "5,6,7,8-tetrahydro", "1,", ",1,", "٣,٤ arabic", "²,³, superscripts", "①,② circled", "x1,y",
    "``like this''", "```triple'''", "'single' \"double\" `back`", "`` spaced ''", "''``", "'''",
    "[CLS] [SEP] <pad> <unk> [MASK]", "\u2581 already \u2581\u2581marked \u25811,",
    "THE CELL MEMBRANE", "Negative Regulation Of DNA-Binding, 3,5-Cyclic AMP",
    "membrane " * 200,
]]


def tiny_lines():
    """Deterministic training text for the tiny model: GO-like phrases with digits, commas, quotes (lowercase)."""
    words = ("the cell membrane protein binding of to and in a regulation process activity complex transport "
             "positive negative dna rna atp ion channel kinase receptor signal pathway any that which").split()
    x, lines = 12345, []
    def nxt(n):
        nonlocal x
        x = (1103515245 * x + 12345) % 2 ** 31
        return x % n
    for i in range(400):
        ws = [words[nxt(len(words))] for _ in range(4 + nxt(8))]
        if i % 3 == 0:
            ws.insert(nxt(len(ws)), ",".join(str(nxt(10)) for _ in range(2 + nxt(3))) + ",")
        if i % 5 == 0:
            ws.insert(nxt(len(ws)), '"' + words[nxt(len(words))] + '"')
        lines.append(" ".join(ws) + ("." if i % 2 else ","))
    return lines


def tsv_rows(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f.read().split("\n")[1:] if line]


def go_dev_texts():
    defs = [r[0] for r in tsv_rows(os.path.join(CACHE, "go", "dev.tsv"))]
    terms = [t for r in tsv_rows(os.path.join(CACHE, "go_rel", "dev.tsv")) for t in r[:2]]
    return defs, terms


# ---- fixtures ----------------------------------------------------------------------------------------------

def write_tiny():
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "train.txt"), "w", encoding="utf-8") as f:
            f.write("".join(l + "\n" for l in tiny_lines()))
        subprocess.run(["spm_train", "--input=train.txt", "--model_prefix=tiny", "--model_type=unigram",
                        "--vocab_size=120", "--pad_id=0", "--unk_id=1", "--bos_id=-1", "--eos_id=-1",
                        "--control_symbols=[CLS],[SEP],[MASK]", "--character_coverage=1.0",
                        "--normalization_rule_name=identity", "--input_sentence_size=0",
                        "--shuffle_input_sentence=false", "--num_threads=1"],
                       cwd=d, check=True, capture_output=True)
        with open(os.path.join(d, "tiny.model"), "rb") as f:
            model = f.read()
    with open(TINY, "wb") as f:
        f.write(model)
    return model


def fixture_cases(go_defs):
    """(model name, lowercase, input bytes) for the fixture: hostile strings and tiny-model sentences for both
    models, with lowercase on and off; ~300 GO dev definitions (every 12th) for the GO model."""
    tiny_text = [l.encode() for l in tiny_lines()[:40]] + [b"The Cell Membrane, 1,2,3 kinase", b"ATP 7,8, ion"]
    cases = []
    for name in ("tiny", "go"):
        for lower in (1, 0):
            cases += [(name, lower, b) for b in HOSTILE + tiny_text]
    cases += [("go", 1, t.encode()) for t in go_defs[::12]]
    cases += [("go", 0, t.encode()) for t in go_defs[5:200:40]]
    return cases


def plain(b):
    """The text of a fixture line, or None when it must go as hex (empty, invalid UTF-8, tabs, controls, outer
    spaces...)."""
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return s if s and s == s.strip() and all(c.isprintable() for c in s) else None


def fixture_text(models, go_defs):
    lines = [
        "# Expected ids of the SentencePiece kind (data/sentencepiece.c) for tests/test_sentencepiece.c, made by",
        "# /usr/bin/python3 experiments/spm_check.py --write-fixtures: python3-sentencepiece (Debian 0.1.97) with",
        "# AlbertTokenizer's preprocessing and _tokenize rules reimplemented in Python.",
        "# Columns: model, lowercase, text, ids. text is 't' + the text, or 'x' + the hex of its bytes (inputs",
        "# that are empty, start or end with a space, or hold invalid UTF-8 or non-printable characters). ids are",
        "# space-separated, '-' for none.",
        "# 'model' lines: name, file, byte length, FNV-1a 64 of the bytes (the test skips models that differ).",
    ]
    for name, (path, data) in models.items():
        lines.append("model\t%s\t%s\t%d\t%016x" % (name, path, len(data), fnv1a64(data)))
    procs = {name: spm.SentencePieceProcessor(model_proto=data) for name, (_, data) in models.items()}
    for name, lower, b in fixture_cases(go_defs):
        p = plain(b)
        text = "t" + p if p is not None else "x" + b.hex()
        lines.append("%s\t%d\t%s\t%s" % (name, lower, text, " ".join(map(str, ids(procs[name], b, lower))) or "-"))
    return "".join(l + "\n" for l in lines)


def load_models():
    with open(TINY, "rb") as f:
        tiny = f.read()
    with open(GO_MODEL, "rb") as f:
        go = f.read()
    return {"tiny": ("tests/fixtures/spm_expected.tiny.model", tiny), "go": ("data/cache/spm/go.model", go)}


# ---- checks ------------------------------------------------------------------------------------------------

def run_dump(dump, inputs, args):
    data = "".join(b.hex() + "\n" for b in inputs).encode()
    out = subprocess.run([dump, "--hex"] + args, input=data, capture_output=True, check=True).stdout
    return out.decode().split("\n")[:-1]


def compare(what, want, got):
    same = sum(a == b for a, b in zip(want, got))
    if len(want) != len(got):
        print(f"{what}: {len(got)} outputs for {len(want)} inputs")
        return False
    print(f"{what}: {same}/{len(want)} identical")
    for k, (a, b) in enumerate(zip(want, got)):
        if a != b:
            print(f"  first difference, input {k}:\n    python {a}\n    C      {b}")
            break
    return same == len(want)


def check(dump):
    ok = True
    rng = random.Random(2025)
    cps = [c for c in range(1, 0x110000) if not 0xD800 <= c < 0xE000]
    # each code point alone, and in the contexts of the final-sigma rule (cased / case-ignorable before or after)
    pre_inputs = [(a + chr(c) + b).encode() for a, b in (("x", "y"), ("Α", "Σ"), ("", "Σ"),
                                                          ("ΑΣ", "")) for c in cps]
    sigma = ["Σ", "ΑΣ", "ΑΣ Α", "ΑΣΑ", "Α'Σ", "ΑΣ'", "ΑΣ'Α", "Α\u0301Σ", "ΑΣ\u0301", "1Σ", "ΑΣ1", "ΑΣ\u00ad",
             "\u00adΣ", "ΑΣ.Σ", "ΑΣΣ", "ὈΔΥΣΣΕΎΣ", "aΣ", "\u0130Σ", "Σ\u0345"]
    pre_inputs += [s.encode() for s in sigma] + HOSTILE
    pre_inputs += [bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 24))) for _ in range(3000)]
    for lower in (1, 0):
        want = [preprocess(decode(b), lower).encode().hex() for b in pre_inputs]
        got = run_dump(dump, pre_inputs, ["--albert-pre"] + ([] if lower else ["--no-lower"]))
        ok &= compare(f"preprocessing (lowercase {lower}) of {len(cps)} code points x 4 contexts, sigma cases, "
                      "hostile strings, random bytes",
                      want, got)

    defs = [r[0] for r in tsv_rows(os.path.join(CACHE, "go", "train.tsv"))]
    terms = list(dict.fromkeys(t for r in tsv_rows(os.path.join(CACHE, "go_rel", "train.tsv")) for t in r[:2]))
    with open(os.path.join(CACHE, "spm", "train.txt"), "rb") as f:
        node = [l.hex() for l in f.read().split(b"\n")[:-1]]
    ok &= compare("spm/train.txt (node, scripts/fetch_data.sh) vs C preprocessing of the train texts",
                  node, run_dump(dump, [t.encode() for t in defs + terms], ["--albert-pre"]))

    models = load_models()
    sp = spm.SentencePieceProcessor(model_proto=models["go"][1])
    dev_defs, dev_terms = go_dev_texts()
    for what, texts in (("GO dev definitions", dev_defs), ("GO relation dev terms (text_a, text_b)", dev_terms)):
        bs = [t.encode() for t in texts]
        want = [str(ids(sp, b, 1)).replace(" ", "") for b in bs]
        ok &= compare(f"ids, {what}", want, run_dump(dump, bs, ["sentencepiece", GO_MODEL]))
    for lower in (1, 0):
        want = [str(ids(sp, b, lower)).replace(" ", "") for b in HOSTILE]
        ok &= compare(f"ids, hostile strings (lowercase {lower})", want,
                      run_dump(dump, HOSTILE, ["sentencepiece", GO_MODEL] + ([] if lower else ["--no-lower"])))

    with open(FIXTURE, encoding="utf-8") as f:
        current = f.read()
    fresh = current == fixture_text(models, dev_defs)
    print("tests/fixtures/spm_expected.tsv: " + ("up to date" if fresh else "STALE (run --write-fixtures)"))
    return ok and fresh


def main(argv):
    if argv == ["--write-fixtures"]:
        write_tiny()
        text = fixture_text(load_models(), go_dev_texts()[0])
        with open(FIXTURE, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {TINY} and {FIXTURE} ({text.count(chr(10))} lines)")
        return 0
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__)
        return 2
    ok = check(argv[0])
    print("spm_check: " + ("all identical" if ok else "DIFFERENCES"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
