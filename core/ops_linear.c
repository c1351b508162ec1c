/* linear, conv1d (linear with an [in, out] weight) and batched matmul, all on oneDNN through core/dnnl_wrap.c. */
#include "core/dnnl_wrap.h"
#include "core/ops.h"

/* ---- linear: x[..., K], W[N, K], b[N] -> [..., N]; the leading dims are flattened into M rows ---- */
static void linear_backward(tape_entry *e) {
  tensor *x = e->in[0], *w = e->in[1], *b = e->in[2];
  int M = e->iarg[0], N = e->iarg[1], K = e->iarg[2];
  const float *dy = e->out->grad;
  if (x->requires_grad) dw_linear_bwd_data(dy, w->data, x->grad, M, N, K);
  float *dw = w->requires_grad ? w->grad : NULL, *db = b && b->requires_grad ? b->grad : NULL;
  if (dw || db) dw_linear_bwd_weights(dy, x->data, dw, db, M, N, K);
}

tensor *op_linear_at(epee_ctx *c, tensor *x, tensor *W, tensor *b, OP_LOC) {
  OP_CHECK(W->ndim == 2, "linear", file, line, "weight must be 2-D [out, in]", x, W);
  int N = W->shape[0], K = W->shape[1];
  OP_CHECK(x->shape[x->ndim - 1] == K, "linear", file, line, "x's last dim must equal the weight's in-features", x, W);
  OP_CHECK(!b || (b->ndim == 1 && b->shape[0] == N), "linear", file, line, "bias must be [out]", x, W, b);
  int shape[EPEE_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
  shape[x->ndim - 1] = N;
  tensor *y = tensor_new_at(c, x->ndim, shape, file, line);
  int M = (int)shape_numel(x->ndim - 1, x->shape);
  dw_linear_fwd(x->data, W->data, b ? b->data : NULL, y->data, M, N, K);
  tape_entry *e = tape_record(c, "linear", linear_backward, y, 3, (tensor *[]){x, W, b});
  if (e) e->iarg[0] = M, e->iarg[1] = N, e->iarg[2] = K;
  return y;
}

/* ---- conv1d (HF Conv1D): x[..., K], W[K, N], b[N] -> [..., N] = x W + b; M flattened rows ---- */
static void bias_colsum(const float *dy, float *db, int M, int N) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) db[j] += dy[(size_t)i * N + j];
}

static void conv1d_backward(tape_entry *e) {
  tensor *x = e->in[0], *w = e->in[1], *b = e->in[2];
  int M = e->iarg[0], N = e->iarg[1], K = e->iarg[2];
  const float *dy = e->out->grad;
  if (x->requires_grad) dw_bmm(1, 0, 1, M, K, N, dy, w->data, x->grad, 1);  /* dX[M,K] += dY W^T */
  if (w->requires_grad) dw_bmm(1, 1, 0, K, N, M, x->data, dy, w->grad, 1); /* dW[K,N] += X^T dY */
  if (b && b->requires_grad) bias_colsum(dy, b->grad, M, N);
}

tensor *op_conv1d_at(epee_ctx *c, tensor *x, tensor *W, tensor *b, OP_LOC) {
  OP_CHECK(W->ndim == 2, "conv1d", file, line, "weight must be 2-D [in, out]", x, W);
  int K = W->shape[0], N = W->shape[1];
  OP_CHECK(x->shape[x->ndim - 1] == K, "conv1d", file, line, "x's last dim must equal the weight's in-features (dim 0)",
           x, W);
  OP_CHECK(!b || (b->ndim == 1 && b->shape[0] == N), "conv1d", file, line, "bias must be [out]", x, W, b);
  int shape[EPEE_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
  shape[x->ndim - 1] = N;
  tensor *y = tensor_new_at(c, x->ndim, shape, file, line);
  int M = (int)shape_numel(x->ndim - 1, x->shape);
  dw_bmm(1, 0, 0, M, N, K, x->data, W->data, y->data, 0);
  if (b) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) y->data[(size_t)i * N + j] += b->data[j];
  }
  tape_entry *e = tape_record(c, "conv1d", conv1d_backward, y, 3, (tensor *[]){x, W, b});
  if (e) e->iarg[0] = M, e->iarg[1] = N, e->iarg[2] = K;
  return y;
}

/* ---- bmm: a[Bt, M, K], b[Bt, K, N] (trans_b: [Bt, N, K]) -> [Bt, M, N] ---- */
static void bmm_backward(tape_entry *e) {
  tensor *a = e->in[0], *b = e->in[1];
  int Bt = e->iarg[0], M = e->iarg[1], N = e->iarg[2], K = e->iarg[3], tb = e->iarg[4];
  const float *dy = e->out->grad;
  /* dA = dY op(B)^T, and op(B)^T is B as stored when trans_b */
  if (a->requires_grad) dw_bmm(Bt, 0, !tb, M, K, N, dy, b->data, a->grad, 1);
  if (b->requires_grad) {
    if (tb) /* dB[N, K] = dY^T A */
      dw_bmm(Bt, 1, 0, N, K, M, dy, a->data, b->grad, 1);
    else /* dB[K, N] = A^T dY */
      dw_bmm(Bt, 1, 0, K, N, M, a->data, dy, b->grad, 1);
  }
}

tensor *op_bmm_at(epee_ctx *c, tensor *a, tensor *b, int trans_b, OP_LOC) {
  OP_CHECK(a->ndim == 3 && b->ndim == 3 && a->shape[0] == b->shape[0], "bmm", file, line,
           "operands must be 3-D with the same batch", a, b);
  int Bt = a->shape[0], M = a->shape[1], K = a->shape[2];
  int N = trans_b ? b->shape[1] : b->shape[2];
  OP_CHECK((trans_b ? b->shape[2] : b->shape[1]) == K, "bmm", file, line,
           trans_b ? "a's last dim must equal b's last dim (b is [Bt, N, K])" : "a's last dim must equal b's middle dim",
           a, b);
  tensor *y = tensor_new_at(c, 3, (int[]){Bt, M, N}, file, line);
  dw_bmm(Bt, 0, trans_b, M, N, K, a->data, b->data, y->data, 0);
  tape_entry *e = tape_record(c, "bmm", bmm_backward, y, 2, (tensor *[]){a, b});
  if (e) e->iarg[0] = Bt, e->iarg[1] = M, e->iarg[2] = N, e->iarg[3] = K, e->iarg[4] = trans_b;
  return y;
}
