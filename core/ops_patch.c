/* Patch embedding, HF ViT: Conv2d(C, D, kernel = stride = P) on [B, C, H, W], flattened over the patch
 * grid and transposed to [B, N, D]. Patches do not overlap, so the convolution is exactly
 *   unfold (im2col) into cols[B*N, C*P*P]  then  cols W^T + b  with W[D, C, P, P] viewed as [D, C*P*P]:
 * one GEMM through the oneDNN wrapper, forward and backward. */
#include <string.h>

#include "core/dnnl_wrap.h"
#include "core/ops.h"

/* Row (b, py, px) of cols holds patch (py, px) of image b; column (ch, ky, kx) matches the conv weight's
 * [C, P, P] order. dir = 0: cols = unfold(img); dir = 1: img += fold(cols), unfold's adjoint (each pixel
 * belongs to exactly one patch, so it is a plain scatter). */
static void unfold_or_fold(float *img, float *cols, int B, int C, int H, int W, int P, int dir) {
  int gh = H / P, gw = W / P, K = C * P * P;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; b++)
    for (int py = 0; py < gh; py++)
      for (int px = 0; px < gw; px++) {
        float *col = cols + (((size_t)b * gh + py) * gw + px) * K;
        for (int ch = 0; ch < C; ch++)
          for (int ky = 0; ky < P; ky++) {
            float *pix = img + (((size_t)b * C + ch) * H + (size_t)py * P + ky) * W + (size_t)px * P;
            float *k = col + ((size_t)ch * P + ky) * P;
            if (dir == 0)
              memcpy(k, pix, sizeof(float) * (size_t)P);
            else
              for (int kx = 0; kx < P; kx++) pix[kx] += k[kx];
          }
      }
}

static void patch_backward(tape_entry *e) {
  tensor *img = e->in[0], *w = e->in[1], *b = e->in[2];
  float *cols = e->saved[0], *dcols = e->saved[1];
  int B = img->shape[0], C = img->shape[1], H = img->shape[2], W = img->shape[3], P = e->iarg[0];
  int M = B * (H / P) * (W / P), D = w->shape[0], K = C * P * P;
  const float *dy = e->out->grad;
  float *dw = w->requires_grad ? w->grad : NULL, *db = b && b->requires_grad ? b->grad : NULL;
  if (dw || db) dw_linear_bwd_weights(dy, cols, 0, dw, db, M, D, K);
  if (img->requires_grad) {
    memset(dcols, 0, sizeof(float) * (size_t)M * K);
    dw_linear_bwd_data(dy, w->data, 0, dcols, M, D, K);
    unfold_or_fold(img->grad, dcols, B, C, H, W, P, 1);
  }
}

/* img[B, C, H, W], W[D, C, P, P], b[D] or NULL -> [B, (H/P)*(W/P), D] */
tensor *op_patch_embed_at(epee_ctx *c, tensor *img, tensor *W, tensor *b, int P, OP_LOC) {
  OP_CHECK(img->ndim == 4 && W->ndim == 4, "patch_embed", file, line, "img must be [B, C, H, W], weight [D, C, P, P]",
           img, W, b);
  int B = img->shape[0], C = img->shape[1], H = img->shape[2], Wd = img->shape[3], D = W->shape[0];
  OP_CHECK(P > 0 && H % P == 0 && Wd % P == 0, "patch_embed", file, line, "patch size P must divide H and W", img,
           W, b);
  OP_CHECK(W->shape[1] == C && W->shape[2] == P && W->shape[3] == P, "patch_embed", file, line,
           "weight must be [D, C, P, P] with img's C and the patch size P", img, W, b);
  OP_CHECK(!b || (b->ndim == 1 && b->n == D), "patch_embed", file, line, "bias must be [D]", img, W, b);
  int N = (H / P) * (Wd / P), K = C * P * P;
  size_t ncols = (size_t)B * N * K;
  /* cols is the GEMM's input; it is kept for dW when recording */
  float *cols = arena_alloc_at(&c->act, sizeof(float) * ncols, file, line);
  unfold_or_fold(img->data, cols, B, C, H, Wd, P, 0);
  tensor *y = tensor_new_at(c, 3, ((int[]){B, N, D}), file, line);
  dw_linear_fwd(cols, W->data, 0, b ? b->data : NULL, DW_ACT_NONE, NULL, y->data, B * N, D, K);
  tape_entry *e = tape_record(c, "patch_embed", patch_backward, y, 3, (tensor *[]){img, W, b});
  if (e) {
    e->saved[0] = cols;
    e->saved[1] = img->requires_grad ? arena_alloc_at(&c->act, sizeof(float) * ncols, file, line) : NULL;
    e->iarg[0] = P;
  }
  return y;
}

/* ViT's token sequence: [CLS] in front of the patches, position embeddings added to every row. */
static void cls_pos_backward(tape_entry *e) {
  tensor *x = e->in[0], *cls = e->in[1], *pos = e->in[2];
  int B = x->shape[0], N = x->shape[1], D = x->shape[2];
  const float *dy = e->out->grad;
  if (x->requires_grad) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
      for (int64_t i = 0; i < (int64_t)N * D; i++) x->grad[(int64_t)b * N * D + i] += dy[((int64_t)b * (N + 1) + 1) * D + i];
  }
  /* cls and pos sum over the batch: serial over b, parallel over positions, so no two threads meet */
  for (int b = 0; b < B; b++) {
    const float *g = dy + (int64_t)b * (N + 1) * D;
    if (cls->requires_grad)
      for (int d = 0; d < D; d++) cls->grad[d] += g[d];
    if (pos->requires_grad) {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < (int64_t)(N + 1) * D; i++) pos->grad[i] += g[i];
    }
  }
}

/* x[B, N, D], cls[1, 1, D], pos[1, N+1, D] -> [B, N+1, D]: row 0 = cls + pos[0], row 1+n = x[:, n] + pos[1+n] */
tensor *op_cls_pos_embed_at(epee_ctx *c, tensor *x, tensor *cls, tensor *pos, OP_LOC) {
  OP_CHECK(x->ndim == 3 && cls->ndim == 3 && pos->ndim == 3, "cls_pos_embed", file, line,
           "x must be [B, N, D], cls [1, 1, D], pos [1, N+1, D]", x, cls, pos);
  int B = x->shape[0], N = x->shape[1], D = x->shape[2];
  OP_CHECK(cls->shape[0] == 1 && cls->shape[1] == 1 && cls->shape[2] == D && pos->shape[0] == 1 &&
               pos->shape[1] == N + 1 && pos->shape[2] == D,
           "cls_pos_embed", file, line, "cls must be [1, 1, D] and pos [1, N+1, D] with x's N and D", x, cls, pos);
  tensor *y = tensor_new_at(c, 3, ((int[]){B, N + 1, D}), file, line);
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; b++) {
    float *yb = y->data + (int64_t)b * (N + 1) * D;
    const float *xb = x->data + (int64_t)b * N * D;
    for (int d = 0; d < D; d++) yb[d] = cls->data[d] + pos->data[d];
    for (int64_t i = 0; i < (int64_t)N * D; i++) yb[D + i] = xb[i] + pos->data[D + i];
  }
  tape_record(c, "cls_pos_embed", cls_pos_backward, y, 3, (tensor *[]){x, cls, pos});
  return y;
}
