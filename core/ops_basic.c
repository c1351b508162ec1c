/* Structural ops: residual add, weighted sum (multi-exit loss), narrow, reshape. */
#include <string.h>

#include "core/ops.h"
#include "core/vec.h"

static int same_shape(const tensor *a, const tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

/* ---- add: a, b [same shape] -> a + b ---- */
enum { CHUNK = 4096 }; /* threads take blocks of CHUNK elements, each run by a per-ISA kernel (core/vec.h) */

static void add_backward(tape_entry *e) {
  const float *g = e->out->grad;
  for (int k = 0; k < 2; k++) {
    tensor *x = e->in[k];
    if (!x->requires_grad) continue;
    float *dx = x->grad;
    int64_t n = x->n;
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < n; o += CHUNK) vec_axpy(dx + o, g + o, 1.0f, n - o < CHUNK ? n - o : CHUNK);
  }
}

tensor *op_add_at(epee_ctx *c, tensor *a, tensor *b, OP_LOC) {
  OP_CHECK(same_shape(a, b), "add", file, line, "operands must have the same shape", a, b);
  tensor *y = tensor_new_at(c, a->ndim, a->shape, file, line);
  const float *pa = a->data, *pb = b->data;
  float *py = y->data;
  int64_t n = y->n;
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < n; o += CHUNK) vec_add(py + o, pa + o, pb + o, n - o < CHUNK ? n - o : CHUNK);
  tape_record(c, "add", add_backward, y, 2, (tensor *[]){a, b});
  return y;
}

/* ---- narrow: x[..., N] -> [..., len], columns [start, start + len) ---- */
static void narrow_backward(tape_entry *e) {
  tensor *x = e->in[0];
  if (!x->requires_grad) return;
  int N = e->iarg[0], start = e->iarg[1], len = e->iarg[2];
  int64_t rows = x->n / N;
  const float *g = e->out->grad;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++)
    for (int j = 0; j < len; j++) x->grad[r * N + start + j] += g[r * len + j];
}

tensor *op_narrow_at(epee_ctx *c, tensor *x, int start, int len, OP_LOC) {
  int N = x->shape[x->ndim - 1];
  OP_CHECK(start >= 0 && len >= 1 && start + len <= N, "narrow", file, line, "columns outside the last dim", x);
  int shape[EPEE_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
  shape[x->ndim - 1] = len;
  tensor *y = tensor_new_at(c, x->ndim, shape, file, line);
  int64_t rows = x->n / N;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) memcpy(y->data + r * len, x->data + r * N + start, sizeof(float) * (size_t)len);
  tape_entry *e = tape_record(c, "narrow", narrow_backward, y, 1, (tensor *[]){x});
  if (e) e->iarg[0] = N, e->iarg[1] = start, e->iarg[2] = len;
  return y;
}

/* ---- weighted sum: xs[n] (same shape), w[n] -> sum_i w_i xs_i ---- */
static void weighted_sum_backward(tape_entry *e) {
  const float *w = e->saved[0];
  tensor *const *xs = e->saved[1];
  int n = e->iarg[0];
  const float *g = e->out->grad;
  for (int k = 0; k < n; k++) {
    if (!xs[k]->requires_grad) continue;
    for (int64_t i = 0; i < xs[k]->n; i++) xs[k]->grad[i] += w[k] * g[i];
  }
}

tensor *op_weighted_sum_at(epee_ctx *c, int n, tensor *const *xs, const float *w, OP_LOC) {
  OP_CHECK(n >= 1, "weighted_sum", file, line, "needs at least one operand", NULL);
  for (int k = 1; k < n; k++)
    OP_CHECK(same_shape(xs[0], xs[k]), "weighted_sum", file, line, "operands must have the same shape", xs[0], xs[k]);
  tensor *y = tensor_new_at(c, xs[0]->ndim, xs[0]->shape, file, line);
  for (int64_t i = 0; i < y->n; i++) {
    float s = 0.0f;
    for (int k = 0; k < n; k++) s += w[k] * xs[k]->data[i];
    y->data[i] = s;
  }
  /* the tape holds up to 4 inputs; the operand list and weights are saved instead */
  int need = 0;
  for (int k = 0; k < n; k++) need |= xs[k]->requires_grad;
  if (c->grad_mode && need) {
    tensor *dummy = xs[0]->requires_grad ? xs[0] : NULL;
    for (int k = 0; k < n && !dummy; k++)
      if (xs[k]->requires_grad) dummy = xs[k];
    tape_entry *e = tape_record(c, "weighted_sum", weighted_sum_backward, y, 1, &dummy);
    float *ws = arena_alloc(&c->act, sizeof(float) * (size_t)n);
    tensor **saved = arena_alloc(&c->act, sizeof(tensor *) * (size_t)n);
    memcpy(ws, w, sizeof(float) * (size_t)n);
    memcpy(saved, xs, sizeof(tensor *) * (size_t)n);
    for (int k = 0; k < n; k++)
      if (xs[k]->requires_grad) tensor_grad(c, xs[k]);
    e->saved[0] = ws;
    e->saved[1] = saved;
    e->iarg[0] = n;
  }
  return y;
}

/* ---- reshape: x -> same data, new shape; grad copied back ---- */
static void reshape_backward(tape_entry *e) {
  float *dx = e->in[0]->grad;
  const float *g = e->out->grad;
  for (int64_t i = 0; i < e->out->n; i++) dx[i] += g[i];
}

tensor *op_reshape_at(epee_ctx *c, tensor *x, int ndim, const int *shape, OP_LOC) {
  OP_CHECK(ndim >= 1 && ndim <= EPEE_MAX_DIMS && shape_numel(ndim, shape) == x->n, "reshape", file, line,
           "new shape must have 1..4 dims and the same number of elements", x);
  tensor *y = arena_alloc_at(&c->act, sizeof *y, file, line);
  memset(y, 0, sizeof *y);
  y->ndim = ndim;
  memcpy(y->shape, shape, sizeof(int) * (size_t)ndim);
  y->n = x->n;
  y->data = x->data;
  tape_record(c, "reshape", reshape_backward, y, 1, &x);
  return y;
}
