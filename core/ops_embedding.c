/* Embedding gather. */
#include <omp.h>
#include <string.h>

#include "core/ops.h"

/* ---- embedding: ids[B*T] in [0, V), W[V, D] -> [B, T, D] ---- */
static void embedding_backward(tape_entry *e) {
  tensor *W = e->in[0];
  const int32_t *ids = e->saved[0];
  int n = e->iarg[0], D = W->shape[1];
  const float *g = e->out->grad;
  /* scatter-add, race-free: each thread owns a slice of the D columns; row order fixed -> deterministic */
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int d0 = D * t / nt, d1 = D * (t + 1) / nt;
    for (int i = 0; i < n; i++) {
      float *dw = W->grad + (size_t)ids[i] * D;
      const float *gi = g + (size_t)i * D;
      for (int d = d0; d < d1; d++) dw[d] += gi[d];
    }
  }
}

tensor *op_embedding_at(epee_ctx *c, const int32_t *ids, int B, int T, tensor *W, OP_LOC) {
  OP_CHECK(W->ndim == 2, "embedding", file, line, "table must be [V, D]", W);
  int V = W->shape[0], D = W->shape[1], n = B * T;
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= V) {
      char what[96];
      snprintf(what, sizeof what, "id %d at position %d is outside [0, %d)", ids[i], i, V);
      OP_CHECK(0, "embedding", file, line, what, W);
    }
  tensor *y = tensor_new_at(c, 3, ((int[]){B, T, D}), file, line);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) memcpy(y->data + (size_t)i * D, W->data + (size_t)ids[i] * D, sizeof(float) * (size_t)D);
  tape_entry *e = tape_record(c, "embedding", embedding_backward, y, 1, &W);
  if (e) {
    int32_t *saved = arena_alloc(&c->act, sizeof(int32_t) * (size_t)n);
    memcpy(saved, ids, sizeof(int32_t) * (size_t)n);
    e->saved[0] = saved;
    e->iarg[0] = n;
  }
  return y;
}
