/* linear layers (nn.Linear and HF Conv1D weights) with their fused epilogue, and batched matmul, all on oneDNN
 * through core/dnnl_wrap.c. */
#include "core/dnnl_wrap.h"
#include "core/ops.h"
#include "core/simd.h"
#include "core/vec.h"

enum { CHUNK = 4096 }; /* the epilogue's threads take blocks of CHUNK elements, each run by per-ISA kernels */

/* dz[n] = dy[n] * (mask ? scale : 0): the dropout part of the epilogue's gradient, written, not accumulated (dz may
 * be dy) */
EPEE_VECTOR_CLONES static void dropout_grad_chunk(float *dz, const float *dy, const uint8_t *mask, float scale,
                                                  int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) dz[i] = dy[i] * (mask[i] ? scale : 0.0f);
}

/* ---- linear: x[..., K], W[N, K] or [K, N], b[N], epilogue -> [..., N]; the leading dims are M rows ----
 * saved[0]: the pre-activation z (only with an activation), saved[1]: the dropout mask (only with dropout),
 * saved[2]: the buffer the backward writes dZ into (with either).
 * iarg: M, N, K, w_in_out, act; farg[0]: 1 / (1 - p). */
static void linear_backward(tape_entry *e) {
  tensor *x = e->in[0], *w = e->in[1], *b = e->in[2], *r = e->in[3];
  int M = e->iarg[0], N = e->iarg[1], K = e->iarg[2], w_kn = e->iarg[3];
  act_kind act = (act_kind)e->iarg[4];
  const float *z = e->saved[0];
  const uint8_t *mask = e->saved[1];
  const float *dy = e->out->grad;
  if (r && r->requires_grad) vec_axpy(r->grad, dy, 1.0f, e->out->n); /* d residual += dY */
  const float *dz = dy; /* dZ = dY through an epilogue of nothing but the residual */
  if (act != ACT_NONE || mask) {
    int64_t n = e->out->n;
    float *g = e->saved[2]; /* the op's own buffer: written, so never zero-filled */
    float scale = e->farg[0];
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < n; o += CHUNK) {
      int64_t len = n - o < CHUNK ? n - o : CHUNK;
      if (act != ACT_NONE) act_grad_kernel(act, z + o, dy + o, g + o, len);
      if (mask) dropout_grad_chunk(g + o, act != ACT_NONE ? g + o : dy + o, mask + o, scale, len);
    }
    dz = g;
  }
  if (x->requires_grad) dw_linear_bwd_data(dz, w->data, w_kn, x->grad, M, N, K);
  float *dw = w->requires_grad ? w->grad : NULL, *db = b && b->requires_grad ? b->grad : NULL;
  if (dw || db) dw_linear_bwd_weights(dz, x->data, w_kn, dw, db, M, N, K);
}

/* the op's name on the tape and in the profile: layout + epilogue */
static const char *linear_name(linear_epilogue ep) {
  static const char *const names[2][8] = {
      {"linear", "linear+residual", "linear+dropout", "linear+dropout+residual", "linear+gelu", "linear+gelu+residual",
       "linear+gelu+dropout", "linear+gelu+dropout+residual"},
      {"conv1d", "conv1d+residual", "conv1d+dropout", "conv1d+dropout+residual", "conv1d+gelu", "conv1d+gelu+residual",
       "conv1d+gelu+dropout", "conv1d+gelu+dropout+residual"}};
  return names[ep.w_in_out != 0][(ep.act != ACT_NONE) * 4 + (ep.dropout > 0.0f) * 2 + (ep.residual != NULL)];
}

tensor *op_linear_ex_at(epee_ctx *c, tensor *x, tensor *W, tensor *b, linear_epilogue ep, OP_LOC) {
  const char *name = linear_name(ep);
  tensor *r = ep.residual;
  OP_CHECK(W->ndim == 2, name, file, line,
           ep.w_in_out ? "weight must be 2-D [in, out]" : "weight must be 2-D [out, in]", x, W);
  int N = W->shape[ep.w_in_out ? 1 : 0], K = W->shape[ep.w_in_out ? 0 : 1];
  OP_CHECK(x->shape[x->ndim - 1] == K, name, file, line,
           ep.w_in_out ? "x's last dim must equal the weight's in-features (dim 0)"
                       : "x's last dim must equal the weight's in-features",
           x, W);
  OP_CHECK(!b || (b->ndim == 1 && b->shape[0] == N), name, file, line, "bias must be [out]", x, W, b);
  OP_CHECK(ep.act == ACT_NONE || ep.act == ACT_GELU || ep.act == ACT_GELU_TANH, name, file, line,
           "the epilogue's activation must be ACT_NONE, ACT_GELU or ACT_GELU_TANH", x, W);
  OP_CHECK(ep.dropout >= 0.0f && ep.dropout < 1.0f, name, file, line, "dropout p must be in [0, 1)", x, W);
  int shape[EPEE_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
  shape[x->ndim - 1] = N;
  int same = r && r->ndim == x->ndim;
  for (int i = 0; same && i < x->ndim; i++) same = r->shape[i] == shape[i];
  OP_CHECK(!r || same, name, file, line, "the residual must have the output's shape", x, W, r);
  tensor *y = tensor_new_at(c, x->ndim, shape, file, line);
  int M = (int)shape_numel(x->ndim - 1, x->shape);
  int64_t n = y->n;
  tensor *in[4] = {x, W, b, r};
  int record = tape_wants(c, 4, in), drop = c->training && ep.dropout > 0.0f;
  dw_act dact = ep.act == ACT_GELU ? DW_ACT_GELU_ERF : ep.act == ACT_GELU_TANH ? DW_ACT_GELU_TANH : DW_ACT_NONE;
  float *z = NULL;     /* the pre-activation, kept for the backward */
  uint8_t *mask = NULL;
  float keep = 1.0f - ep.dropout;
  int ran = 0, done = 0;
  if (!drop && !(record && ep.act != ACT_NONE)) { /* everything as post-ops when the primitive runs */
    /* serving weights run from oneDNN's packed copy */
    done = (!record && W->frozen ? dw_linear_fwd_frozen : dw_linear_fwd)(x->data, W->data, ep.w_in_out,
                                                                          b ? b->data : NULL, dact, r ? r->data : NULL,
                                                                          y->data, M, N, K);
    ran = 1; /* not done: y holds the product + bias */
  }
  if (!done) { /* the product (+ bias) first, then one pass: act -> dropout -> + residual, block by block */
    z = record && ep.act != ACT_NONE ? arena_alloc_at(&c->act, sizeof(float) * (size_t)n, file, line) : y->data;
    if (!ran) dw_linear_fwd(x->data, W->data, ep.w_in_out, b ? b->data : NULL, DW_ACT_NONE, NULL, z, M, N, K);
    mask = drop && record ? arena_alloc_at(&c->act, (size_t)n, file, line) : NULL;
    uint64_t seed = c->seed, stream = drop ? (c->step << 20) + c->dropout_calls++ : 0;
    const float *pr = r ? r->data : NULL;
    float *py = y->data;
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < n; o += CHUNK) {
      int64_t len = n - o < CHUNK ? n - o : CHUNK;
      if (ep.act != ACT_NONE) act_kernel(ep.act, z + o, py + o, len);
      if (drop) dropout_kernel(py + o, py + o, mask ? mask + o : NULL, len, keep, seed, stream, (uint64_t)o);
      if (pr) vec_axpy(py + o, pr + o, 1.0f, len);
    }
  }
  tape_entry *e = tape_record(c, name, linear_backward, y, 4, in);
  if (e) {
    e->iarg[0] = M, e->iarg[1] = N, e->iarg[2] = K, e->iarg[3] = ep.w_in_out, e->iarg[4] = ep.act;
    e->farg[0] = 1.0f / keep;
    e->saved[0] = ep.act != ACT_NONE ? z : NULL;
    e->saved[1] = mask;
    e->saved[2] = ep.act != ACT_NONE || mask ? arena_alloc_at(&c->act, sizeof(float) * (size_t)n, file, line) : NULL;
  }
  return y;
}

tensor *op_linear_at(epee_ctx *c, tensor *x, tensor *W, tensor *b, OP_LOC) {
  return op_linear_ex_at(c, x, W, b, (linear_epilogue){0}, file, line);
}

tensor *op_conv1d_at(epee_ctx *c, tensor *x, tensor *W, tensor *b, OP_LOC) {
  return op_linear_ex_at(c, x, W, b, (linear_epilogue){.w_in_out = 1}, file, line);
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
