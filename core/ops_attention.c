/* Masked softmax and fused multi-head scaled dot-product attention.
 *
 * Masking follows HF: a masked score becomes torch.finfo(float32).min (= -FLT_MAX). HF *adds* finfo.min
 * to the score; in float32 that sum rounds to -FLT_MAX for any |score| < 1e31, so setting is the same
 * thing. Consequence kept on purpose: a fully masked row (a padded query under causal + padding masks,
 * or a batch entry with no real token) gets a uniform softmax over all keys instead of NaN, exactly as HF.
 * Its gradient is zero: every score of that row was replaced by a constant. (HF's autograd would push the
 * uniform row's Jacobian through the masked scores; in a model nothing reaches such a row anyway, since
 * padded positions are never attended to and never feed the loss.)
 *
 * Attention works per (batch, head) on strided head slices of q, k, v [B, T, H*hd] (no copies): two
 * single-threaded oneDNN GEMMs forward and four backward, the row softmax in between while the T x T
 * block is hot in cache; OpenMP runs the (batch, head) pairs in parallel, and each pair writes only its
 * own slices, so the result does not depend on the thread count. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "core/dnnl_wrap.h"
#include "core/fast_exp.h"
#include "core/ops.h"
#include "core/rng.h"
#include "core/simd.h"

#define MASKED (-FLT_MAX)

/* s[n] -> softmax(s) in place; returns 1 when the row was fully masked (uniform, no gradient) */
EPEE_VECTOR_CLONES static int softmax_row(float *s, int n) {
  float mx = -FLT_MAX;
#pragma omp simd reduction(max : mx)
  for (int j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < n; j++) {
    s[j] = fast_exp(s[j] - mx);
    sum += s[j];
  }
  float inv = 1.0f / sum; /* sum >= 1: the max entry contributes e^0 */
#pragma omp simd
  for (int j = 0; j < n; j++) s[j] *= inv;
  return mx == MASKED;
}

/* Masks row s[Tk] of query i: keys with key_mask == 0 (key_mask: this batch's [Tk] row or NULL) and,
 * when causal, keys j > i + (Tk - Tq). */
EPEE_VECTOR_CLONES static void mask_row(float *s, const float *key_mask, int causal, int i, int Tq, int Tk) {
  if (key_mask) {
#pragma omp simd
    for (int j = 0; j < Tk; j++) s[j] = key_mask[j] != 0.0f ? s[j] : MASKED;
  }
  if (causal)
    for (int j = i + (Tk - Tq) + 1; j < Tk; j++) s[j] = MASKED;
}

/* dx[n] (+)= p (dy - sum_j p_j dy_j) scale, the softmax Jacobian applied to dy; dx may be dy itself */
EPEE_VECTOR_CLONES static void softmax_row_backward(const float *p, const float *dy, float *dx, int n, float scale,
                                                     int accumulate) {
  float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
  for (int j = 0; j < n; j++) dot += p[j] * dy[j];
  if (accumulate) {
#pragma omp simd
    for (int j = 0; j < n; j++) dx[j] += p[j] * (dy[j] - dot) * scale;
  } else {
#pragma omp simd
    for (int j = 0; j < n; j++) dx[j] = p[j] * (dy[j] - dot) * scale;
  }
}

/* ---- softmax: x[B, H, Tq, Tk], key_mask[B, Tk] or NULL, causal -> probabilities, same shape ---- */
static void softmax_backward(tape_entry *e) {
  tensor *x = e->in[0], *y = e->out;
  const uint8_t *dead = e->saved[0]; /* fully masked rows, NULL when there are none */
  int Tk = y->shape[3];
  int64_t rows = y->n / (Tk ? Tk : 1);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++)
    if (!dead || !dead[r]) softmax_row_backward(y->data + r * Tk, y->grad + r * Tk, x->grad + r * Tk, Tk, 1.0f, 1);
}

tensor *op_softmax_at(epee_ctx *c, tensor *x, const float *key_mask, int causal, OP_LOC) {
  OP_CHECK(x->ndim == 4, "softmax", file, line, "scores must be [B, H, Tq, Tk]", x);
  int B = x->shape[0], H = x->shape[1], Tq = x->shape[2], Tk = x->shape[3];
  OP_CHECK(!causal || Tk >= Tq, "softmax", file, line, "causal masking needs Tk >= Tq", x);
  tensor *y = tensor_new_at(c, 4, x->shape, file, line);
  int64_t rows = (int64_t)B * H * Tq;
  /* only a padding mask can empty a row (causal always leaves key 0) */
  int record = c->grad_mode && x->requires_grad;
  uint8_t *dead = record && key_mask ? arena_alloc(&c->act, (size_t)rows) : NULL;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    float *s = y->data + r * Tk;
    memcpy(s, x->data + r * Tk, sizeof(float) * (size_t)Tk);
    mask_row(s, key_mask ? key_mask + (r / ((int64_t)H * Tq)) * Tk : NULL, causal, (int)(r % Tq), Tq, Tk);
    int empty = Tk ? softmax_row(s, Tk) : 0;
    if (dead) dead[r] = (uint8_t)empty;
  }
  tape_entry *e = tape_record(c, "softmax", softmax_backward, y, 1, &x);
  if (e) e->saved[0] = dead;
  return y;
}

/* ---- attention: q, k, v [B, T, H*hd] -> [B, T, H*hd] ---- */
typedef struct {
  float *p;         /* [B, H, T, T] softmax probabilities (before dropout) */
  uint8_t *keep_m;  /* [B, H, T, T] dropout keep mask, NULL without dropout */
  uint8_t *dead;    /* [B, H, T] fully masked query rows, NULL without a padding mask */
  float *scratch;   /* backward: 2 T x T blocks per thread */
  int B, T, H, hd, nthr;
  float keep;
} attn_saved;

/* probabilities after dropout: pd = p * m / keep */
EPEE_VECTOR_CLONES static void apply_dropout(const float *p, const uint8_t *m, float *pd, int64_t n, float keep) {
  float inv = 1.0f / keep;
#pragma omp simd
  for (int64_t j = 0; j < n; j++) pd[j] = m[j] ? p[j] * inv : 0.0f;
}

static void attention_backward(tape_entry *e) {
  const attn_saved *s = e->saved[0];
  tensor *q = e->in[0], *k = e->in[1], *v = e->in[2];
  int B = s->B, T = s->T, H = s->H, hd = s->hd, D = H * hd;
  size_t TT = (size_t)T * T;
  float scale = 1.0f / sqrtf((float)hd);
  const float *dout = e->out->grad;
#pragma omp parallel num_threads(s->nthr)
  {
    float *dp = s->scratch + 2 * TT * (size_t)omp_get_thread_num(), *pd = dp + TT;
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
      for (int h = 0; h < H; h++) {
        size_t head = (size_t)b * T * D + (size_t)h * hd, bh = ((size_t)b * H + h) * TT;
        const float *P = s->p + bh, *go = dout + head;
        if (v->requires_grad) { /* dV += P'^T dO, P' the probabilities after dropout */
          if (s->keep_m) apply_dropout(P, s->keep_m + bh, pd, (int64_t)TT, s->keep);
          dw_gemm(1, 0, T, hd, T, 1.0f, s->keep_m ? pd : P, T, go, D, 1.0f, v->grad + head, D);
        }
        if (!q->requires_grad && !k->requires_grad) continue;
        /* dP' = dO V^T, back through dropout (dP = dP' m / keep), then the softmax:
         * dS = P (dP - rowdot) scale, in place */
        dw_gemm(0, 1, T, T, hd, 1.0f, go, D, v->data + head, D, 0.0f, dp, T);
        if (s->keep_m) apply_dropout(dp, s->keep_m + bh, dp, (int64_t)TT, s->keep);
        const uint8_t *dead = s->dead ? s->dead + ((size_t)b * H + h) * T : NULL;
        for (int i = 0; i < T; i++) {
          float *ds = dp + (size_t)i * T;
          if (dead && dead[i])
            memset(ds, 0, sizeof(float) * (size_t)T);
          else
            softmax_row_backward(P + (size_t)i * T, ds, ds, T, scale, 0);
        }
        /* dQ += dS K ; dK += dS^T Q */
        if (q->requires_grad) dw_gemm(0, 0, T, hd, T, 1.0f, dp, T, k->data + head, D, 1.0f, q->grad + head, D);
        if (k->requires_grad) dw_gemm(1, 0, T, hd, T, 1.0f, dp, T, q->data + head, D, 1.0f, k->grad + head, D);
      }
  }
}

tensor *op_attention_at(epee_ctx *c, tensor *q, tensor *k, tensor *v, int heads, const float *key_mask, int causal,
                        float dropout_p, OP_LOC) {
  OP_CHECK(q->ndim == 3 && k->ndim == 3 && v->ndim == 3, "attention", file, line, "q, k, v must be [B, T, D]", q, k, v);
  for (int i = 0; i < 3; i++)
    OP_CHECK(k->shape[i] == q->shape[i] && v->shape[i] == q->shape[i], "attention", file, line,
             "q, k, v must have the same shape", q, k, v);
  int B = q->shape[0], T = q->shape[1], D = q->shape[2];
  OP_CHECK(heads >= 1 && D % heads == 0, "attention", file, line, "D must be a multiple of heads", q);
  OP_CHECK(dropout_p >= 0.0f && dropout_p < 1.0f, "attention", file, line, "dropout p must be in [0, 1)", q);
  int H = heads, hd = D / H;
  size_t TT = (size_t)T * T;
  float scale = 1.0f / sqrtf((float)hd), keep = 1.0f - dropout_p;
  int drop = c->training && dropout_p > 0.0f;
  /* the same stream rule as op_dropout: (step, call counter) */
  uint64_t stream = drop ? (c->step << 20) + c->dropout_calls++ : 0;
  int record = c->grad_mode && (q->requires_grad || k->requires_grad || v->requires_grad);
  int nthr = omp_get_max_threads();
  tensor *y = tensor_new_at(c, 3, q->shape, file, line);

  /* recording keeps P (and the dropout mask) for backward; otherwise one T x T block per thread */
  float *P = record ? arena_alloc(&c->act, sizeof(float) * TT * (size_t)B * H) : NULL;
  uint8_t *keep_m = record && drop ? arena_alloc(&c->act, TT * (size_t)B * H) : NULL;
  uint8_t *dead = record && key_mask ? arena_alloc(&c->act, (size_t)B * H * T) : NULL;
  float *scratch = arena_alloc(&c->act, sizeof(float) * TT * (size_t)nthr * (record ? 2 : 1 + drop));
#pragma omp parallel num_threads(nthr)
  {
    float *tmp = scratch + TT * (size_t)omp_get_thread_num() * (record ? 2 : 1 + drop);
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
      for (int h = 0; h < H; h++) {
        size_t head = (size_t)b * T * D + (size_t)h * hd, bh = ((size_t)b * H + h) * TT;
        float *S = record ? P + bh : tmp;
        dw_gemm(0, 1, T, T, hd, scale, q->data + head, D, k->data + head, D, 0.0f, S, T);
        for (int i = 0; i < T; i++) {
          mask_row(S + (size_t)i * T, key_mask ? key_mask + (size_t)b * T : NULL, causal, i, T, T);
          int empty = softmax_row(S + (size_t)i * T, T);
          if (dead) dead[((size_t)b * H + h) * T + i] = (uint8_t)empty;
        }
        const float *Pd = S;
        if (drop) {
          float *pd = record ? tmp : tmp + TT;
          dropout_kernel(S, pd, keep_m ? keep_m + bh : NULL, (int64_t)TT, keep, c->seed, stream, bh);
          Pd = pd;
        }
        dw_gemm(0, 0, T, hd, T, 1.0f, Pd, T, v->data + head, D, 0.0f, y->data + head, D);
      }
  }
  tape_entry *e = tape_record(c, "attention", attention_backward, y, 3, (tensor *[]){q, k, v});
  if (e) {
    attn_saved *s = arena_alloc(&c->act, sizeof *s);
    *s = (attn_saved){P, keep_m, dead, scratch, B, T, H, hd, nthr, keep};
    e->saved[0] = s;
  }
  return y;
}
