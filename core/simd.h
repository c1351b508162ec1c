/* Function multiversioning for our own vector loops. Release builds target the x86-64 baseline (portable: no
 * -march=native), which has no FMA and 128-bit vectors: fast_exp's fmaf became a libm call and the attention
 * softmax ran 4x slower. A function marked EPEE_VECTOR_CLONES is compiled for AVX-512 (x86-64-v4), AVX2 + FMA
 * (x86-64-v3) and the baseline, and its first call picks the one this CPU runs (GCC target_clones, an ifunc).
 * Mark the function that holds the loop, not one that holds an OpenMP region: the region's outlined body is not
 * cloned. A build for one ISA (cmake -DEPEE_ISA=..., defining EPEE_ONE_ISA) compiles everything for it instead. */
#ifndef EPEE_SIMD_H
#define EPEE_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(EPEE_ONE_ISA)
#define EPEE_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define EPEE_VECTOR_CLONES
#endif

#endif
