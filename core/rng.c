#include "core/rng.h"

#include <math.h>

/* splitmix64 finaliser applied to a mix of the three inputs: cheap, and its output passes BigCrush
 * when fed a counter, which is all we need for init and dropout masks. */
static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rng_hash(uint64_t seed, uint64_t stream, uint64_t index) {
  return mix64(mix64(seed * 0x9e3779b97f4a7c15ULL + stream) + index * 0x9e3779b97f4a7c15ULL);
}

float rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return (float)(rng_hash(seed, stream, index) >> 40) * (1.0f / 16777216.0f);
}

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
