#!/usr/bin/env bash
# The hot elementwise loops are vectorised for AVX-512 AND AVX2: every loop under `#pragma omp simd` (or
# `omp parallel for simd`) in core/*.c must be reported by GCC as "vectorized using 64 byte vectors" and "using 32
# byte vectors", i.e. it sits in a function compiled per ISA (EPEE_VECTOR_CLONES, core/simd.h) and the vectoriser
# took it. The portable Release build targets the x86-64 baseline, so a loop outside a cloned function runs at
# SSE width (16 bytes) whatever the CPU. Fails naming each loop that is not.
# usage: vectorised.sh C_COMPILER
set -u
cc=${1:-gcc}
cd "$(dirname "$0")/.."
case "$($cc --version 2>/dev/null | head -1)" in
  *gcc*|*GCC*) ;;
  *) echo "SKIP: $cc is not GCC (the check reads GCC's -fopt-info-vec reports)"; exit 0 ;;
esac
fail=0 loops=0
for f in core/*.c; do
  grep -q "pragma omp.*simd" "$f" || continue
  # the Release flags of CMakeLists.txt (add_compile_options, CMAKE_C_FLAGS_RELEASE)
  report=$("$cc" -std=c11 -D_POSIX_C_SOURCE=200809L -fno-math-errno -O3 -fopenmp -I. -fopt-info-vec-optimized -c "$f" \
    -o /dev/null 2>&1)
  while IFS=: read -r line _; do
    loops=$((loops + 1))
    for width in 64 32; do
      # the report names the loop's `for` line (the next one), the first line of its body, or for some reductions
      # the pragma's own line
      if ! grep -qE "^$f:($line|$((line + 1))|$((line + 2))):[0-9]+: optimized: loop vectorized using $width byte vectors" \
        <<< "$report"; then
        echo "FAIL $f:$((line + 1)): not vectorised with $width-byte vectors"
        fail=$((fail + 1))
      fi
    done
  done < <(grep -n "pragma omp.*simd" "$f")
done
echo "$loops hot loops checked, $fail missing vector widths"
[ "$loops" -gt 0 ] && [ "$fail" -eq 0 ]
