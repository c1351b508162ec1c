/* Masked softmax and fused multi-head scaled dot-product attention.
 * Masking follows HF: a masked score gets + finfo(float32).min, so a fully masked row becomes uniform
 * instead of NaN. Both ops parallelise over (batch, head) rows; each (b, h) writes only its own slices. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/ops.h"
#include "core/rng.h"

#define MASKED (-FLT_MAX)

/* is key j visible to query i (of Tq) in batch b? */
static inline int visible(const float *key_mask, int causal, int b, int i, int j, int Tq, int Tk) {
  if (key_mask && key_mask[(size_t)b * Tk + j] == 0.0f) return 0;
  return !causal || j <= i + (Tk - Tq);
}

/* row softmax in place: s[n] */
static inline void softmax_row(float *s, int n) {
  float mx = s[0];
  for (int j = 1; j < n; j++) mx = s[j] > mx ? s[j] : mx;
  float sum = 0.0f;
  for (int j = 0; j < n; j++) {
    s[j] = expf(s[j] - mx);
    sum += s[j];
  }
  float inv = 1.0f / sum;
  for (int j = 0; j < n; j++) s[j] *= inv;
}

/* dS = P * (dP - sum_j P dP), in place in dp */
static inline void softmax_row_backward(const float *p, float *dp, int n) {
  float dot = 0.0f;
  for (int j = 0; j < n; j++) dot += p[j] * dp[j];
  for (int j = 0; j < n; j++) dp[j] = p[j] * (dp[j] - dot);
}

/* ---- softmax: x[B, H, Tq, Tk], key_mask[B, Tk] or NULL, causal -> probabilities ---- */
static void softmax_backward(tape_entry *e) {
  tensor *x = e->in[0], *y = e->out;
  int Tk = y->shape[3];
  int64_t rows = y->n / Tk;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *p = y->data + r * Tk, *g = y->grad + r * Tk;
    float *dx = x->grad + r * Tk;
    float dot = 0.0f;
    for (int j = 0; j < Tk; j++) dot += p[j] * g[j];
    for (int j = 0; j < Tk; j++) dx[j] += p[j] * (g[j] - dot);
  }
}

tensor *op_softmax_at(epee_ctx *c, tensor *x, const float *key_mask, int causal, OP_LOC) {
  OP_CHECK(x->ndim == 4, "softmax", file, line, "scores must be [B, H, Tq, Tk]", x);
  int B = x->shape[0], H = x->shape[1], Tq = x->shape[2], Tk = x->shape[3];
  OP_CHECK(!causal || Tk >= Tq, "softmax", file, line, "causal masking needs Tk >= Tq", x);
  tensor *y = tensor_new_at(c, 4, x->shape, file, line);
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < Tq; i++) {
        size_t o = (((size_t)b * H + h) * Tq + i) * Tk;
        for (int j = 0; j < Tk; j++) y->data[o + j] = x->data[o + j] + (visible(key_mask, causal, b, i, j, Tq, Tk) ? 0.0f : MASKED);
        softmax_row(y->data + o, Tk);
      }
  tape_record(c, "softmax", softmax_backward, y, 1, &x);
  return y;
}

/* ---- attention: q, k, v [B, T, H*hd] -> [B, T, H*hd] ----
 * Saved for backward: P [B, H, T, T] (softmax) and, with dropout, the kept-and-scaled P'. */
typedef struct {
  float *p, *pd; /* pd == p without dropout */
  const float *key_mask;
  int B, T, H, hd, causal;
} attn_saved;

static void attention_backward(tape_entry *e) {
  const attn_saved *s = e->saved[0];
  tensor *q = e->in[0], *k = e->in[1], *v = e->in[2];
  int B = s->B, T = s->T, H = s->H, hd = s->hd, D = H * hd;
  float scale = 1.0f / sqrtf((float)hd), keep = e->farg[0];
  const float *dout = e->out->grad;
#pragma omp parallel
  {
    float *dp = epee_malloc(sizeof(float) * (size_t)T);
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
      for (int h = 0; h < H; h++) {
        const float *P = s->p + ((size_t)b * H + h) * T * T, *Pd = s->pd + ((size_t)b * H + h) * T * T;
        for (int i = 0; i < T; i++) {
          const float *go = dout + ((size_t)b * T + i) * D + h * hd;
          const float *qi = q->data + ((size_t)b * T + i) * D + h * hd;
          /* dP'_ij = dout_i . v_j ; dv_j += P'_ij dout_i */
          for (int j = 0; j < T; j++) {
            const float *vj = v->data + ((size_t)b * T + j) * D + h * hd;
            float sdot = 0.0f;
            for (int d = 0; d < hd; d++) sdot += go[d] * vj[d];
            dp[j] = sdot;
            float pij = Pd[(size_t)i * T + j];
            if (v->requires_grad && pij != 0.0f) {
              float *dvj = v->grad + ((size_t)b * T + j) * D + h * hd;
              for (int d = 0; d < hd; d++) dvj[d] += pij * go[d];
            }
          }
          if (s->pd != s->p) /* through dropout: dP = dP' * m / keep, m recovered from P' != 0 */
            for (int j = 0; j < T; j++) dp[j] = Pd[(size_t)i * T + j] != 0.0f ? dp[j] / keep : 0.0f;
          softmax_row_backward(P + (size_t)i * T, dp, T);
          float *dqi = q->requires_grad ? q->grad + ((size_t)b * T + i) * D + h * hd : NULL;
          for (int j = 0; j < T; j++) {
            float g = dp[j] * scale;
            if (g == 0.0f) continue;
            const float *kj = k->data + ((size_t)b * T + j) * D + h * hd;
            if (dqi)
              for (int d = 0; d < hd; d++) dqi[d] += g * kj[d];
            if (k->requires_grad) {
              float *dkj = k->grad + ((size_t)b * T + j) * D + h * hd;
              for (int d = 0; d < hd; d++) dkj[d] += g * qi[d];
            }
          }
        }
      }
    free(dp);
  }
}

tensor *op_attention_at(epee_ctx *c, tensor *q, tensor *k, tensor *v, int heads, const float *key_mask, int causal,
                        float dropout_p, OP_LOC) {
  OP_CHECK(q->ndim == 3 && k->ndim == 3 && v->ndim == 3, "attention", file, line, "q, k, v must be [B, T, D]", q, k, v);
  int B = q->shape[0], T = q->shape[1], D = q->shape[2];
  for (int i = 0; i < 3; i++)
    OP_CHECK(k->shape[i] == q->shape[i] && v->shape[i] == q->shape[i], "attention", file, line,
             "q, k, v must have the same shape", q, k, v);
  OP_CHECK(heads >= 1 && D % heads == 0, "attention", file, line, "D must be a multiple of heads", q);
  OP_CHECK(dropout_p >= 0.0f && dropout_p < 1.0f, "attention", file, line, "dropout p must be in [0, 1)", q);
  int H = heads, hd = D / H;
  float scale = 1.0f / sqrtf((float)hd);
  int drop = c->training && dropout_p > 0.0f;
  float keep = 1.0f - dropout_p;
  uint64_t stream = drop ? (c->step << 20) + c->dropout_calls++ : 0;
  int record = c->grad_mode && (q->requires_grad || k->requires_grad || v->requires_grad);
  tensor *y = tensor_new_at(c, 3, q->shape, file, line);
  /* probabilities: kept for backward, or one T x T scratch row block per (b, h) when not recording */
  size_t pn = record ? (size_t)B * H * T * T : 0;
  float *P = record ? arena_alloc(&c->act, sizeof(float) * pn) : NULL;
  float *Pd = record && drop ? arena_alloc(&c->act, sizeof(float) * pn) : P;
  /* one score row per thread when probabilities are not kept (no allocation inside the op's loop) */
  float *rows = record ? NULL : arena_alloc(&c->act, sizeof(float) * (size_t)T * (size_t)omp_get_max_threads());
#pragma omp parallel
  {
    float *row = rows ? rows + (size_t)T * (size_t)omp_get_thread_num() : NULL;
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
      for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++) {
          const float *qi = q->data + ((size_t)b * T + i) * D + h * hd;
          float *p = record ? P + (((size_t)b * H + h) * T + i) * T : row;
          for (int j = 0; j < T; j++) {
            if (!visible(key_mask, causal, b, i, j, T, T)) {
              p[j] = MASKED;
              continue;
            }
            const float *kj = k->data + ((size_t)b * T + j) * D + h * hd;
            float sdot = 0.0f;
            for (int d = 0; d < hd; d++) sdot += qi[d] * kj[d];
            p[j] = sdot * scale;
          }
          softmax_row(p, T);
          float *pd = p;
          if (drop) {
            pd = record ? Pd + (((size_t)b * H + h) * T + i) * T : row;
            uint64_t base = (((uint64_t)b * H + h) * T + i) * T;
            for (int j = 0; j < T; j++) pd[j] = rng_uniform(c->seed, stream, base + j) < keep ? p[j] / keep : 0.0f;
          }
          float *yi = y->data + ((size_t)b * T + i) * D + h * hd;
          memset(yi, 0, sizeof(float) * (size_t)hd);
          for (int j = 0; j < T; j++) {
            float pij = pd[j];
            if (pij == 0.0f) continue;
            const float *vj = v->data + ((size_t)b * T + j) * D + h * hd;
            for (int d = 0; d < hd; d++) yi[d] += pij * vj[d];
          }
        }
  }
  tape_entry *e = tape_record(c, "attention", attention_backward, y, 3, (tensor *[]){q, k, v});
  if (e) {
    attn_saved *s = arena_alloc(&c->act, sizeof *s);
    *s = (attn_saved){P, Pd, key_mask, B, T, H, hd, causal};
    e->saved[0] = s;
    e->farg[0] = keep;
  }
  return y;
}
