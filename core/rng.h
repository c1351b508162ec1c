/* Counter-based random numbers: value = f(seed, stream, index). Any element can be drawn independently,
 * so parallel loops give the same numbers whatever the thread count or schedule, and a run resumed at
 * step s draws exactly what the uninterrupted run would (the state is just (seed, counters)). */
#ifndef EPEE_RNG_H
#define EPEE_RNG_H

#include <stdint.h>

uint64_t rng_hash(uint64_t seed, uint64_t stream, uint64_t index); /* 64 well-mixed bits */
float rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);  /* in [0, 1) with 24-bit resolution */
float rng_normal(uint64_t seed, uint64_t stream, uint64_t index);   /* N(0, 1), Box-Muller */
/* fill x[n] with N(0, std) from (seed, stream) */
void rng_fill_normal(float *x, int64_t n, float std, uint64_t seed, uint64_t stream);

#endif
