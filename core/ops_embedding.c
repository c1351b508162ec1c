/* Embedding lookup (token, position and token-type tables). */
#include <omp.h>
#include <string.h>

#include "core/ops.h"
#include "core/vec.h"

/* dW[ids[i]] += dy[i]. Ids repeat (padding, common tokens), so rows of dW receive several adds: each
 * thread owns a slice of the D columns and walks the ids in order, which is race-free and gives the same
 * sums for any thread count. */
static void embedding_backward(tape_entry *e) {
  tensor *W = e->in[0];
  const int32_t *ids = e->saved[0];
  int n = e->iarg[0], D = W->shape[1];
  const float *dy = e->out->grad;
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int d0 = (int)((int64_t)D * t / nt), d1 = (int)((int64_t)D * (t + 1) / nt);
    for (int i = 0; i < n; i++) {
      float *dw = W->grad + (size_t)ids[i] * D;
      vec_axpy(dw + d0, dy + (size_t)i * D + d0, 1.0f, d1 - d0);
    }
  }
}

/* ids[B*T] (each in [0, V)), W[V, D] -> [B, T, D] */
tensor *op_embedding_at(epee_ctx *c, const int32_t *ids, int B, int T, tensor *W, OP_LOC) {
  OP_CHECK(W->ndim == 2, "embedding", file, line, "table must be [V, D]", W);
  OP_CHECK(B >= 0 && T >= 0 && (ids || B * T == 0), "embedding", file, line, "needs B, T >= 0 and B*T ids", W);
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
  if (e) { /* the caller's id buffer may be refilled before backward */
    int32_t *saved = arena_alloc_at(&c->act, sizeof(int32_t) * (size_t)n, file, line);
    memcpy(saved, ids, sizeof(int32_t) * (size_t)n);
    e->saved[0] = saved;
    e->iarg[0] = n;
  }
  return y;
}
