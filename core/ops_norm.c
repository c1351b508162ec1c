/* LayerNorm over the last dim (PyTorch: biased variance, eps inside the square root). */
#include <math.h>
#include <omp.h>

#include "core/ops.h"

/* ---- layernorm: x[..., D], gamma[D], beta[D] -> [..., D]; saves mean and rstd per row ---- */
static void layernorm_backward(tape_entry *e) {
  tensor *x = e->in[0], *g = e->in[1], *b = e->in[2];
  const float *mean = e->saved[0], *rstd = e->saved[1];
  int D = x->shape[x->ndim - 1];
  int64_t rows = x->n / D;
  const float *dy = e->out->grad;
  if (x->requires_grad) {
    /* dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dy gamma */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const float *xr = x->data + r * D, *gr = dy + r * D;
      float m = mean[r], s = rstd[r], a = 0.0f, bsum = 0.0f;
      for (int d = 0; d < D; d++) {
        float dxh = gr[d] * g->data[d];
        a += dxh;
        bsum += dxh * (xr[d] - m) * s;
      }
      a /= D, bsum /= D;
      float *dx = x->grad + r * D;
      for (int d = 0; d < D; d++) dx[d] += s * (gr[d] * g->data[d] - a - (xr[d] - m) * s * bsum);
    }
  }
  if (g->requires_grad || b->requires_grad) {
    /* column reductions: each thread owns a slice of D, rows in order -> deterministic */
#pragma omp parallel
    {
      int nt = omp_get_num_threads(), t = omp_get_thread_num();
      int d0 = D * t / nt, d1 = D * (t + 1) / nt;
      for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * D, *gr = dy + r * D;
        for (int d = d0; d < d1; d++) {
          if (g->requires_grad) g->grad[d] += gr[d] * (xr[d] - mean[r]) * rstd[r];
          if (b->requires_grad) b->grad[d] += gr[d];
        }
      }
    }
  }
}

tensor *op_layernorm_at(epee_ctx *c, tensor *x, tensor *gamma, tensor *beta, float eps, OP_LOC) {
  int D = x->shape[x->ndim - 1];
  OP_CHECK(gamma->n == D && beta->n == D, "layernorm", file, line, "gamma and beta must be [D], D = x's last dim", x,
           gamma, beta);
  int64_t rows = x->n / D;
  tensor *y = tensor_new_at(c, x->ndim, x->shape, file, line);
  int record = c->grad_mode && (x->requires_grad || gamma->requires_grad || beta->requires_grad);
  float *mean = record ? arena_alloc(&c->act, sizeof(float) * (size_t)rows) : NULL;
  float *rstd = record ? arena_alloc(&c->act, sizeof(float) * (size_t)rows) : NULL;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x->data + r * D;
    float m = 0.0f, v = 0.0f;
    for (int d = 0; d < D; d++) m += xr[d];
    m /= D;
    for (int d = 0; d < D; d++) v += (xr[d] - m) * (xr[d] - m);
    float s = 1.0f / sqrtf(v / D + eps);
    float *yr = y->data + r * D;
    for (int d = 0; d < D; d++) yr[d] = (xr[d] - m) * s * gamma->data[d] + beta->data[d];
    if (record) mean[r] = m, rstd[r] = s;
  }
  tape_entry *e = tape_record(c, "layernorm", layernorm_backward, y, 3, (tensor *[]){x, gamma, beta});
  if (e) e->saved[0] = mean, e->saved[1] = rstd;
  return y;
}
