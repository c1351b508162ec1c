/* Counter-based random numbers: value = f(seed, stream, index). Any element can be drawn independently,
 * so parallel loops give the same numbers whatever the thread count or schedule, and a run resumed at
 * step s draws exactly what the uninterrupted run would (the state is just (seed, counters)).
 * Streams: dropout uses (step << 20) + call; parameter init uses 2^63 + parameter index. */
#ifndef EPEE_RNG_H
#define EPEE_RNG_H

#include <stdint.h>

/* splitmix64 finaliser over a mix of the inputs: cheap, and its output passes BigCrush when fed a
 * counter. Inline: dropout draws one per element on the hot path. */
static inline uint64_t rng_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* 64 well-mixed bits */
static inline uint64_t rng_hash(uint64_t seed, uint64_t stream, uint64_t index) {
  return rng_mix64(rng_mix64(seed * 0x9e3779b97f4a7c15ULL + stream) + index * 0x9e3779b97f4a7c15ULL);
}

/* in [0, 1) with 24-bit resolution */
static inline float rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return (float)(rng_hash(seed, stream, index) >> 40) * (1.0f / 16777216.0f);
}

float rng_normal(uint64_t seed, uint64_t stream, uint64_t index); /* N(0, 1), Box-Muller */
/* fill x[n] with N(0, std) from (seed, stream) */
void rng_fill_normal(float *x, int64_t n, float std, uint64_t seed, uint64_t stream);

#endif
