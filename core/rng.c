#include "core/rng.h"

#include <math.h>

float rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  uint64_t h = rng_hash(seed, stream, index);
  double u1 = ((double)(h >> 40) + 1.0) / 16777217.0; /* (0, 1]: log is finite */
  double u2 = (double)(h & 0xffffff) / 16777216.0;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void rng_fill_normal(float *x, int64_t n, float std, uint64_t seed, uint64_t stream) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) x[i] = std * rng_normal(seed, stream, (uint64_t)i);
}
