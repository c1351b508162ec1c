/* Row gather (CLS / last-token pooling, batch compaction) and masked mean pooling. */
#include <omp.h>
#include <string.h>

#include "core/ops.h"
#include "core/vec.h"

/* ---- gather_rows: x viewed as [R, row_len], rows[n] -> [n, row_len] ---- */

/* dx[rows[i]] += dy[i]; a row picked twice receives both. Threads own column slices (no two write the
 * same element) and walk the rows in order (same sums for any thread count). */
static void gather_backward(tape_entry *e) {
  float *dx = e->in[0]->grad;
  const int *rows = e->saved[0];
  int n = e->iarg[0], len = e->iarg[1];
  const float *dy = e->out->grad;
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int d0 = (int)((int64_t)len * t / nt), d1 = (int)((int64_t)len * (t + 1) / nt);
    for (int i = 0; i < n; i++) {
      vec_axpy(dx + (size_t)rows[i] * len + d0, dy + (size_t)i * len + d0, 1.0f, d1 - d0);
    }
  }
}

tensor *op_gather_rows_at(epee_ctx *c, tensor *x, int row_len, const int *rows, int n, OP_LOC) {
  OP_CHECK(row_len > 0 && x->n % row_len == 0, "gather_rows", file, line, "row_len must be > 0 and divide x's size", x);
  OP_CHECK(n >= 0 && (rows || n == 0), "gather_rows", file, line, "needs n >= 0 row indices", x);
  int64_t R = x->n / row_len;
  for (int i = 0; i < n; i++)
    if (rows[i] < 0 || rows[i] >= R) {
      char what[112];
      snprintf(what, sizeof what, "row %d at position %d is outside [0, %lld) (row_len %d)", rows[i], i, (long long)R,
               row_len);
      OP_CHECK(0, "gather_rows", file, line, what, x);
    }
  tensor *y = tensor_new_at(c, 2, ((int[]){n, row_len}), file, line);
  /* CLS pooling copies a few short rows (threads would cost more than the copy); compaction copies long ones */
#pragma omp parallel for schedule(static) if ((int64_t)n * row_len >= (1 << 16))
  for (int i = 0; i < n; i++)
    memcpy(y->data + (size_t)i * row_len, x->data + (size_t)rows[i] * row_len, sizeof(float) * (size_t)row_len);
  tape_entry *e = tape_record(c, "gather_rows", gather_backward, y, 1, &x);
  if (e) {
    int *saved = arena_alloc_at(&c->act, sizeof(int) * (size_t)n, file, line);
    memcpy(saved, rows, sizeof(int) * (size_t)n);
    e->saved[0] = saved;
    e->iarg[0] = n, e->iarg[1] = row_len;
  }
  return y;
}

/* ---- mean_pool: x[B, T, D], mask[B, T] (nonzero = real) -> [B, D] mean over real positions ---- */

/* 1 / (number of real positions of row b), 0 for an all-padding row (which pools to zero) */
static float inv_count(const float *mask_b, int T) {
  int cnt = 0;
  for (int t = 0; t < T; t++) cnt += mask_b[t] != 0.0f;
  return cnt ? 1.0f / (float)cnt : 0.0f;
}

static void mean_pool_backward(tape_entry *e) {
  tensor *x = e->in[0];
  const float *mask = e->saved[0], *dy = e->out->grad;
  int B = x->shape[0], T = x->shape[1], D = x->shape[2];
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; b++) {
    float inv = inv_count(mask + (size_t)b * T, T);
    const float *g = dy + (size_t)b * D;
    for (int t = 0; t < T; t++) {
      if (mask[(size_t)b * T + t] == 0.0f) continue;
      vec_axpy(x->grad + ((size_t)b * T + t) * D, g, inv, D);
    }
  }
}

tensor *op_mean_pool_at(epee_ctx *c, tensor *x, const float *mask, OP_LOC) {
  OP_CHECK(x->ndim == 3, "mean_pool", file, line, "x must be [B, T, D]", x);
  OP_CHECK(mask != NULL, "mean_pool", file, line, "needs a [B, T] mask", x);
  int B = x->shape[0], T = x->shape[1], D = x->shape[2];
  tensor *y = tensor_new_at(c, 2, ((int[]){B, D}), file, line);
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; b++) {
    float *yb = y->data + (size_t)b * D, inv = inv_count(mask + (size_t)b * T, T);
    memset(yb, 0, sizeof(float) * (size_t)D);
    for (int t = 0; t < T; t++) {
      if (mask[(size_t)b * T + t] == 0.0f) continue;
      vec_axpy(yb, x->data + ((size_t)b * T + t) * D, 1.0f, D);
    }
    vec_scale(yb, inv, D);
  }
  tape_entry *e = tape_record(c, "mean_pool", mean_pool_backward, y, 1, &x);
  if (e) { /* the caller's mask buffer may be refilled before backward */
    float *saved = arena_alloc_at(&c->act, sizeof(float) * (size_t)B * T, file, line);
    memcpy(saved, mask, sizeof(float) * (size_t)B * T);
    e->saved[0] = saved;
  }
  return y;
}
