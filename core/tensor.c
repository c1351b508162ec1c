#include "core/tensor.h"

#include <stdio.h>
#include <string.h>

#include "core/profile.h"
#include "core/progress.h"

void ctx_init(epee_ctx *c, size_t act_bytes, uint64_t seed) {
  memset(c, 0, sizeof *c);
  arena_init(&c->act, "activations", act_bytes);
  c->seed = seed;
  c->grad_mode = 1;
}

void ctx_free(epee_ctx *c) {
  arena_free(&c->act);
  free(c->tape.entries);
  memset(c, 0, sizeof *c);
}

void ctx_reset(epee_ctx *c) {
  arena_reset(&c->act);
  c->tape.n = 0;
  c->dropout_calls = 0;
  if (c->prof) prof_start(c->prof);
}

int64_t shape_numel(int ndim, const int *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

tensor *tensor_new_at(epee_ctx *c, int ndim, const int *shape, const char *file, int line) {
  if (ndim < 1 || ndim > EPEE_MAX_DIMS) epee_fatal_at(file, line, "tensor_new: %d dims (1..4 supported)", ndim);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0) epee_fatal_at(file, line, "tensor_new: negative dim %d at %d", shape[i], i);
  tensor *t = arena_alloc_at(&c->act, sizeof *t, file, line);
  memset(t, 0, sizeof *t);
  t->ndim = ndim;
  memcpy(t->shape, shape, sizeof(int) * (size_t)ndim);
  t->n = shape_numel(ndim, shape);
  t->data = arena_alloc_at(&c->act, (size_t)t->n * sizeof(float), file, line);
  return t;
}

tensor *tensor_new2(epee_ctx *c, int d0, int d1) { return tensor_new(c, 2, ((int[]){d0, d1})); }
tensor *tensor_new3(epee_ctx *c, int d0, int d1, int d2) { return tensor_new(c, 3, ((int[]){d0, d1, d2})); }

tensor *tensor_wrap(epee_ctx *c, float *data, int ndim, const int *shape) {
  EPEE_CHECK(ndim >= 1 && ndim <= EPEE_MAX_DIMS, "tensor_wrap takes 1..4 dims");
  tensor *t = arena_alloc(&c->act, sizeof *t);
  memset(t, 0, sizeof *t);
  t->ndim = ndim;
  memcpy(t->shape, shape, sizeof(int) * (size_t)ndim);
  t->n = shape_numel(ndim, shape);
  t->data = data;
  t->is_leaf = 1;
  return t;
}

float *tensor_grad(epee_ctx *c, tensor *t) {
  if (!t->grad) t->grad = arena_calloc(&c->act, (size_t)t->n * sizeof(float));
  return t->grad;
}

const char *tensor_shape_str(const tensor *t, char *buf, int len) {
  if (!t) {
    snprintf(buf, (size_t)len, "(none)");
    return buf;
  }
  int k = snprintf(buf, (size_t)len, "[");
  for (int i = 0; i < t->ndim && k < len; i++) k += snprintf(buf + k, (size_t)(len - k), i ? ", %d" : "%d", t->shape[i]);
  if (k < len) snprintf(buf + k, (size_t)(len - k), "]");
  return buf;
}

void op_fail(const char *op, const char *file, int line, const char *what, int nt, tensor *const *ts) {
  char shapes[512] = "", buf[64];
  int k = 0;
  for (int i = 0; i < nt && k < (int)sizeof shapes; i++)
    k += snprintf(shapes + k, sizeof shapes - (size_t)k, "%s%s", i ? ", " : "", tensor_shape_str(ts[i], buf, sizeof buf));
  epee_fatal_at(file, line, "%s: %s (operand shapes: %s)", op, what, shapes);
}

int tape_wants(const epee_ctx *c, int nin, tensor *const *in) {
  int need = 0;
  for (int i = 0; i < nin; i++) need |= in[i] && in[i]->requires_grad;
  return c->grad_mode && need;
}

tape_entry *tape_record(epee_ctx *c, const char *op, backward_fn bw, tensor *out, int nin, tensor *const *in) {
  EPEE_CHECK(nin <= TAPE_MAX_IN, "an op has at most 4 tensor inputs");
  if (c->prof) prof_forward(c->prof, op, out, nin, (const tensor *const *)in); /* every op ends here */
  if (!tape_wants(c, nin, in)) return NULL;
  if (c->tape.n == c->tape.cap) {
    c->tape.cap = c->tape.cap ? 2 * c->tape.cap : 256;
    c->tape.entries = epee_realloc(c->tape.entries, sizeof(tape_entry) * (size_t)c->tape.cap);
  }
  tape_entry *e = &c->tape.entries[c->tape.n++];
  memset(e, 0, sizeof *e);
  e->op = op;
  e->backward = bw;
  e->out = out;
  for (int i = 0; i < nin; i++) e->in[i] = in[i];
  out->requires_grad = 1;
  out->is_leaf = 0;
  return e;
}

void tape_backward(epee_ctx *c, tensor *out, const float *dout) {
  EPEE_CHECK(out->requires_grad, "the output does not depend on any parameter (or grad mode was off)");
  double t0 = c->prof ? now_seconds() : 0;
  /* zero non-leaf grads so that a second backward over the same tape adds exactly one more gradient */
  for (int i = 0; i < c->tape.n; i++) {
    tensor *o = c->tape.entries[i].out;
    if (o->grad) memset(o->grad, 0, sizeof(float) * (size_t)o->n);
  }
  float *g = tensor_grad(c, out);
  for (int64_t i = 0; i < out->n; i++) g[i] = dout ? dout[i] : 1.0f;
  if (c->prof) prof_add(c->prof, "activation_grads", PROF_BACKWARD, now_seconds() - t0, 0);
  for (int i = c->tape.n - 1; i >= 0; i--) {
    tape_entry *e = &c->tape.entries[i];
    if (!e->out->grad) continue; /* nothing downstream of this op reached the loss */
    if (c->prof) t0 = now_seconds(); /* the input grads' first-use zeroing counts as the op's */
    for (int k = 0; k < TAPE_MAX_IN; k++)
      if (e->in[k] && e->in[k]->requires_grad) tensor_grad(c, e->in[k]);
    e->backward(e);
    if (c->prof) prof_backward(c->prof, e->op, e->out, TAPE_MAX_IN, (const tensor *const *)e->in, now_seconds() - t0);
  }
}
