#!/usr/bin/env bash
# The hot elementwise loops are vectorised for AVX-512 AND AVX2: every loop under `#pragma omp simd` (or
# `omp parallel for simd`) in core/*.c must be reported by GCC as "vectorized using 64 byte vectors" and "using 32
# byte vectors", i.e. it sits in a function compiled per ISA (EPEE_VECTOR_CLONES, core/simd.h) and the vectoriser
# took it. The portable Release build targets the x86-64 baseline, so a loop outside a cloned function runs at
# SSE width (16 bytes) whatever the CPU. A build for one ISA (cmake -DEPEE_ISA=x86-64-v3: no clones) must vectorise
# them at 32 bytes too: it caught GCC leaving the GELU loops scalar there until -fno-trapping-math. Fails naming
# each loop that is not.
# usage: vectorised.sh C_COMPILER
set -u
cc=${1:-gcc}
cd "$(dirname "$0")/.."
case "$($cc --version 2>/dev/null | head -1)" in
  *gcc*|*GCC*) ;;
  *) echo "SKIP: $cc is not GCC (the check reads GCC's -fopt-info-vec reports)"; exit 0 ;;
esac
fail=0 loops=0
flags=(-std=c11 -D_POSIX_C_SOURCE=200809L -fno-math-errno -fno-trapping-math -O3 -fopenmp -I.)
for f in core/*.c; do
  grep -q "pragma omp.*simd" "$f" || continue
  # the Release flags of CMakeLists.txt (add_compile_options, CMAKE_C_FLAGS_RELEASE): portable, with the clones; and
  # a one-ISA AVX2 build (cmake -DEPEE_ISA=x86-64-v3), whose loops must vectorise without the clones' help
  report=$("$cc" "${flags[@]}" -fopt-info-vec-optimized -c "$f" -o /dev/null 2>&1)
  report_avx2=$("$cc" "${flags[@]}" -march=x86-64-v3 -DEPEE_ONE_ISA -fopt-info-vec-optimized -c "$f" -o /dev/null 2>&1)
  while IFS=: read -r line _; do
    loops=$((loops + 1))
    for build in "64 portable" "32 portable" "32 x86-64-v3"; do
      read -r width kind <<< "$build"
      r=$report
      [ "$kind" = portable ] || r=$report_avx2
      # the report names the loop's `for` line (the next one), the first line of its body, or for some reductions
      # the pragma's own line
      if ! grep -qE "^$f:($line|$((line + 1))|$((line + 2))):[0-9]+: optimized: loop vectorized using $width byte vectors" \
        <<< "$r"; then
        echo "FAIL $f:$((line + 1)): not vectorised with $width-byte vectors ($kind build)"
        fail=$((fail + 1))
      fi
    done
  done < <(grep -n "pragma omp.*simd" "$f")
done
echo "$loops hot loops checked, $fail missing vector widths"
[ "$loops" -gt 0 ] && [ "$fail" -eq 0 ]
