/* Elementwise float kernels shared by several ops (residual adds, gradient scatter, pooling), compiled per ISA
 * (core/simd.h) so the portable build runs them at AVX2 / AVX-512 width. Single-threaded: callers split work. */
#ifndef EPEE_VEC_H
#define EPEE_VEC_H

#include <stdint.h>

void vec_axpy(float *y, const float *x, float a, int64_t n);       /* y[n] += a x[n] */
void vec_add(float *y, const float *a, const float *b, int64_t n); /* y[n] = a[n] + b[n] */
void vec_scale(float *y, float a, int64_t n);                      /* y[n] *= a */
double vec_sumsq(const float *x, int64_t n);                       /* sum of x[i]^2, in double */

#endif
