/* LayerNorm over the last dim, as torch.nn.LayerNorm: biased variance, eps inside the square root.
 *   y = (x - mean) * rstd * gamma + beta,  rstd = 1 / sqrt(var + eps)
 * Precision: a float mean m is off by up to ulp(m) / 2, which would cap xhat's accuracy when
 * |mean| >> std. But the deviations x - m are exact (Sterbenz) for x near m, so their mean c is the exact
 * correction, and xhat = ((x - m) - c) rstd is float-accurate at any offset; the centred variance
 * mean((x - m)^2) - c^2 has no cancellation either (c is tiny), unlike the one-pass E[x^2] - mean^2.
 * Three sweeps over each row while it sits in L1; when recording, m, c and rstd are kept per row.
 * Backward, with g = dy * gamma:
 *   dx = rstd (g - mean(g) - xhat mean(g xhat)),  dgamma = sum_rows dy xhat,  dbeta = sum_rows dy. */
#include <math.h>
#include <omp.h>

#include "core/ops.h"
#include "core/simd.h"

/* The row kernels are compiled per ISA (core/simd.h): the portable build would otherwise run them at SSE width. */

/* dx[D] += rstd (g - mean(g) - xhat mean(g xhat)) for one row, g = dy gamma */
EPEE_VECTOR_CLONES static void row_backward(const float *xr, const float *dyr, const float *gm, float *dx, int D,
                                            float m, float c, float s) {
  float sum_g = 0.0f, sum_gx = 0.0f;
#pragma omp simd reduction(+ : sum_g, sum_gx)
  for (int d = 0; d < D; d++) {
    float g = dyr[d] * gm[d];
    sum_g += g;
    sum_gx += g * ((xr[d] - m) - c) * s;
  }
  float a = sum_g / (float)D, b = sum_gx / (float)D;
#pragma omp simd
  for (int d = 0; d < D; d++) dx[d] += s * (dyr[d] * gm[d] - a - ((xr[d] - m) - c) * s * b);
}

/* columns [d0, d1) of one row into dgamma (may be NULL) and dbeta (may be NULL) */
EPEE_VECTOR_CLONES static void row_param_grads(const float *xr, const float *dyr, float *dg, float *db, int d0, int d1,
                                               float m, float c, float s) {
  if (dg) {
#pragma omp simd
    for (int d = d0; d < d1; d++) dg[d] += dyr[d] * ((xr[d] - m) - c) * s;
  }
  if (db) {
#pragma omp simd
    for (int d = d0; d < d1; d++) db[d] += dyr[d];
  }
}

static void layernorm_backward(tape_entry *e) {
  tensor *x = e->in[0], *gamma = e->in[1], *beta = e->in[2];
  const float *mean = e->saved[0], *shift = e->saved[1], *rstd = e->saved[2], *dy = e->out->grad, *gm = gamma->data;
  int D = x->shape[x->ndim - 1];
  int64_t rows = x->n / D;
  if (x->requires_grad) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
      row_backward(x->data + r * D, dy + r * D, gm, x->grad + r * D, D, mean[r], shift[r], rstd[r]);
  }
  /* column sums: each thread owns a slice of the D columns and adds rows in order, so the result is
   * race-free and identical for any thread count */
  float *dg = gamma->requires_grad ? gamma->grad : NULL, *db = beta->requires_grad ? beta->grad : NULL;
  if (!dg && !db) return;
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int d0 = (int)((int64_t)D * t / nt), d1 = (int)((int64_t)D * (t + 1) / nt);
    for (int64_t r = 0; r < rows; r++)
      row_param_grads(x->data + r * D, dy + r * D, dg, db, d0, d1, mean[r], shift[r], rstd[r]);
  }
}

/* One row: yr = xhat gamma + beta; stats[0..2] = m, c, rstd (see the top) */
EPEE_VECTOR_CLONES static void row_forward(const float *xr, const float *gm, const float *bt, float *yr, int D, float eps,
                                           float *stats) {
  float sum = 0.0f, dev = 0.0f, sq = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int d = 0; d < D; d++) sum += xr[d];
  float m = sum / (float)D;
#pragma omp simd reduction(+ : dev, sq)
  for (int d = 0; d < D; d++) {
    dev += xr[d] - m;
    sq += (xr[d] - m) * (xr[d] - m);
  }
  float cm = dev / (float)D, var = sq / (float)D - cm * cm;
  float s = 1.0f / sqrtf((var > 0.0f ? var : 0.0f) + eps);
#pragma omp simd
  for (int d = 0; d < D; d++) yr[d] = ((xr[d] - m) - cm) * s * gm[d] + bt[d];
  stats[0] = m, stats[1] = cm, stats[2] = s;
}

/* x[..., D], gamma[D], beta[D] -> [..., D] */
tensor *op_layernorm_at(epee_ctx *c, tensor *x, tensor *gamma, tensor *beta, float eps, OP_LOC) {
  int D = x->shape[x->ndim - 1];
  OP_CHECK(D > 0 && gamma->n == D && beta->n == D, "layernorm", file, line,
           "gamma and beta must be [D], D = x's last dim > 0", x, gamma, beta);
  OP_CHECK(eps >= 0.0f, "layernorm", file, line, "eps must be >= 0", x);
  int64_t rows = x->n / D;
  tensor *y = tensor_new_at(c, x->ndim, x->shape, file, line);
  int record = c->grad_mode && (x->requires_grad || gamma->requires_grad || beta->requires_grad);
  float *stats = record ? arena_alloc_at(&c->act, 3 * sizeof(float) * (size_t)rows, file, line) : NULL;
  float *mean = stats, *shift = stats ? stats + rows : NULL, *rstd = stats ? stats + 2 * rows : NULL;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    float st[3];
    row_forward(x->data + r * D, gamma->data, beta->data, y->data + r * D, D, eps, st);
    if (record) mean[r] = st[0], shift[r] = st[1], rstd[r] = st[2];
  }
  tape_entry *e = tape_record(c, "layernorm", layernorm_backward, y, 3, (tensor *[]){x, gamma, beta});
  if (e) e->saved[0] = mean, e->saved[1] = shift, e->saved[2] = rstd;
  return y;
}
