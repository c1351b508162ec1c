#!/usr/bin/env bash
# `cmake --install` as a user meets it: the files in place (libepee.so with its SONAME, libepee.a, epee.h,
# epee.pc, the CMake package, the CLIs, their man pages, python/epee.py); libepee.so exporting only epee_*; a model
# trained by the installed epee-train; a small C program built against the tree with pkg-config (shared and
# static) and with find_package(epee), each classifying with that model; the Python module over libepee.so.
# usage: install_test.sh BUILD_DIR CC CFLAGS
set -u
build=$1 cc=$2 cflags=$3
source "$(dirname "$0")/cli_lib.sh"
prefix=$tmp/prefix
check "cmake --install" cmake --install "$build" --prefix "$prefix"
lib=$prefix/lib
ver=$(sed -n 's/^#define EPEE_VERSION_STRING "\(.*\)"$/\1/p' "$(dirname "$0")/../infer/epee.h")
for f in lib/libepee.so.0 lib/libepee.so lib/libepee.a include/epee.h lib/pkgconfig/epee.pc \
         lib/cmake/epee/epeeConfig.cmake lib/cmake/epee/epeeConfigVersion.cmake lib/cmake/epee/epeeTargets.cmake \
         bin/epee-train bin/epee-infer share/man/man1/epee-train.1 share/man/man1/epee-infer.1 \
         share/epee/python/epee.py; do
  check "installed $f" test -s "$prefix/$f"
done
check "SONAME libepee.so.0" sh -c "readelf -d '$lib/libepee.so' | grep -q 'SONAME.*\[libepee.so.0\]'"
nm -D --defined-only "$lib/libepee.so" | awk '{print $3}' > "$tmp/exports"
check "exports: epee_version and the API, nothing without the epee_ prefix" \
  sh -c "grep -qx epee_version '$tmp/exports' && grep -qx epee_classify_texts '$tmp/exports' && ! grep -v '^epee_' '$tmp/exports'"
check "man page of epee-train lists the config keys" grep -q "train.checkpoint_every_s" "$prefix/share/man/man1/epee-train.1"
check "epee-infer --version is epee.h's" sh -c "'$prefix/bin/epee-infer' --version | grep -qx 'epee-infer $ver'"
check "epee-train --version is epee.h's" sh -c "'$prefix/bin/epee-train' --version | grep -qx 'epee-train $ver'"
check "SONAME version and pkg-config version are epee.h's" sh -c "test -e '$lib/libepee.so.$ver' && \
  PKG_CONFIG_PATH='$lib/pkgconfig' pkg-config --modversion epee | grep -qx '$ver'"
# portable: nothing is compiled for the build machine's CPU (oneDNN picks its kernels at run time)
check "no -march=native in any compile command" sh -c "! grep -q -- '-march=native' '$build/compile_commands.json'"

# a tiny model from the installed trainer: label A when the text starts with w1
printf 'text\tlabel\n' > "$tmp/d.tsv"
for i in 1 2 3 4 5 6 7 8; do printf 'w1 w2\tA\nw2 w1 w2\tB\nw1\tA\nw2\tB\n' >> "$tmp/d.tsv"; done
printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\nw1\nw2\n' > "$tmp/vocab.txt"
printf 'data:\n  train: %s\n  dev: %s\n  test: %s\nrun:\n  dir: %s\n' "$tmp/d.tsv" "$tmp/d.tsv" "$tmp/d.tsv" "$tmp/run" \
  > "$tmp/tiny.yaml"
check "installed epee-train trains a model" "$prefix/bin/epee-train" "$tmp/tiny.yaml" tokenizer.vocab="$tmp/vocab.txt" \
  model.layers=2 model.hidden=8 model.heads=2 model.intermediate=16 model.max_position=8 tokenizer.max_length=8 \
  train.max_steps=4 train.batch_size=8 run.threads=1
model=$tmp/run/model.h5

cat > "$tmp/prog.c" <<'C'
#include <epee.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
  if (strcmp(epee_version(), EPEE_VERSION_STRING)) return 1;
  char err[512];
  if (epee_model_load("/nonexistent.h5", err, sizeof err) || !strstr(err, "/nonexistent.h5")) return 2;
  epee_model *m = epee_model_load(argv[1], err, sizeof err);
  if (!m) return fprintf(stderr, "%s\n", err), 3;
  epee_session *s = epee_session_new(m, 4, err, sizeof err);
  const char *texts[2] = {"w1 w2", "w2"};
  int label[2], layer[2];
  if (!s || epee_classify_texts(s, 2, texts, NULL, NULL, label, layer, NULL, NULL)) return 4;
  printf("%s %s after %d and %d of %d layers\n", epee_model_label(m, label[0]), epee_model_label(m, label[1]),
         layer[0], layer[1], epee_model_num_layers(m));
  epee_session_free(s);
  epee_model_free(m);
  return argc == 2 ? 0 : 5;
}
C
export PKG_CONFIG_PATH=$lib/pkgconfig
# shellcheck disable=SC2086 # cflags and pkg-config's output are lists of words
check "pkg-config: build and run against libepee.so" sh -c "$cc $cflags '$tmp/prog.c' \$(pkg-config --cflags --libs epee) \
  -Wl,-rpath,'$lib' -o '$tmp/prog_shared' && '$tmp/prog_shared' '$model' && ldd '$tmp/prog_shared' | grep -q '$lib/libepee.so.0'"
check "pkg-config --static: build and run against libepee.a" sh -c "$cc $cflags '$tmp/prog.c' \$(pkg-config --cflags epee) \
  '$lib/libepee.a' \$(pkg-config --static --libs epee | sed 's/-lepee//') -o '$tmp/prog_static' && \
  '$tmp/prog_static' '$model' && ! ldd '$tmp/prog_static' | grep -q libepee"
mkdir -p "$tmp/cm"
cp "$tmp/prog.c" "$tmp/cm/"
cat > "$tmp/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(uses_epee C)
find_package(epee 0.1 REQUIRED)
add_executable(prog prog.c)
target_link_libraries(prog PRIVATE epee::epee)
CM
check "find_package(epee) -> epee::epee: build and run" sh -c "cmake -S '$tmp/cm' -B '$tmp/cm/b' \
  -DCMAKE_PREFIX_PATH='$prefix' -DCMAKE_C_COMPILER='$cc' -DCMAKE_C_FLAGS='$cflags' && cmake --build '$tmp/cm/b' && \
  '$tmp/cm/b/prog' '$model'"

# Python: the system python3 and the installed module, which finds PREFIX/lib/libepee.so.0 by itself
py=/usr/bin/python3
env=(PYTHONPATH="$prefix/share/epee/python")
case "$cflags" in # an ASan-built library needs its runtime loaded first, and python's own leaks are not ours
  *-fsanitize=address*) env+=(LD_PRELOAD="$($cc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0) ;;
esac
cat > "$tmp/t.py" <<'PY'
import sys, epee
m = epee.Model(sys.argv[1])
r = m.classify(["w1 w2", "w2", "w1"])
assert m.label_names == ["A", "B"], m.label_names
assert len(r.labels) == 3 and all(l in m.label_names for l in r.labels), r.labels
assert all(1 <= k <= m.num_layers for k in r.exit_layers), r.exit_layers
assert all(abs(sum(p) - 1) < 1e-5 and len(p) == 2 for p in r.probabilities), r.probabilities
full = m.classify(["w1 w2"], policy="none")
assert full.exit_layers == [m.num_layers], full.exit_layers
assert epee.version() == sys.argv[2], epee.version()
try:
    epee.Model(sys.argv[1] + ".missing")
    raise SystemExit("a missing model file was accepted")
except epee.EpeeError as e:
    assert ".missing" in str(e), e
print("python:", r)
PY
check "python3: epee.Model(path).classify([...]) over the installed libepee.so" env "${env[@]}" "$py" "$tmp/t.py" "$model" "$ver"
finish
