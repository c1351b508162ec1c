/* Pieces several backbones share: the post-LN encoder block, text embeddings, the pooled [CLS] exit, the exit
 * declarations. */
#include <stdio.h>

#include "core/ops.h"
#include "models/backbones.h"

void post_ln_declare(model *m, post_ln_block *w, const char *prefix, int l, const char *const *names) {
  int D = m->cfg.hidden, F = m->cfg.intermediate;
  tensor **t = &w->q_w; /* the struct is 16 tensor pointers in declaration order */
  const int rows[16] = {D, D, D, D, D, D, D, D, D, D, F, F, D, D, D, D};
  const int cols[16] = {D, 0, D, 0, D, 0, D, 0, 0, 0, D, 0, F, 0, 0, 0}; /* 0: a vector */
  char fmt[192];
  for (int i = 0; i < 16; i++) {
    snprintf(fmt, sizeof fmt, "%s%s", prefix, names[i]);
    t[i] = cols[i] ? model_decl(m, 0, MAT(rows[i], cols[i]), fmt, l) : model_decl(m, 0, VEC(rows[i]), fmt, l);
  }
}

tensor *post_ln_forward(epee_ctx *c, model *m, const post_ln_block *w, tensor *h, const model_batch *b, int gelu_tanh) {
  const model_config *k = &m->cfg;
  tensor *q = op_linear(c, h, w->q_w, w->q_b);
  tensor *kk = op_linear(c, h, w->k_w, w->k_b);
  tensor *v = op_linear(c, h, w->v_w, w->v_b);
  tensor *ctx = op_attention(c, q, kk, v, k->heads, b->mask, 0, k->attention_dropout);
  tensor *a = op_linear_ex(c, ctx, w->ao_w, w->ao_b, (linear_epilogue){.dropout = k->hidden_dropout, .residual = h});
  a = op_layernorm(c, a, w->ln1_g, w->ln1_b, k->layer_norm_eps);
  tensor *f = op_linear_ex(c, a, w->in_w, w->in_b, (linear_epilogue){.act = gelu_tanh ? ACT_GELU_TANH : ACT_GELU});
  f = op_linear_ex(c, f, w->out_w, w->out_b, (linear_epilogue){.dropout = k->hidden_dropout, .residual = a});
  return op_layernorm(c, f, w->ln2_g, w->ln2_b, k->layer_norm_eps);
}

tensor *text_embed(epee_ctx *c, const model_batch *b, int max_position, tensor *word, tensor *pos, tensor *type) {
  int B = b->B, T = b->T;
  EPEE_CHECK(T <= max_position, "sequence longer than model.max_position");
  int32_t *pid = arena_alloc(&c->act, sizeof(int32_t) * (size_t)B * T);
  for (int i = 0; i < B; i++)
    for (int t = 0; t < T; t++) pid[i * T + t] = t;
  tensor *x = op_add(c, op_embedding(c, b->ids, B, T, word), op_embedding(c, pid, B, T, pos));
  if (!type) return x;
  int32_t *typ = arena_alloc(&c->act, sizeof(int32_t) * (size_t)B * T);
  for (int i = 0; i < B * T; i++) typ[i] = b->type_ids ? b->type_ids[i] : 0;
  return op_add(c, x, op_embedding(c, typ, B, T, type));
}

tensor *cls_rows(epee_ctx *c, tensor *h) {
  int B = h->shape[0], T = h->shape[1], D = h->shape[2];
  int *rows = arena_alloc(&c->act, sizeof(int) * (size_t)B);
  for (int i = 0; i < B; i++) rows[i] = i * T; /* [CLS] is position 0 */
  return op_gather_rows(c, h, D, rows, B);
}

tensor *cls_pooler_exit(epee_ctx *c, model *m, tensor *h, tensor *pool_w, tensor *pool_b, tensor *cls_w,
                        tensor *cls_b) {
  tensor *pooled = op_tanh(c, op_linear(c, cls_rows(c, h), pool_w, pool_b));
  return op_linear(c, op_dropout(c, pooled, m->cfg.exit_dropout), cls_w, cls_b);
}

void declare_exits(model *m, tensor ***w, tensor ***b) {
  int L = m->cfg.layers, C = m->cfg.num_labels, D = m->cfg.hidden;
  *w = epee_calloc((size_t)L, sizeof(tensor *));
  *b = epee_calloc((size_t)L, sizeof(tensor *));
  for (int l = 0; l < L; l++) {
    (*w)[l] = model_decl(m, 1, MAT(C, D), "classifiers.%d.weight", l);
    (*b)[l] = model_decl(m, 1, VEC(C), "classifiers.%d.bias", l);
  }
}
