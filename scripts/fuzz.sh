#!/usr/bin/env bash
# Fuzzes the untrusted-file readers with libFuzzer under ASan + UBSan (not part of CI: slow):
#   fuzz_npy          .npy headers, whole .npz archives, and .npz archives built from the input's two parts
#   fuzz_png          PNG decoding (chunk CRCs ignored, so that mutations reach the image data) and resizing
#   fuzz_safetensors  safetensors headers and the float conversions (seeds: the tests/fixtures/hf weights)
#   fuzz_hf_config    HF config.json mapped onto every backbone (seeds: the tests/fixtures/hf config.json files)
#   fuzz_jsonl        the JSON Lines dataset reader (seeds: a few lines written here)
# Usage: scripts/fuzz.sh [RUNS] [TARGET ...]   RUNS defaults to 1000000 per target (-runs=); targets run one
# after the other (one process each). Builds into build/fuzz/ against the data/ sources directly; the seed
# corpora are written there by fuzz/make_seeds.c (nothing binary is committed). Prints executions and crashes;
# exits non-zero if a target crashed (its reproducer is build/fuzz/<target>-crash-*).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1000000}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_npy fuzz_png fuzz_safetensors fuzz_hf_config fuzz_jsonl)
cc=${CC:-clang-14}
out=build/fuzz
libs="$(pkg-config --cflags --libs libzip spng) -lm"
srcs="data/npy.c data/png_read.c data/image_set.c data/readfile.c data/utf8.c"
mkdir -p "$out"
rm -rf "$out"/corpus_*
mkdir -p "$out/corpus_npy" "$out/corpus_png" "$out/corpus_safetensors" "$out/corpus_hf_config" "$out/corpus_jsonl"
for a in bert albert gpt2 vit; do
  cp "tests/fixtures/hf/$a/model.safetensors" "$out/corpus_safetensors/$a"
  cp "tests/fixtures/hf/$a/config.json" "$out/corpus_hf_config/$a"
done
printf '{"text": "caf\\u00e9 \\ud83d\\ude00", "label": "A", "id": 7}\n\n{"text": "b", "text_b": "c", "label": 2.5e3, "id": "x"}\r\n' \
  > "$out/corpus_jsonl/labelled"
printf '\xef\xbb\xbf{"text": "a\\tb", "meta": {"k": [1, null, true]}}\n' > "$out/corpus_jsonl/bom"
$cc -O1 -I. -D_POSIX_C_SOURCE=200809L fuzz/make_seeds.c -o "$out/make_seeds" $libs
"$out/make_seeds" "$out/corpus_npy" "$out/corpus_png"
status=0
for t in "${targets[@]}"; do
  [ -f "fuzz/$t.c" ] || { echo "fuzz: no fuzz/$t.c (targets: fuzz_npy fuzz_png fuzz_safetensors fuzz_hf_config fuzz_jsonl)" >&2; exit 2; }
  case $t in # what each target reads, and how long its inputs may be
    fuzz_safetensors) tsrcs="core/safetensors.c" tlibs="$(pkg-config --cflags --libs jansson) -lm" maxlen=65536 ;;
    fuzz_hf_config) tsrcs="models/*.c core/*.c" maxlen=8192 # (clang cannot vectorise the simd loops at -O1)
      tlibs="$(pkg-config --cflags --libs jansson hdf5-serial) -ldnnl -fopenmp -lm -Wno-pass-failed" ;;
    fuzz_jsonl) tsrcs="data/dataset_read.c data/readfile.c data/utf8.c" maxlen=4096
      tlibs="$(pkg-config --cflags --libs jansson) -lm" ;;
    *) tsrcs=$srcs tlibs=$libs maxlen=4096 ;;
  esac
  $cc -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Wall -Wextra -Werror -I. \
    -D_POSIX_C_SOURCE=200809L -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION "fuzz/$t.c" $tsrcs -o "$out/$t" $tlibs
  corpus="$out/corpus_${t#fuzz_}"
  rm -f "$out/$t"-crash-* "$out/$t"-leak-* "$out/$t"-timeout-* "$out/$t"-oom-*
  echo "=== $t: $runs runs, seeds $(ls "$corpus" | wc -l) in $corpus ==="
  set +e
  "$out/$t" -runs="$runs" -max_len="$maxlen" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/$t-" "$corpus" > "$out/$t.log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$t.log" | grep -o '[0-9]*$' || true)
  [ -n "$execs" ] || execs="$(grep -o '^#[0-9]*' "$out/$t.log" | tail -1 | tr -d '#') or more" # a crash skips the stats
  crashes=$(find "$out" -maxdepth 1 \( -name "$t-crash-*" -o -name "$t-leak-*" -o -name "$t-timeout-*" -o -name "$t-oom-*" \) | wc -l)
  echo "$t: ${execs:-?} executions, $crashes crashes (exit $rc; log $out/$t.log)"
  [ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ] || { status=1; grep -m1 -A20 'ERROR:\|SUMMARY' "$out/$t.log" || tail -20 "$out/$t.log"; }
done
exit $status
