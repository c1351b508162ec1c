/* ViT with an exit after every layer, HuggingFace ViTModel semantics and state_dict names (prefix "vit.", as
 * ViTForImageClassification): patch embedding (a Conv2d with kernel = stride = patch_size, weight [D, C, P, P]),
 * [CLS] token and learned position embeddings, pre-LN blocks (layernorm_before, attention, layernorm_after,
 * MLP with exact GELU), the final vit.layernorm. Exit i = classifiers.<i>(dropout(x_i[CLS])), x_i =
 * vit.layernorm(h_i) with model.exit_norm, else h_i (the reference code's choice). Every position is a real
 * patch, so the mask is all ones and the engine's compaction only drops rows. */
#include <stdlib.h>

#include "core/ops.h"
#include "models/backbones.h"

typedef struct {
  tensor *ln1_g, *ln1_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *ao_w, *ao_b;
  tensor *ln2_g, *ln2_b, *in_w, *in_b, *out_w, *out_b;
} vit_block;

typedef struct {
  tensor *patch_w, *patch_b, *cls, *pos;
  vit_block *block;
  tensor *ln_g, *ln_b;
  tensor **cls_w, **cls_b;
} vit_impl;

/* pixels [B, C, S, S] -> dropout(concat(cls, patches) + pos) : [B, N+1, D] */
static tensor *vit_embed(epee_ctx *c, model *m, const model_batch *b) {
  vit_impl *p = m->impl;
  const model_config *k = &m->cfg;
  EPEE_CHECK(b->pixels && b->T == model_max_tokens(m), "vit: the batch needs pixels and T = patches + 1");
  tensor *img = tensor_wrap(c, (float *)b->pixels, 4, (int[]){b->B, k->channels, k->image_size, k->image_size});
  tensor *x = op_patch_embed(c, img, p->patch_w, p->patch_b, k->patch_size);
  return op_dropout(c, op_cls_pos_embed(c, x, p->cls, p->pos), k->hidden_dropout);
}

/* pre-LN block: h [B,T,D] -> a + MLP(LN2(a)), a = h + Attn(LN1(h)), GELU erf */
static tensor *vit_layer(epee_ctx *c, model *m, int l, tensor *h, const model_batch *b) {
  const vit_block *w = &((vit_impl *)m->impl)->block[l];
  const model_config *k = &m->cfg;
  tensor *x = op_layernorm(c, h, w->ln1_g, w->ln1_b, k->layer_norm_eps);
  tensor *ctx = op_attention(c, op_linear(c, x, w->q_w, w->q_b), op_linear(c, x, w->k_w, w->k_b),
                             op_linear(c, x, w->v_w, w->v_b), k->heads, b->mask, 0, k->attention_dropout);
  tensor *a = op_linear_ex(c, ctx, w->ao_w, w->ao_b, (linear_epilogue){.dropout = k->hidden_dropout, .residual = h});
  x = op_layernorm(c, a, w->ln2_g, w->ln2_b, k->layer_norm_eps);
  tensor *f = op_linear_ex(c, x, w->in_w, w->in_b, (linear_epilogue){.act = ACT_GELU});
  return op_linear_ex(c, f, w->out_w, w->out_b, (linear_epilogue){.dropout = k->hidden_dropout, .residual = a});
}

/* h [B,T,D] -> classifiers.<l>(dropout(x[:, 0])), x = vit.layernorm(h) with exit_norm, else h : [B, C] */
static tensor *vit_exit(epee_ctx *c, model *m, int l, tensor *h, const model_batch *b) {
  vit_impl *p = m->impl;
  (void)b;
  tensor *x = cls_rows(c, h);
  if (m->cfg.exit_norm) x = op_layernorm(c, x, p->ln_g, p->ln_b, m->cfg.layer_norm_eps);
  return op_linear(c, op_dropout(c, x, m->cfg.exit_dropout), p->cls_w[l], p->cls_b[l]);
}

static void vit_free_impl(model *m) {
  vit_impl *p = m->impl;
  if (!p) return;
  free(p->block);
  free(p->cls_w);
  free(p->cls_b);
}

int vit_create(model *m, epee_err *e) {
  const model_config *k = &m->cfg;
  if (k->channels != 1 && k->channels != 3)
    return epee_errf(e, "vit: model channels is %d; expected 1 (grey) or 3 (RGB)", k->channels);
  if (k->image_size % k->patch_size)
    return epee_errf(e, "vit: model image_size %d is not a multiple of patch_size %d", k->image_size, k->patch_size);
  vit_impl *p = epee_calloc(1, sizeof *p);
  m->impl = p;
  m->embed = vit_embed;
  m->layer = vit_layer;
  m->exit = vit_exit;
  m->free_impl = vit_free_impl;
  int D = k->hidden, F = k->intermediate, P = k->patch_size, T = model_max_tokens(m);
  p->patch_w = model_decl(m, 0, 4, (int[]){D, k->channels, P, P}, "vit.embeddings.patch_embeddings.projection.weight", 0);
  p->patch_b = model_decl(m, 0, VEC(D), "vit.embeddings.patch_embeddings.projection.bias", 0);
  p->cls = model_decl(m, 0, 3, (int[]){1, 1, D}, "vit.embeddings.cls_token", 0);
  p->pos = model_decl(m, 0, 3, (int[]){1, T, D}, "vit.embeddings.position_embeddings", 0);
  p->block = epee_calloc((size_t)k->layers, sizeof *p->block);
  for (int l = 0; l < k->layers; l++) {
    vit_block *w = &p->block[l];
#define B_(t, shape, s) w->t = model_decl(m, 0, shape, "vit.encoder.layer.%d." s, l)
    B_(ln1_g, VEC(D), "layernorm_before.weight");
    B_(ln1_b, VEC(D), "layernorm_before.bias");
    B_(q_w, MAT(D, D), "attention.attention.query.weight");
    B_(q_b, VEC(D), "attention.attention.query.bias");
    B_(k_w, MAT(D, D), "attention.attention.key.weight");
    B_(k_b, VEC(D), "attention.attention.key.bias");
    B_(v_w, MAT(D, D), "attention.attention.value.weight");
    B_(v_b, VEC(D), "attention.attention.value.bias");
    B_(ao_w, MAT(D, D), "attention.output.dense.weight");
    B_(ao_b, VEC(D), "attention.output.dense.bias");
    B_(ln2_g, VEC(D), "layernorm_after.weight");
    B_(ln2_b, VEC(D), "layernorm_after.bias");
    B_(in_w, MAT(F, D), "intermediate.dense.weight");
    B_(in_b, VEC(F), "intermediate.dense.bias");
    B_(out_w, MAT(D, F), "output.dense.weight");
    B_(out_b, VEC(D), "output.dense.bias");
#undef B_
  }
  p->ln_g = model_decl(m, 0, VEC(D), "vit.layernorm.weight", 0);
  p->ln_b = model_decl(m, 0, VEC(D), "vit.layernorm.bias", 0);
  declare_exits(m, &p->cls_w, &p->cls_b);
  return 0;
}
