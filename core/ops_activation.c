/* Elementwise activations: GELU erf form (BERT, ViT), GELU tanh form (GPT-2 "gelu_new"), tanh (pooler).
 *
 * GELU runs over [B*T, 4D] in every layer, forward and backward, and glibc's erff/tanhf are scalar calls
 * (about 20 ns each on the development machine). So the kernels use branch-free float approximations
 * that GCC vectorises (AVX-512: 16 lanes), with relative error below 1e-5 against double math over the
 * whole range (tests/test_ops_nn.c checks it on a dense grid):
 *   exp   Cephes expf: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial, 2^n from the exponent bits;
 *   tanh  Cephes tanhf: odd polynomial for |x| < 0.625, 1 - 2 / (e^(2|x|) + 1) above;
 *   Phi   normal CDF from the Numerical Recipes erfc (fractional error < 1.2e-7), evaluated on the
 *         tail, so GELU of a negative x keeps its relative accuracy (PyTorch's 1 + erf(x) cancels there).
 * GELU tanh form uses the identity 0.5 (1 + tanh(u)) = 1 / (1 + e^(-2u)): the same function, no
 * cancellation. */
#include <math.h>
#include <stdint.h>

#include "core/fast_exp.h"
#include "core/ops.h"
#include "core/simd.h"

#define SQRT_2_OVER_PI 0.7978845608028654f
#define INV_SQRT_2PI 0.3989422804014327f
#define GELU_C 0.044715f

static inline float vtanh(float x) {
  float s = x * x;
  float poly = fmaf(fmaf(fmaf(fmaf(-5.70498872745e-3f, s, 2.06390887954e-2f), s, -5.37397155531e-2f), s,
                         1.33314422036e-1f), s, -3.33332819422e-1f);
  float small = fmaf(poly * s, x, x);
  float big = copysignf(1.0f - 2.0f / (fast_exp(2.0f * fabsf(x)) + 1.0f), x);
  return fabsf(x) < 0.625f ? small : big;
}

/* Phi(x) = P(N(0,1) <= x) = 1 - tail or tail, tail = erfc(|x| / sqrt 2) / 2 */
static inline float vphi(float x) {
  float z = fabsf(x) * 0.7071067811865476f;
  float t = 1.0f / fmaf(0.5f, z, 1.0f);
  float q = fmaf(t, 0.17087277f, -0.82215223f);
  q = fmaf(t, q, 1.48851587f);
  q = fmaf(t, q, -1.13520398f);
  q = fmaf(t, q, 0.27886807f);
  q = fmaf(t, q, -0.18628806f);
  q = fmaf(t, q, 0.09678418f);
  q = fmaf(t, q, 0.37409196f);
  q = fmaf(t, q, 1.00002368f);
  q = fmaf(t, q, -1.26551223f);
  float tail = 0.5f * t * fast_exp(q - z * z);
  return x > 0.0f ? 1.0f - tail : tail;
}

/* GELU erf form: x Phi(x); derivative Phi(x) + x phi(x) */
static inline float gelu_f(float x) { return x * vphi(x); }
static inline float gelu_df(float x) { return vphi(x) + x * INV_SQRT_2PI * fast_exp(-0.5f * x * x); }

/* GELU tanh form: x sigma(2u), u = sqrt(2/pi) (x + 0.044715 x^3); derivative sigma + 2 x sigma (1 - sigma) u' */
static inline float gelu_tanh_f(float x) {
  float u = SQRT_2_OVER_PI * fmaf(GELU_C * x, x * x, x);
  return x / (1.0f + fast_exp(-2.0f * u));
}
static inline float gelu_tanh_df(float x) {
  float u = SQRT_2_OVER_PI * fmaf(GELU_C * x, x * x, x);
  float s = 1.0f / (1.0f + fast_exp(-2.0f * u));
  float du = SQRT_2_OVER_PI * fmaf(3.0f * GELU_C * x, x, 1.0f);
  return s + 2.0f * x * s * (1.0f - s) * du;
}

/* Threads take blocks of CHUNK elements; each block runs in a kernel compiled per ISA (core/simd.h). */
#define CHUNK 4096

/* dx[n] += dy[n] f'(x); tanh uses its output: f' = 1 - y^2 */
EPEE_VECTOR_CLONES static void act_backward_chunk(act_kind kind, const float *x, const float *y, const float *dy,
                                                  float *dx, int64_t n) {
  switch (kind) {
  case ACT_GELU:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * gelu_df(x[i]);
    break;
  case ACT_GELU_TANH:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * gelu_tanh_df(x[i]);
    break;
  case ACT_TANH:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
    break;
  case ACT_NONE:
    break;
  }
}

EPEE_VECTOR_CLONES void act_kernel(act_kind kind, const float *x, float *y, int64_t n) {
  switch (kind) {
  case ACT_GELU:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = gelu_f(x[i]);
    break;
  case ACT_GELU_TANH:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = gelu_tanh_f(x[i]);
    break;
  case ACT_TANH:
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = vtanh(x[i]);
    break;
  case ACT_NONE:
    break;
  }
}

EPEE_VECTOR_CLONES void act_grad_kernel(act_kind kind, const float *x, const float *dy, float *dx, int64_t n) {
  EPEE_CHECK(kind == ACT_GELU || kind == ACT_GELU_TANH, "act_grad_kernel takes the GELU forms only");
  if (kind == ACT_GELU) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_df(x[i]);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_tanh_df(x[i]);
  }
}

static void act_backward(tape_entry *e) {
  const float *x = e->in[0]->data, *y = e->out->data, *dy = e->out->grad;
  float *dx = e->in[0]->grad;
  int64_t n = e->in[0]->n;
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < n; o += CHUNK)
    act_backward_chunk((act_kind)e->iarg[0], x + o, y + o, dy + o, dx + o, n - o < CHUNK ? n - o : CHUNK);
}

/* x -> f(x), same shape */
static tensor *activation(epee_ctx *c, tensor *x, act_kind kind, const char *name, OP_LOC) {
  tensor *y = tensor_new_at(c, x->ndim, x->shape, file, line);
  const float *px = x->data;
  float *py = y->data;
  int64_t n = x->n;
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < n; o += CHUNK) act_kernel(kind, px + o, py + o, n - o < CHUNK ? n - o : CHUNK);
  tape_entry *e = tape_record(c, name, act_backward, y, 1, &x);
  if (e) e->iarg[0] = kind;
  return y;
}

tensor *op_gelu_at(epee_ctx *c, tensor *x, OP_LOC) { return activation(c, x, ACT_GELU, "gelu", file, line); }
tensor *op_gelu_tanh_at(epee_ctx *c, tensor *x, OP_LOC) {
  return activation(c, x, ACT_GELU_TANH, "gelu_tanh", file, line);
}
tensor *op_tanh_at(epee_ctx *c, tensor *x, OP_LOC) { return activation(c, x, ACT_TANH, "tanh", file, line); }
