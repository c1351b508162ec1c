/* BERT with an exit after every layer, HuggingFace semantics and state_dict names (BertModel + PABEE/EPEE
 * heads): post-LN blocks, GELU erf, LayerNorm eps from config, one pooler (dense + tanh on [CLS]) shared by
 * all exits, exit_i = classifiers.<i>(dropout(pooler(h_i))). */
#include <stdlib.h>

#include "core/ops.h"
#include "models/backbones.h"

typedef struct {
  tensor *word, *pos, *type, *emb_ln_g, *emb_ln_b;
  post_ln_block *layer;
  tensor *pool_w, *pool_b;
  tensor **cls_w, **cls_b;
} bert_impl;

/* ids [B,T], type_ids [B,T] -> LayerNorm(word + position + token_type) -> dropout: [B, T, D] */
static tensor *bert_embed(epee_ctx *c, model *m, const model_batch *b) {
  bert_impl *p = m->impl;
  tensor *x = text_embed(c, b, m->cfg.max_position, p->word, p->pos, p->type);
  x = op_layernorm(c, x, p->emb_ln_g, p->emb_ln_b, m->cfg.layer_norm_eps);
  return op_dropout(c, x, m->cfg.hidden_dropout);
}

/* post-LN block: h [B,T,D] -> LN(a + FFN(a)), a = LN(h + Attn(h)), GELU erf */
static tensor *bert_layer_fwd(epee_ctx *c, model *m, int l, tensor *h, const model_batch *b) {
  return post_ln_forward(c, m, &((bert_impl *)m->impl)->layer[l], h, b, 0);
}

/* h [B,T,D] -> classifiers.<l>(dropout(tanh(pooler(h[:, 0])))) : [B, C] */
static tensor *bert_exit(epee_ctx *c, model *m, int l, tensor *h, const model_batch *b) {
  bert_impl *p = m->impl;
  (void)b;
  return cls_pooler_exit(c, m, h, p->pool_w, p->pool_b, p->cls_w[l], p->cls_b[l]);
}

static void bert_free_impl(model *m) {
  bert_impl *p = m->impl;
  if (!p) return;
  free(p->layer);
  free(p->cls_w);
  free(p->cls_b);
}

int bert_create(model *m, epee_err *e) {
  (void)e;
  const model_config *k = &m->cfg;
  bert_impl *p = epee_calloc(1, sizeof *p);
  m->impl = p;
  m->embed = bert_embed;
  m->layer = bert_layer_fwd;
  m->exit = bert_exit;
  m->free_impl = bert_free_impl;
  int D = k->hidden;
  p->word = model_decl(m, 0, MAT(k->vocab, D), "bert.embeddings.word_embeddings.weight", 0);
  p->pos = model_decl(m, 0, MAT(k->max_position, D), "bert.embeddings.position_embeddings.weight", 0);
  p->type = model_decl(m, 0, MAT(k->type_vocab, D), "bert.embeddings.token_type_embeddings.weight", 0);
  p->emb_ln_g = model_decl(m, 0, VEC(D), "bert.embeddings.LayerNorm.weight", 0);
  p->emb_ln_b = model_decl(m, 0, VEC(D), "bert.embeddings.LayerNorm.bias", 0);
  static const char *const names[16] = {
      "attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
      "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
      "attention.output.dense.weight", "attention.output.dense.bias", "attention.output.LayerNorm.weight",
      "attention.output.LayerNorm.bias", "intermediate.dense.weight", "intermediate.dense.bias",
      "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias"};
  p->layer = epee_calloc((size_t)k->layers, sizeof *p->layer);
  for (int l = 0; l < k->layers; l++) post_ln_declare(m, &p->layer[l], "bert.encoder.layer.%d.", l, names);
  p->pool_w = model_decl(m, 0, MAT(D, D), "bert.pooler.dense.weight", 0);
  p->pool_b = model_decl(m, 0, VEC(D), "bert.pooler.dense.bias", 0);
  declare_exits(m, &p->cls_w, &p->cls_b);
  return 0;
}
