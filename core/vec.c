#include "core/vec.h"

#include "core/simd.h"

EPEE_VECTOR_CLONES void vec_axpy(float *y, const float *x, float a, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

EPEE_VECTOR_CLONES void vec_add(float *y, const float *a, const float *b, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

EPEE_VECTOR_CLONES double vec_sumsq(const float *x, int64_t n) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return s;
}

EPEE_VECTOR_CLONES void vec_scale(float *y, float a, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] *= a;
}
