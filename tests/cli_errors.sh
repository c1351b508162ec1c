#!/usr/bin/env bash
# The CLIs on bad input: one line naming the file / key / option, and a non-zero exit. No crash.
# usage: cli_errors.sh EPEE_INFER EPEE_TRAIN
set -u
infer=$1 train=$2
source "$(dirname "$0")/cli_lib.sh"
echo "plain text" > "$tmp/text.h5"
expect "infer: text file as model" 1 "not an HDF5 file" -- "$infer" "$tmp/text.h5"
expect "infer: missing model" 1 "cannot read file" -- "$infer" "$tmp/none.h5"
expect "infer: unknown option" 2 "unknown or incomplete option '--bogus'" -- "$infer" "$tmp/text.h5" --bogus
expect "infer: bad batch" 2 "--batch must be in" -- "$infer" "$tmp/text.h5" --batch 0
printf 'model:\n  layers: six\n' > "$tmp/bad.yaml"
expect "train: wrong type" 1 "bad.yaml:2:11: model.layers: expected int" -- "$train" "$tmp/bad.yaml"
printf 'model:\n  layrs: 6\n' > "$tmp/typo.yaml"
expect "train: unknown key" 1 "did you mean 'layers'" -- "$train" "$tmp/typo.yaml"
printf 'data:\n  train: a.tsv\n  dev: b.tsv\n  test: c.tsv\nrun:\n  dir: %s/run\n' "$tmp" > "$tmp/ok.yaml"
expect "train: bad override" 1 "override 'train.lr=abc'" -- "$train" "$tmp/ok.yaml" train.lr=abc
expect "train: missing data file" 1 "data.train: a.tsv: cannot read it; expected a TSV file" -- "$train" "$tmp/ok.yaml" tokenizer.vocab=/dev/null
expect "train: text pairs need two segment types" 1 "need model.type_vocab >= 2 (found 1)" -- "$train" "$tmp/ok.yaml" model.type_vocab=1 data.text_b_column=b
expect "train: unknown backbone" 1 "model.arch: invalid value 'vitt', expected one of: bert, albert, gpt2, vit" -- "$train" "$tmp/ok.yaml" model.arch=vitt
expect "train: ViT given text" 1 "data.train: a.tsv: model.arch vit reads images: expected a .npz file" -- "$train" "$tmp/ok.yaml" model.arch=vit
expect "train: ViT given a tokenizer" 1 "tokenizer.kind 'wordpiece' given, but model.arch vit reads images" -- "$train" "$tmp/ok.yaml" model.arch=vit tokenizer.kind=wordpiece
expect "train: tokenizer kind of another arch" 1 "tokenizer.kind 'wordpiece' is not one of model.arch gpt2's (bpe)" -- "$train" "$tmp/ok.yaml" model.arch=gpt2 tokenizer.kind=wordpiece
expect "train: more ALBERT groups than layers" 1 "model.hidden_groups (7) exceeds model.layers (6)" -- "$train" "$tmp/ok.yaml" model.arch=albert model.hidden_groups=7
# readable splits and a vocabulary, so that the tokenizer is what gets refused
printf 'text\tlabel\nw1 w2\tA\nw2\tB\n' > "$tmp/a.tsv"
printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\nw1\nw2\n' > "$tmp/vocab.txt"
printf 'data:\n  train: %s/a.tsv\n  dev: %s/a.tsv\n  test: %s/a.tsv\ntokenizer:\n  vocab: %s/vocab.txt\nrun:\n  dir: %s/run\n' "$tmp" "$tmp" "$tmp" "$tmp" "$tmp" > "$tmp/data.yaml"
printf '[UNK]\n[CLS]\n[SEP]\nw1\nw2\n' > "$tmp/no_pad.txt"
expect "train: vocabulary without [PAD]" 1 "no_pad.txt: vocabulary has no [PAD] line" -- "$train" "$tmp/data.yaml" tokenizer.vocab="$tmp/no_pad.txt"
expect "train: GPT-2 without its merges" 1 "tokenizer bpe: no file given for its merges.txt" -- "$train" "$tmp/data.yaml" model.arch=gpt2
expect "train: GPT-2 is cased" 1 "tokenizer.lowercase" -- "$train" "$tmp/data.yaml" model.arch=gpt2 tokenizer.merges="$tmp/vocab.txt"
expect "train: ALBERT's SentencePiece needs a model" 1 "$tmp/vocab.txt:" -- "$train" "$tmp/data.yaml" model.arch=albert
# images: a text backbone given an .npz, a ViT given a broken or foreign .npz, or labels outside train's classes
printf 'PK\003\004 not really a zip' > "$tmp/bad.npz"
printf 'data:\n  train: %s/bad.npz\n  dev: %s/bad.npz\n  test: %s/bad.npz\nrun:\n  dir: %s/run\n' "$tmp" "$tmp" "$tmp" "$tmp" > "$tmp/img.yaml"
expect "train: text backbone given images" 1 "bad.npz: is image data, but model.arch bert reads text" -- "$train" "$tmp/img.yaml" tokenizer.vocab="$tmp/vocab.txt"
expect "train: corrupt .npz" 1 "bad.npz" -- "$train" "$tmp/img.yaml" model.arch=vit
mkdir -p "$tmp/imgdir"
expect "train: empty image folder" 1 "imgdir" -- "$train" "$tmp/img.yaml" model.arch=vit data.train="$tmp/imgdir"
expect "infer: --tokenize needs --input" 2 "--tokenize needs --input" -- "$infer" "$tmp/text.h5" --tokenize
# run folders: what is not one, or has no checkpoint yet, is said in one line; a bad input creates no folder
expect "train: resume a folder that is no run" 1 "$tmp/imgdir: not a run folder (no config.yaml): cannot resume" -- "$train" --resume "$tmp/imgdir"
expect "train: --overwrite without a config" 2 "no CONFIG.yaml after '--overwrite'" -- "$train" --overwrite
expect "train: bad input creates no run folder" 1 "data.train: a.tsv: cannot read it" -- "$train" "$tmp/ok.yaml" run.dir="$tmp/never" tokenizer.vocab=/dev/null
if [ -e "$tmp/never" ]; then fail=$((fail + 1)); echo "FAIL a refused run created its run folder"; else pass=$((pass + 1)); fi
# no arguments: the usage (several lines, no empty config-key list) and exit 2
"$train" > "$tmp/out" 2> "$tmp/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "^usage: epee-train" "$tmp/err" && ! grep -q "Config keys" "$tmp/err"; then
  pass=$((pass + 1)); echo "ok   train: no arguments prints the usage"
else
  fail=$((fail + 1)); echo "FAIL train: no arguments: rc $rc: $(cat "$tmp/err")"
fi
# scripts/quiet.sh: silent when the command works, its whole output and status when it fails
out=$(scripts/quiet.sh "$tmp/q.log" sh -c 'echo noisy; echo noisier >&2' 2>&1)
rc1=$?
out2=$(scripts/quiet.sh "$tmp/q.log" sh -c 'echo compiler says why; exit 3' 2>&1)
rc2=$?
if [ "$rc1" -eq 0 ] && [ -z "$out" ] && [ "$rc2" -eq 3 ] && printf '%s' "$out2" | grep -q "compiler says why"; then
  pass=$((pass + 1)); echo "ok   quiet.sh: silent build unless it fails"
else
  fail=$((fail + 1)); echo "FAIL quiet.sh: rc $rc1/$rc2, output '$out' / '$out2'"
fi
finish
