/* Elementwise activations: GELU (erf form, BERT/ViT), GELU (tanh form, GPT-2 "gelu_new"), tanh. */
#include <math.h>

#include "core/ops.h"

enum { ACT_GELU, ACT_GELU_TANH, ACT_TANH };
#define SQRT_2_OVER_PI 0.7978845608028654f

static inline float act_f(int kind, float x) {
  switch (kind) {
  case ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
  case ACT_GELU_TANH: return 0.5f * x * (1.0f + tanhf(SQRT_2_OVER_PI * (x + 0.044715f * x * x * x)));
  default: return tanhf(x);
  }
}

static inline float act_df(int kind, float x, float y) {
  switch (kind) {
  case ACT_GELU: /* Phi(x) + x phi(x) */
    return 0.5f * (1.0f + erff(x * 0.7071067811865476f)) + x * 0.3989422804014327f * expf(-0.5f * x * x);
  case ACT_GELU_TANH: {
    float u = SQRT_2_OVER_PI * (x + 0.044715f * x * x * x), t = tanhf(u);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3 * 0.044715f * x * x);
  }
  default: return 1.0f - y * y;
  }
}

static void act_backward(tape_entry *e) {
  tensor *x = e->in[0], *y = e->out;
  int kind = e->iarg[0];
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < x->n; i++) x->grad[i] += y->grad[i] * act_df(kind, x->data[i], y->data[i]);
}

/* x -> f(x), same shape */
static tensor *activation(epee_ctx *c, tensor *x, int kind, const char *name, OP_LOC) {
  tensor *y = tensor_new_at(c, x->ndim, x->shape, file, line);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < x->n; i++) y->data[i] = act_f(kind, x->data[i]);
  tape_entry *e = tape_record(c, name, act_backward, y, 1, &x);
  if (e) e->iarg[0] = kind;
  return y;
}

tensor *op_gelu_at(epee_ctx *c, tensor *x, OP_LOC) { return activation(c, x, ACT_GELU, "gelu", file, line); }
tensor *op_gelu_tanh_at(epee_ctx *c, tensor *x, OP_LOC) { return activation(c, x, ACT_GELU_TANH, "gelu_tanh", file, line); }
tensor *op_tanh_at(epee_ctx *c, tensor *x, OP_LOC) { return activation(c, x, ACT_TANH, "tanh", file, line); }
