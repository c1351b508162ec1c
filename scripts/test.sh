#!/usr/bin/env bash
# The test command: installs what is missing, builds from scratch with warnings as errors, runs the
# whole CTest suite in a Release build and again under AddressSanitizer + UBSan.
# Tests that need fetched data fetch it (scripts/fetch_data.sh) and skip loudly only if that fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ ! -f data/cache/vocab/vocab.txt ] || [ ! -f data/cache/go/train.tsv ] || [ ! -f data/cache/spm/go.model ] ||
   [ ! -f data/cache/gpt2/vocab.json ] || [ ! -f data/cache/mnist/mnist.npz ]; then
  scripts/fetch_data.sh || echo "test: WARNING: data fetch failed; tests that need real data will say SKIP"
fi
jobs=$(nproc)
for type in Release Sanitize; do
  dir=build/test-$(echo "$type" | tr A-Z a-z)
  rm -rf "$dir"; mkdir -p build
  echo "=== $type build ($dir) ==="
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=$type -DEPEE_WERROR=ON > "$dir.cmake.log" 2>&1 || { cat "$dir.cmake.log"; exit 1; }
  cmake --build "$dir" -j"$jobs"
  echo "=== $type tests ==="
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
    ctest --test-dir "$dir" --output-on-failure --timeout 900
done
echo "test: all suites passed in Release and Sanitize builds"
