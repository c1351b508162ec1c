/* Dropout with counter-based masks: element i of call k at step s keeps iff
 * uniform(seed, (s << 20) + k, i) < 1 - p, so masks are reproducible, independent of the thread count,
 * and a resumed run draws exactly the masks of an uninterrupted one. The mask is not stored: backward
 * regenerates it from the same stream. */
#include "core/ops.h"
#include "core/rng.h"

static void dropout_backward(tape_entry *e) {
  tensor *x = e->in[0];
  const uint64_t *st = e->saved[0];
  float keep = e->farg[0], inv = 1.0f / keep;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < x->n; i++)
    if (rng_uniform(st[0], st[1], (uint64_t)i) < keep) x->grad[i] += e->out->grad[i] * inv;
}

/* x -> x * m / (1 - p) */
tensor *op_dropout_at(epee_ctx *c, tensor *x, float p, OP_LOC) {
  OP_CHECK(p >= 0.0f && p < 1.0f, "dropout", file, line, "p must be in [0, 1)", x);
  if (!c->training || p == 0.0f) return x;
  uint64_t stream = (c->step << 20) + c->dropout_calls++;
  float keep = 1.0f - p, inv = 1.0f / keep;
  tensor *y = tensor_new_at(c, x->ndim, x->shape, file, line);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < x->n; i++) y->data[i] = rng_uniform(c->seed, stream, (uint64_t)i) < keep ? x->data[i] * inv : 0.0f;
  tape_entry *e = tape_record(c, "dropout", dropout_backward, y, 1, &x);
  if (e) {
    uint64_t *st = arena_alloc(&c->act, 2 * sizeof(uint64_t));
    st[0] = c->seed, st[1] = stream;
    e->saved[0] = st;
    e->farg[0] = keep;
  }
  return y;
}
