/* Row gather (CLS / last-token pooling, batch compaction) and masked mean pooling. */
#include <omp.h>
#include <string.h>

#include "core/ops.h"

/* ---- gather_rows: x viewed as [R, row_len], rows[n] -> [n, row_len] ---- */
static void gather_backward(tape_entry *e) {
  tensor *x = e->in[0];
  const int *rows = e->saved[0];
  int n = e->iarg[0], len = e->iarg[1];
  const float *g = e->out->grad;
  /* duplicate rows add up; threads own column slices so no two write the same element */
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int d0 = (int)((int64_t)len * t / nt), d1 = (int)((int64_t)len * (t + 1) / nt);
    for (int i = 0; i < n; i++) {
      float *dx = x->grad + (size_t)rows[i] * len;
      const float *gi = g + (size_t)i * len;
      for (int d = d0; d < d1; d++) dx[d] += gi[d];
    }
  }
}

tensor *op_gather_rows_at(epee_ctx *c, tensor *x, int row_len, const int *rows, int n, OP_LOC) {
  OP_CHECK(row_len > 0 && x->n % row_len == 0, "gather_rows", file, line, "row_len must divide x's size", x);
  int64_t R = x->n / row_len;
  for (int i = 0; i < n; i++)
    OP_CHECK(rows[i] >= 0 && rows[i] < R, "gather_rows", file, line, "row index out of range", x);
  tensor *y = tensor_new_at(c, 2, ((int[]){n, row_len}), file, line);
  for (int i = 0; i < n; i++)
    memcpy(y->data + (size_t)i * row_len, x->data + (size_t)rows[i] * row_len, sizeof(float) * (size_t)row_len);
  tape_entry *e = tape_record(c, "gather_rows", gather_backward, y, 1, &x);
  if (e) {
    int *saved = arena_alloc(&c->act, sizeof(int) * (size_t)(n ? n : 1));
    memcpy(saved, rows, sizeof(int) * (size_t)n);
    e->saved[0] = saved;
    e->iarg[0] = n, e->iarg[1] = row_len;
  }
  return y;
}

/* ---- mean_pool: x[B, T, D], mask[B, T] -> [B, D] mean over real positions ---- */
static void mean_pool_backward(tape_entry *e) {
  tensor *x = e->in[0];
  const float *mask = e->saved[0];
  int B = x->shape[0], T = x->shape[1], D = x->shape[2];
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; b++) {
    float cnt = 0.0f;
    for (int t = 0; t < T; t++) cnt += mask[b * T + t];
    float inv = cnt > 0 ? 1.0f / cnt : 0.0f;
    for (int t = 0; t < T; t++)
      if (mask[b * T + t] != 0.0f)
        for (int d = 0; d < D; d++) x->grad[((size_t)b * T + t) * D + d] += e->out->grad[(size_t)b * D + d] * inv;
  }
}

tensor *op_mean_pool_at(epee_ctx *c, tensor *x, const float *mask, OP_LOC) {
  OP_CHECK(x->ndim == 3, "mean_pool", file, line, "x must be [B, T, D]", x);
  int B = x->shape[0], T = x->shape[1], D = x->shape[2];
  tensor *y = tensor_new_at(c, 2, ((int[]){B, D}), file, line);
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; b++) {
    float *yb = y->data + (size_t)b * D, cnt = 0.0f;
    memset(yb, 0, sizeof(float) * (size_t)D);
    for (int t = 0; t < T; t++)
      if (mask[b * T + t] != 0.0f) {
        cnt += 1.0f;
        for (int d = 0; d < D; d++) yb[d] += x->data[((size_t)b * T + t) * D + d];
      }
    float inv = cnt > 0 ? 1.0f / cnt : 0.0f; /* an all-padding row pools to zero */
    for (int d = 0; d < D; d++) yb[d] *= inv;
  }
  tape_entry *e = tape_record(c, "mean_pool", mean_pool_backward, y, 1, &x);
  if (e) e->saved[0] = (void *)mask;
  return y;
}
