/* ALBERT with an exit after every layer, HuggingFace AlbertModel semantics and state_dict names:
 * factorised embeddings (word/position/token-type of size E, LayerNorm over E, then
 * encoder.embedding_hidden_mapping_in E -> H), ONE post-LN layer per group whose weights every layer of the
 * group applies (layer l uses group int(l / (L / G)), as HF computes it), gelu_new (tanh form),
 * pooler dense + tanh shared by the exits, exit_i = classifiers.<i>(dropout(pooler(h_i[CLS]))).
 * Shared weights need nothing special: every application records its own tape entries and backward
 * accumulates (+=) into the one set of gradients. */
#include <stdlib.h>

#include "core/ops.h"
#include "models/backbones.h"

typedef struct {
  tensor *word, *pos, *type, *emb_ln_g, *emb_ln_b, *map_w, *map_b;
  post_ln_block *group;
  tensor *pool_w, *pool_b;
  tensor **cls_w, **cls_b;
} albert_impl;

/* ids, type_ids [B,T] -> mapping_in(dropout(LN_E(word + position + token_type))) : [B, T, H] */
static tensor *albert_embed(epee_ctx *c, model *m, const model_batch *b) {
  albert_impl *p = m->impl;
  tensor *x = text_embed(c, b, m->cfg.max_position, p->word, p->pos, p->type);
  x = op_dropout(c, op_layernorm(c, x, p->emb_ln_g, p->emb_ln_b, m->cfg.layer_norm_eps), m->cfg.hidden_dropout);
  return op_linear(c, x, p->map_w, p->map_b);
}

/* post-LN block of layer l's group: h [B,T,H] -> LN2(a + ffn_output(gelu_new(ffn(a)))), a = LN1(h + Attn(h)) */
static tensor *albert_layer(epee_ctx *c, model *m, int l, tensor *h, const model_batch *b) {
  const model_config *k = &m->cfg;
  /* HF's int(l / (L / G)) in the same double arithmetic, so non-dividing G pick HF's groups exactly */
  int g = (int)((double)l / ((double)k->layers / k->hidden_groups));
  return post_ln_forward(c, m, &((albert_impl *)m->impl)->group[g], h, b, 1);
}

/* h [B,T,H] -> classifiers.<l>(dropout(tanh(pooler(h[:, 0])))) : [B, C] */
static tensor *albert_exit(epee_ctx *c, model *m, int l, tensor *h, const model_batch *b) {
  albert_impl *p = m->impl;
  (void)b;
  return cls_pooler_exit(c, m, h, p->pool_w, p->pool_b, p->cls_w[l], p->cls_b[l]);
}

static void albert_free_impl(model *m) {
  albert_impl *p = m->impl;
  if (!p) return;
  free(p->group);
  free(p->cls_w);
  free(p->cls_b);
}

int albert_create(model *m, epee_err *e) {
  const model_config *k = &m->cfg;
  if (k->hidden_groups > k->layers)
    return epee_errf(e, "albert: model hidden_groups %d exceeds layers %d (every group needs a layer)",
                     k->hidden_groups, k->layers);
  albert_impl *p = epee_calloc(1, sizeof *p);
  m->impl = p;
  m->embed = albert_embed;
  m->layer = albert_layer;
  m->exit = albert_exit;
  m->free_impl = albert_free_impl;
  int E = k->embedding_size, D = k->hidden;
  p->word = model_decl(m, 0, MAT(k->vocab, E), "albert.embeddings.word_embeddings.weight", 0);
  p->pos = model_decl(m, 0, MAT(k->max_position, E), "albert.embeddings.position_embeddings.weight", 0);
  p->type = model_decl(m, 0, MAT(k->type_vocab, E), "albert.embeddings.token_type_embeddings.weight", 0);
  p->emb_ln_g = model_decl(m, 0, VEC(E), "albert.embeddings.LayerNorm.weight", 0);
  p->emb_ln_b = model_decl(m, 0, VEC(E), "albert.embeddings.LayerNorm.bias", 0);
  p->map_w = model_decl(m, 0, MAT(D, E), "albert.encoder.embedding_hidden_mapping_in.weight", 0);
  p->map_b = model_decl(m, 0, VEC(D), "albert.encoder.embedding_hidden_mapping_in.bias", 0);
  static const char *const names[16] = {
      "attention.query.weight", "attention.query.bias", "attention.key.weight", "attention.key.bias",
      "attention.value.weight", "attention.value.bias", "attention.dense.weight", "attention.dense.bias",
      "attention.LayerNorm.weight", "attention.LayerNorm.bias", "ffn.weight", "ffn.bias", "ffn_output.weight",
      "ffn_output.bias", "full_layer_layer_norm.weight", "full_layer_layer_norm.bias"};
  p->group = epee_calloc((size_t)k->hidden_groups, sizeof *p->group);
  for (int g = 0; g < k->hidden_groups; g++)
    post_ln_declare(m, &p->group[g], "albert.encoder.albert_layer_groups.%d.albert_layers.0.", g, names);
  p->pool_w = model_decl(m, 0, MAT(D, D), "albert.pooler.weight", 0);
  p->pool_b = model_decl(m, 0, VEC(D), "albert.pooler.bias", 0);
  declare_exits(m, &p->cls_w, &p->cls_b);
  return 0;
}
