/* The op set, each with forward (here) and backward (recorded on the tape). Shapes in PyTorch order.
 * Every op is called through a macro that passes the caller's file:line, so a shape mismatch reports
 * where the model code went wrong, not where the op noticed. Outputs are new activation tensors.
 * Integer inputs (token ids, labels, row indices) are plain int32 arrays: they carry no gradient. */
#ifndef EPEE_OPS_H
#define EPEE_OPS_H

#include "core/tensor.h"

#define OP_LOC const char *file, int line
#define OP_AT __FILE__, __LINE__

/* ids[B*T] (int32, each in [0, V)), W[V, D] -> [B, T, D] */
tensor *op_embedding_at(epee_ctx *c, const int32_t *ids, int B, int T, tensor *W, OP_LOC);
#define op_embedding(...) op_embedding_at(__VA_ARGS__, OP_AT)

/* The elementwise activations (op_gelu, op_gelu_tanh, op_tanh) and a linear layer's optional one. */
typedef enum { ACT_NONE, ACT_GELU, ACT_GELU_TANH, ACT_TANH } act_kind;

/* What a linear layer applies to its product in the same op, in this order: x W^T + b -> act (a GELU form) ->
 * dropout p (training only) -> + residual (the output's shape). Without grad recording or dropout, the
 * activation and the residual are oneDNN matmul post-ops (no pass of their own); otherwise one fused pass
 * applies all three, and the backward writes the product's gradient once instead of zero-fill + accumulate. */
typedef struct {
  int w_in_out;     /* W stored [in, out] (HF Conv1D, GPT-2) rather than [out, in] (nn.Linear) */
  act_kind act;     /* ACT_NONE, ACT_GELU or ACT_GELU_TANH */
  float dropout;    /* p in [0, 1) */
  tensor *residual; /* or NULL */
} linear_epilogue;

/* x[..., K], W[N, K] ([K, N] when ep.w_in_out), b[N] or NULL -> [..., N] =
 * dropout(act(x W^T + b)) + residual (oneDNN) */
tensor *op_linear_ex_at(epee_ctx *c, tensor *x, tensor *W, tensor *b, linear_epilogue ep, OP_LOC);
#define op_linear_ex(...) op_linear_ex_at(__VA_ARGS__, OP_AT)

/* x[..., K], W[N, K], b[N] or NULL -> [..., N] = x W^T + b (oneDNN) */
tensor *op_linear_at(epee_ctx *c, tensor *x, tensor *W, tensor *b, OP_LOC);
#define op_linear(...) op_linear_at(__VA_ARGS__, OP_AT)

/* x[..., K], W[K, N] (HF Conv1D orientation, GPT-2), b[N] or NULL -> [..., N] = x W + b (oneDNN) */
tensor *op_conv1d_at(epee_ctx *c, tensor *x, tensor *W, tensor *b, OP_LOC);
#define op_conv1d(...) op_conv1d_at(__VA_ARGS__, OP_AT)

/* a[Bt, M, K], b[Bt, K, N] (trans_b: b is [Bt, N, K]) -> [Bt, M, N] (oneDNN batched matmul) */
tensor *op_bmm_at(epee_ctx *c, tensor *a, tensor *b, int trans_b, OP_LOC);
#define op_bmm(...) op_bmm_at(__VA_ARGS__, OP_AT)

/* a, b same shape -> a + b (residual) */
tensor *op_add_at(epee_ctx *c, tensor *a, tensor *b, OP_LOC);
#define op_add(...) op_add_at(__VA_ARGS__, OP_AT)

/* x[..., N] -> [..., len]: columns [start, start + len) of the last dim (GPT-2's q/k/v out of c_attn) */
tensor *op_narrow_at(epee_ctx *c, tensor *x, int start, int len, OP_LOC);
#define op_narrow(...) op_narrow_at(__VA_ARGS__, OP_AT)

/* n tensors of one shape, weights w[n] -> sum_i w_i x_i (the weighted multi-exit loss) */
tensor *op_weighted_sum_at(epee_ctx *c, int n, tensor *const *xs, const float *w, OP_LOC);
#define op_weighted_sum(...) op_weighted_sum_at(__VA_ARGS__, OP_AT)

/* x[..., D], gamma[D], beta[D] -> LayerNorm over the last dim (biased variance, as PyTorch) */
tensor *op_layernorm_at(epee_ctx *c, tensor *x, tensor *gamma, tensor *beta, float eps, OP_LOC);
#define op_layernorm(...) op_layernorm_at(__VA_ARGS__, OP_AT)

/* elementwise: GELU erf form (BERT, ViT), GELU tanh form (GPT-2 "gelu_new"), tanh (pooler) */
tensor *op_gelu_at(epee_ctx *c, tensor *x, OP_LOC);
tensor *op_gelu_tanh_at(epee_ctx *c, tensor *x, OP_LOC);
tensor *op_tanh_at(epee_ctx *c, tensor *x, OP_LOC);
#define op_gelu(...) op_gelu_at(__VA_ARGS__, OP_AT)
#define op_gelu_tanh(...) op_gelu_tanh_at(__VA_ARGS__, OP_AT)
#define op_tanh(...) op_tanh_at(__VA_ARGS__, OP_AT)
/* The activation kernels over one thread's block of n floats, compiled per ISA (core/simd.h): y = f(x); and
 * dx = dy f'(x), written, for the GELU forms (the fused linear epilogue's backward). */
void act_kernel(act_kind kind, const float *x, float *y, int64_t n);
void act_grad_kernel(act_kind kind, const float *x, const float *dy, float *dx, int64_t n);

/* x[B, H, Tq, Tk] scores, key_mask[B, Tk] (1 real, 0 padding) or NULL, causal (query i sees keys <= i
 * + (Tk - Tq)) -> softmax over the last dim after adding -inf-like masking (as HF: finfo.min) */
tensor *op_softmax_at(epee_ctx *c, tensor *x, const float *key_mask, int causal, OP_LOC);
#define op_softmax(...) op_softmax_at(__VA_ARGS__, OP_AT)

/* Fused multi-head scaled dot-product attention, heads split from the last dim:
 * q, k, v [B, T, H*hd], key_mask[B, T] or NULL, causal -> [B, T, H*hd]
 * = softmax(q k^T / sqrt(hd) + mask) (dropout p on the probabilities in training) v, per head. */
tensor *op_attention_at(epee_ctx *c, tensor *q, tensor *k, tensor *v, int heads, const float *key_mask,
                        int causal, float dropout_p, OP_LOC);
#define op_attention(...) op_attention_at(__VA_ARGS__, OP_AT)

/* x -> x * m / (1 - p), m ~ Bernoulli(1 - p) from (ctx seed, step, call counter): reproducible.
 * Identity (returns x itself) when not training or p == 0. */
tensor *op_dropout_at(epee_ctx *c, tensor *x, float p, OP_LOC);
#define op_dropout(...) op_dropout_at(__VA_ARGS__, OP_AT)
/* The dropout rule of op_dropout and of attention: y[i] = x[i] / keep when uniform(seed, stream, base + i) <
 * keep, else 0; mask[i] = kept (mask may be NULL). Compiled per ISA (core/simd.h). */
void dropout_kernel(const float *x, float *y, uint8_t *mask, int64_t n, float keep, uint64_t seed, uint64_t stream,
                    uint64_t base);

/* x viewed as rows of row_len floats, rows[n] -> [n, row_len]: CLS / last-token pooling (row = b*T + t)
 * and batch compaction (row = b with row_len = T*D). Backward scatters (adds) into the picked rows. */
tensor *op_gather_rows_at(epee_ctx *c, tensor *x, int row_len, const int *rows, int n, OP_LOC);
#define op_gather_rows(...) op_gather_rows_at(__VA_ARGS__, OP_AT)

/* Same data, new shape (numel must match). A new tensor whose grad flows back to x. */
tensor *op_reshape_at(epee_ctx *c, tensor *x, int ndim, const int *shape, OP_LOC);
#define op_reshape(...) op_reshape_at(__VA_ARGS__, OP_AT)

/* x[B, T, D], mask[B, T] (1 real, 0 pad) -> [B, D] mean over real positions */
tensor *op_mean_pool_at(epee_ctx *c, tensor *x, const float *mask, OP_LOC);
#define op_mean_pool(...) op_mean_pool_at(__VA_ARGS__, OP_AT)

/* img[B, C, H, W], W[D, C, P, P] (HF ViT conv weight), b[D] -> [B, (H/P)*(W/P), D]: non-overlapping
 * patches, row-major over the patch grid (= Conv2d stride P, flattened and transposed as HF ViT) */
tensor *op_patch_embed_at(epee_ctx *c, tensor *img, tensor *W, tensor *b, int P, OP_LOC);
#define op_patch_embed(...) op_patch_embed_at(__VA_ARGS__, OP_AT)

/* x[B, N, D] patches, cls[1, 1, D], pos[1, N+1, D] -> [B, N+1, D] = concat(cls, x) + pos (HF ViT embeddings) */
tensor *op_cls_pos_embed_at(epee_ctx *c, tensor *x, tensor *cls, tensor *pos, OP_LOC);
#define op_cls_pos_embed(...) op_cls_pos_embed_at(__VA_ARGS__, OP_AT)

/* logits[B, C], labels[B] in [0, C), class_w[C] or NULL -> scalar mean cross-entropy
 * (weighted: sum_b w[y_b] nll_b / sum_b w[y_b], as torch.nn.functional.cross_entropy) */
tensor *op_cross_entropy_at(epee_ctx *c, tensor *logits, const int32_t *labels, const float *class_w, OP_LOC);
#define op_cross_entropy(...) op_cross_entropy_at(__VA_ARGS__, OP_AT)

#endif
