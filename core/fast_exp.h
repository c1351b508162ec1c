/* e^x written so that loops over it vectorise (glibc's expf is a scalar call): 2^n e^r with
 * r = x - n ln2, |r| <= ln2/2, Cephes' expf polynomial (about 1 ulp). Below -87 (underflow; masked
 * softmax entries) the result is exactly 0; above 88 it saturates at e^88; NaN propagates.
 * Shared by the activations and the attention softmax. */
#ifndef EPEE_FAST_EXP_H
#define EPEE_FAST_EXP_H

#include <math.h>
#include <stdint.h>

static inline float fast_exp(float x0) {
  /* Above 88, e^88; a NaN falls through (the compare is false). Below -87 the result is replaced by 0 at the
   * end, so no lower clamp: only the bits' integer arithmetic sees those values, and it is defined for all. */
  float x = x0 > 88.0f ? 88.0f : x0;
  /* n = round(x / ln2) by the 1.5 * 2^23 shifter (floorf does not vectorise in GCC without fast-math); the
   * shifted float's low mantissa bits then hold n, and 2^n is n + 127 moved into the exponent field */
  float shifted = fmaf(x, 1.44269504088896341f, 12582912.0f);
  float n = shifted - 12582912.0f;
  float r = fmaf(n, -0.693359375f, x); /* ln2 split in two: r is exact to float precision */
  r = fmaf(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = fmaf(p, r, 1.3981999507e-3f);
  p = fmaf(p, r, 8.3334519073e-3f);
  p = fmaf(p, r, 4.1665795894e-2f);
  p = fmaf(p, r, 1.6666665459e-1f);
  p = fmaf(p, r, 5.0000001201e-1f);
  p = fmaf(p, r * r, r + 1.0f);
  union { float f; uint32_t i; } bits = {.f = shifted}, scale;
  scale.i = (bits.i - 0x4B400000u + 127u) << 23;
  return x0 < -87.0f ? 0.0f : p * scale.f;
}

#endif
