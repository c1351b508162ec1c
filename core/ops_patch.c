/* Patch embedding (HF ViT: Conv2d with kernel = stride = P), as unfold (im2col) + one GEMM. */
#include "core/dnnl_wrap.h"
#include "core/ops.h"

/* img[B, C, H, W] -> cols[B*N, C*P*P], row (b, py, px), column (c, ky, kx) = the conv weight's order */
static void unfold(const float *img, float *cols, int B, int C, int H, int W, int P) {
  int gh = H / P, gw = W / P, K = C * P * P;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; b++)
    for (int py = 0; py < gh; py++)
      for (int px = 0; px < gw; px++)
        for (int ch = 0; ch < C; ch++)
          for (int ky = 0; ky < P; ky++)
            for (int kx = 0; kx < P; kx++) {
              size_t r = ((size_t)b * gh + py) * gw + px, k = ((size_t)ch * P + ky) * P + kx;
              size_t pix = (((size_t)b * C + ch) * H + py * P + ky) * W + px * P + kx;
              cols[r * K + k] = img[pix];
            }
}

/* the adjoint of unfold: patches do not overlap, so each pixel receives from exactly one column entry */
static void fold_add(const float *cols, float *img, int B, int C, int H, int W, int P) {
  int gh = H / P, gw = W / P, K = C * P * P;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; b++)
    for (int py = 0; py < gh; py++)
      for (int px = 0; px < gw; px++)
        for (int ch = 0; ch < C; ch++)
          for (int ky = 0; ky < P; ky++)
            for (int kx = 0; kx < P; kx++) {
              size_t r = ((size_t)b * gh + py) * gw + px, k = ((size_t)ch * P + ky) * P + kx;
              img[(((size_t)b * C + ch) * H + py * P + ky) * W + px * P + kx] += cols[r * K + k];
            }
}

static void patch_backward(tape_entry *e) {
  tensor *img = e->in[0], *w = e->in[1], *b = e->in[2];
  const float *cols = e->saved[0];
  int B = img->shape[0], C = img->shape[1], H = img->shape[2], W = img->shape[3], P = e->iarg[0];
  int M = B * (H / P) * (W / P), D = w->shape[0], K = C * P * P;
  const float *dy = e->out->grad;
  dw_linear_bwd_weights(dy, cols, w->requires_grad ? w->grad : NULL, b && b->requires_grad ? b->grad : NULL, M, D, K);
  if (img->requires_grad) {
    float *dcols = e->saved[1];
    for (int64_t i = 0; i < (int64_t)M * K; i++) dcols[i] = 0.0f;
    dw_linear_bwd_data(dy, w->data, dcols, M, D, K);
    fold_add(dcols, img->grad, B, C, H, W, P);
  }
}

tensor *op_patch_embed_at(epee_ctx *c, tensor *img, tensor *W, tensor *b, int P, OP_LOC) {
  OP_CHECK(img->ndim == 4 && W->ndim == 4, "patch_embed", file, line, "img must be [B, C, H, W], weight [D, C, P, P]",
           img, W);
  int B = img->shape[0], C = img->shape[1], H = img->shape[2], Wd = img->shape[3], D = W->shape[0];
  OP_CHECK(P > 0 && H % P == 0 && Wd % P == 0, "patch_embed", file, line, "P must divide H and W", img);
  OP_CHECK(W->shape[1] == C && W->shape[2] == P && W->shape[3] == P, "patch_embed", file, line,
           "weight must be [D, C, P, P]", img, W);
  OP_CHECK(!b || b->n == D, "patch_embed", file, line, "bias must be [D]", W, b);
  int N = (H / P) * (Wd / P), K = C * P * P;
  float *cols = arena_alloc(&c->act, sizeof(float) * (size_t)B * N * K);
  unfold(img->data, cols, B, C, H, Wd, P);
  tensor *y = tensor_new_at(c, 3, ((int[]){B, N, D}), file, line);
  dw_linear_fwd(cols, W->data, b ? b->data : NULL, y->data, B * N, D, K);
  tape_entry *e = tape_record(c, "patch_embed", patch_backward, y, 3, (tensor *[]){img, W, b});
  if (e) {
    e->saved[0] = cols;
    e->saved[1] = img->requires_grad ? arena_alloc(&c->act, sizeof(float) * (size_t)B * N * K) : NULL;
    e->iarg[0] = P;
  }
  return y;
}
