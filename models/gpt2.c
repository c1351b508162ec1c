/* GPT-2 with an exit after every layer, HuggingFace GPT2Model semantics and state_dict names (prefix
 * "transformer.", as GPT2ForSequenceClassification): wte + wpe, pre-LN blocks (ln_1, attn.c_attn, attn.c_proj,
 * ln_2, mlp.c_fc, mlp.c_proj; Conv1D weights stored [in, out] as HF does), causal plus padding mask,
 * gelu_new, LayerNorm eps from config (GPT-2: 1e-5), the final ln_f.
 * Exit i = classifiers.<i>(dropout(ln_f(h_i)[last real token])) with model.exit_norm (the default), or without
 * ln_f when exit_norm is false. The last REAL token is found from the mask, never a padded position (the
 * reference code pools position -1 of a padded batch); with right padding and a causal mask it has seen
 * exactly the input's tokens. The whole backbone trains. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "models/backbones.h"

typedef struct {
  tensor *ln1_g, *ln1_b, *attn_w, *attn_b, *proj_w, *proj_b;
  tensor *ln2_g, *ln2_b, *fc_w, *fc_b, *mproj_w, *mproj_b;
} gpt2_block;

typedef struct {
  tensor *wte, *wpe;
  gpt2_block *block;
  tensor *lnf_g, *lnf_b;
  tensor **cls_w, **cls_b;
} gpt2_impl;

/* ids [B,T] -> dropout(wte[ids] + wpe[0..T-1]) : [B, T, D] */
static tensor *gpt2_embed(epee_ctx *c, model *m, const model_batch *b) {
  gpt2_impl *p = m->impl;
  return op_dropout(c, text_embed(c, b, m->cfg.max_position, p->wte, p->wpe, NULL), m->cfg.hidden_dropout);
}

/* pre-LN block: h [B,T,D] -> a + MLP(ln_2(a)), a = h + Attn(ln_1(h)) with causal + padding mask */
static tensor *gpt2_layer(epee_ctx *c, model *m, int l, tensor *h, const model_batch *b) {
  const gpt2_block *w = &((gpt2_impl *)m->impl)->block[l];
  const model_config *k = &m->cfg;
  int D = k->hidden;
  tensor *x = op_layernorm(c, h, w->ln1_g, w->ln1_b, k->layer_norm_eps);
  tensor *qkv = op_conv1d(c, x, w->attn_w, w->attn_b); /* [B, T, 3D]: q | k | v */
  tensor *ctx = op_attention(c, op_narrow(c, qkv, 0, D), op_narrow(c, qkv, D, D), op_narrow(c, qkv, 2 * D, D),
                             k->heads, b->mask, 1, k->attention_dropout);
  tensor *a = op_linear_ex(c, ctx, w->proj_w, w->proj_b,
                           (linear_epilogue){.w_in_out = 1, .dropout = k->hidden_dropout, .residual = h});
  x = op_layernorm(c, a, w->ln2_g, w->ln2_b, k->layer_norm_eps);
  tensor *f = op_linear_ex(c, x, w->fc_w, w->fc_b, (linear_epilogue){.w_in_out = 1, .act = ACT_GELU_TANH});
  return op_linear_ex(c, f, w->mproj_w, w->mproj_b,
                      (linear_epilogue){.w_in_out = 1, .dropout = k->hidden_dropout, .residual = a});
}

/* h [B,T,D] -> classifiers.<l>(dropout(ln_f(h[b, last_b]))) : [B, C]  (ln_f only with exit_norm) */
static tensor *gpt2_exit(epee_ctx *c, model *m, int l, tensor *h, const model_batch *b) {
  gpt2_impl *p = m->impl;
  int B = h->shape[0], T = h->shape[1], D = h->shape[2];
  tensor *x = op_gather_rows(c, h, D, model_last_rows(c, b->mask, B, T), B);
  if (m->cfg.exit_norm) x = op_layernorm(c, x, p->lnf_g, p->lnf_b, m->cfg.layer_norm_eps);
  return op_linear(c, op_dropout(c, x, m->cfg.exit_dropout), p->cls_w[l], p->cls_b[l]);
}

static void gpt2_free_impl(model *m) {
  gpt2_impl *p = m->impl;
  if (!p) return;
  free(p->block);
  free(p->cls_w);
  free(p->cls_b);
}

int gpt2_create(model *m, epee_err *e) {
  (void)e;
  const model_config *k = &m->cfg;
  gpt2_impl *p = epee_calloc(1, sizeof *p);
  m->impl = p;
  m->embed = gpt2_embed;
  m->layer = gpt2_layer;
  m->exit = gpt2_exit;
  m->free_impl = gpt2_free_impl;
  int D = k->hidden, F = k->intermediate;
  p->wte = model_decl(m, 0, MAT(k->vocab, D), "transformer.wte.weight", 0);
  p->wpe = model_decl(m, 0, MAT(k->max_position, D), "transformer.wpe.weight", 0);
  p->block = epee_calloc((size_t)k->layers, sizeof *p->block);
  for (int l = 0; l < k->layers; l++) {
    gpt2_block *w = &p->block[l];
#define B_(t, shape, s) w->t = model_decl(m, 0, shape, "transformer.h.%d." s, l)
    B_(ln1_g, VEC(D), "ln_1.weight");
    B_(ln1_b, VEC(D), "ln_1.bias");
    B_(attn_w, MAT(D, 3 * D), "attn.c_attn.weight");
    B_(attn_b, VEC(3 * D), "attn.c_attn.bias");
    B_(proj_w, MAT(D, D), "attn.c_proj.weight");
    B_(proj_b, VEC(D), "attn.c_proj.bias");
    B_(ln2_g, VEC(D), "ln_2.weight");
    B_(ln2_b, VEC(D), "ln_2.bias");
    B_(fc_w, MAT(D, F), "mlp.c_fc.weight");
    B_(fc_b, VEC(F), "mlp.c_fc.bias");
    B_(mproj_w, MAT(F, D), "mlp.c_proj.weight");
    B_(mproj_b, VEC(D), "mlp.c_proj.bias");
#undef B_
  }
  p->lnf_g = model_decl(m, 0, VEC(D), "transformer.ln_f.weight", 0);
  p->lnf_b = model_decl(m, 0, VEC(D), "transformer.ln_f.bias", 0);
  declare_exits(m, &p->cls_w, &p->cls_b);
  return 0;
}

/* HF GPT2's init: the default, except that the projections into the residual stream (attn.c_proj, mlp.c_proj)
 * get std / sqrt(2 L), so that the stream's variance does not grow with depth. */
void gpt2_init(model *m, uint64_t seed) {
  model_init_default(m, seed);
  static const char suffix[] = ".c_proj.weight";
  size_t k = sizeof suffix - 1;
  float s = 1.0f / sqrtf(2.0f * (float)m->cfg.layers);
  for (int i = 0; i < m->ps.n; i++) {
    tensor *t = m->ps.t[i];
    size_t n = strlen(t->name);
    if (n > k && strcmp(t->name + n - k, suffix) == 0)
      for (int64_t j = 0; j < t->n; j++) t->data[j] *= s;
  }
}
