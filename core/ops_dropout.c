/* Dropout with counter-based masks: element i of the k-th dropout call of step s is kept iff
 * rng_uniform(seed, (s << 20) + k, i) < 1 - p. Masks are therefore reproducible, independent of the
 * thread count, and a run resumed at step s draws exactly the masks of an uninterrupted one. The stream
 * formula is shared with the attention-probability dropout in ops_attention.c (same counter).
 *
 * Forward keeps the mask as one byte per element when recording, so backward is a multiply instead of a
 * second pass of hashing (a hash per element costs several times reading a byte). */
#include <stdint.h>

#include "core/ops.h"
#include "core/rng.h"
#include "core/simd.h"

enum { CHUNK = 4096 }; /* threads take blocks of CHUNK elements, each run by a per-ISA kernel */

EPEE_VECTOR_CLONES static void backward_chunk(float *dx, const float *dy, const uint8_t *mask, float scale, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (mask[i] ? scale : 0.0f);
}

/* dx += dy * mask / (1 - p) */
static void dropout_backward(tape_entry *e) {
  tensor *x = e->in[0];
  const uint8_t *mask = e->saved[0];
  const float *dy = e->out->grad;
  float *dx = x->grad, scale = e->farg[0];
  int64_t n = x->n;
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < n; o += CHUNK) backward_chunk(dx + o, dy + o, mask + o, scale, n - o < CHUNK ? n - o : CHUNK);
}

/* x -> x * m / (1 - p), m_i ~ Bernoulli(1 - p); x itself when not training or p == 0 */
EPEE_VECTOR_CLONES void dropout_kernel(const float *x, float *y, uint8_t *mask, int64_t n, float keep, uint64_t seed,
                                      uint64_t stream, uint64_t base) {
  float scale = 1.0f / keep;
  for (int64_t i = 0; i < n; i++) {
    int kept = rng_uniform(seed, stream, base + (uint64_t)i) < keep;
    y[i] = kept ? x[i] * scale : 0.0f;
    if (mask) mask[i] = (uint8_t)kept;
  }
}

tensor *op_dropout_at(epee_ctx *c, tensor *x, float p, OP_LOC) {
  OP_CHECK(p >= 0.0f && p < 1.0f, "dropout", file, line, "p must be in [0, 1)", x);
  if (!c->training || p == 0.0f) return x;
  uint64_t seed = c->seed, stream = (c->step << 20) + c->dropout_calls++;
  float keep = 1.0f - p, scale = 1.0f / keep;
  int record = c->grad_mode && x->requires_grad;
  uint8_t *mask = record ? arena_alloc_at(&c->act, (size_t)x->n, file, line) : NULL;
  tensor *y = tensor_new_at(c, x->ndim, x->shape, file, line);
  const float *px = x->data;
  float *py = y->data;
  int64_t n = x->n;
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < n; o += CHUNK)
    dropout_kernel(px + o, py + o, mask ? mask + o : NULL, n - o < CHUNK ? n - o : CHUNK, keep, seed, stream,
                   (uint64_t)o);
  tape_entry *e = tape_record(c, "dropout", dropout_backward, y, 1, &x);
  if (e) {
    e->saved[0] = mask;
    e->farg[0] = scale;
  }
  return y;
}
