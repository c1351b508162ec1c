#include "models/bert.h"

#include <stdio.h>
#include <string.h>

#include "core/ops.h"
#include "core/rng.h"

typedef struct {
  tensor *q_w, *q_b, *k_w, *k_b, *v_w, *v_b;
  tensor *ao_w, *ao_b, *ln1_g, *ln1_b; /* attention.output.{dense, LayerNorm} */
  tensor *in_w, *in_b;                 /* intermediate.dense */
  tensor *out_w, *out_b, *ln2_g, *ln2_b; /* output.{dense, LayerNorm} */
} bert_layer;

typedef struct {
  bert_config cfg;
  tensor *word, *pos, *type, *emb_ln_g, *emb_ln_b;
  bert_layer *layer;
  tensor *pool_w, *pool_b;
  tensor **cls_w, **cls_b;
} bert_impl;

static bert_impl *impl(model *m) { return m->impl; }

/* ---- forward pieces (shapes: B batch, T tokens, D hidden, C labels) ---- */

/* ids [B,T], type_ids [B,T] -> LayerNorm(word + position + token_type) -> dropout: [B, T, D] */
static tensor *bert_embed(epee_ctx *c, model *m, const model_batch *b) {
  bert_impl *p = impl(m);
  int B = b->B, T = b->T;
  EPEE_CHECK(T <= p->cfg.max_position, "sequence longer than model.max_position");
  int32_t *pos = arena_alloc(&c->act, sizeof(int32_t) * (size_t)B * T);
  int32_t *typ = arena_alloc(&c->act, sizeof(int32_t) * (size_t)B * T);
  for (int i = 0; i < B; i++)
    for (int t = 0; t < T; t++) {
      pos[i * T + t] = t;
      typ[i * T + t] = b->type_ids ? b->type_ids[i * T + t] : 0;
    }
  tensor *x = op_add(c, op_embedding(c, b->ids, B, T, p->word), op_embedding(c, pos, B, T, p->pos));
  x = op_add(c, x, op_embedding(c, typ, B, T, p->type));
  x = op_layernorm(c, x, p->emb_ln_g, p->emb_ln_b, p->cfg.layer_norm_eps);
  return op_dropout(c, x, p->cfg.hidden_dropout);
}

/* post-LN block: h [B,T,D] -> LN(a + FFN(a)), a = LN(h + Attn(h)) */
static tensor *bert_layer_fwd(epee_ctx *c, model *m, int l, tensor *h, const model_batch *b) {
  bert_impl *p = impl(m);
  const bert_layer *w = &p->layer[l];
  float pd = p->cfg.hidden_dropout, eps = p->cfg.layer_norm_eps;
  tensor *q = op_linear(c, h, w->q_w, w->q_b);
  tensor *k = op_linear(c, h, w->k_w, w->k_b);
  tensor *v = op_linear(c, h, w->v_w, w->v_b);
  tensor *ctx = op_attention(c, q, k, v, p->cfg.heads, b->mask, 0, p->cfg.attention_dropout);
  tensor *a = op_dropout(c, op_linear(c, ctx, w->ao_w, w->ao_b), pd);
  a = op_layernorm(c, op_add(c, a, h), w->ln1_g, w->ln1_b, eps);
  tensor *f = op_gelu(c, op_linear(c, a, w->in_w, w->in_b));
  f = op_dropout(c, op_linear(c, f, w->out_w, w->out_b), pd);
  return op_layernorm(c, op_add(c, f, a), w->ln2_g, w->ln2_b, eps);
}

/* h [B,T,D] -> classifiers.<l>(dropout(tanh(pooler(h[:, 0])))) : [B, C] */
static tensor *bert_exit(epee_ctx *c, model *m, int l, tensor *h, const model_batch *b) {
  bert_impl *p = impl(m);
  int B = h->shape[0], T = h->shape[1], D = h->shape[2];
  int *rows = arena_alloc(&c->act, sizeof(int) * (size_t)B);
  for (int i = 0; i < B; i++) rows[i] = i * T; /* [CLS] is position 0 */
  (void)b;
  tensor *cls = op_gather_rows(c, h, D, rows, B);
  tensor *pooled = op_tanh(c, op_linear(c, cls, p->pool_w, p->pool_b));
  return op_linear(c, op_dropout(c, pooled, p->cfg.exit_dropout), p->cls_w[l], p->cls_b[l]);
}

/* ---- construction ---- */

static tensor *decl(model *m, int is_exit, int ndim, const int *shape, const char *fmt, int l) {
  char name[128];
  snprintf(name, sizeof name, fmt, l);
  return params_declare(&m->ps, name, ndim, shape, is_exit);
}
#define MAT(r, cols) 2, ((int[]){(r), (cols)})
#define VEC(n) 1, ((int[]){(n)})

static void bert_free_impl(model *m) {
  bert_impl *p = impl(m);
  if (!p) return;
  free(p->layer);
  free(p->cls_w);
  free(p->cls_b);
}

int bert_create(model *m, const bert_config *cfg, params_use use, epee_err *e) {
  memset(m, 0, sizeof *m);
  const bert_config *k = cfg;
  if (k->vocab < 1 || k->hidden < 1 || k->layers < 1 || k->heads < 1 || k->intermediate < 1 || k->max_position < 1 ||
      k->type_vocab < 1 || k->num_labels < 2)
    return epee_errf(e, "bert: sizes must be positive and num_labels >= 2 (got vocab %d, hidden %d, layers %d, heads %d, "
                        "intermediate %d, max_position %d, type_vocab %d, num_labels %d)",
                     k->vocab, k->hidden, k->layers, k->heads, k->intermediate, k->max_position, k->type_vocab,
                     k->num_labels);
  if (k->hidden % k->heads) return epee_errf(e, "bert: hidden %d is not a multiple of heads %d", k->hidden, k->heads);
  bert_impl *p = epee_calloc(1, sizeof *p);
  p->cfg = *cfg;
  m->impl = p;
  m->arch = "bert";
  m->n_layers = k->layers;
  m->n_labels = k->num_labels;
  m->hidden = k->hidden;
  m->embed = bert_embed;
  m->layer = bert_layer_fwd;
  m->exit = bert_exit;
  m->free_impl = bert_free_impl;
  params_init(&m->ps);
  int D = k->hidden, F = k->intermediate;
  p->word = decl(m, 0, MAT(k->vocab, D), "bert.embeddings.word_embeddings.weight", 0);
  p->pos = decl(m, 0, MAT(k->max_position, D), "bert.embeddings.position_embeddings.weight", 0);
  p->type = decl(m, 0, MAT(k->type_vocab, D), "bert.embeddings.token_type_embeddings.weight", 0);
  p->emb_ln_g = decl(m, 0, VEC(D), "bert.embeddings.LayerNorm.weight", 0);
  p->emb_ln_b = decl(m, 0, VEC(D), "bert.embeddings.LayerNorm.bias", 0);
  p->layer = epee_calloc((size_t)k->layers, sizeof *p->layer);
  for (int l = 0; l < k->layers; l++) {
    bert_layer *w = &p->layer[l];
    w->q_w = decl(m, 0, MAT(D, D), "bert.encoder.layer.%d.attention.self.query.weight", l);
    w->q_b = decl(m, 0, VEC(D), "bert.encoder.layer.%d.attention.self.query.bias", l);
    w->k_w = decl(m, 0, MAT(D, D), "bert.encoder.layer.%d.attention.self.key.weight", l);
    w->k_b = decl(m, 0, VEC(D), "bert.encoder.layer.%d.attention.self.key.bias", l);
    w->v_w = decl(m, 0, MAT(D, D), "bert.encoder.layer.%d.attention.self.value.weight", l);
    w->v_b = decl(m, 0, VEC(D), "bert.encoder.layer.%d.attention.self.value.bias", l);
    w->ao_w = decl(m, 0, MAT(D, D), "bert.encoder.layer.%d.attention.output.dense.weight", l);
    w->ao_b = decl(m, 0, VEC(D), "bert.encoder.layer.%d.attention.output.dense.bias", l);
    w->ln1_g = decl(m, 0, VEC(D), "bert.encoder.layer.%d.attention.output.LayerNorm.weight", l);
    w->ln1_b = decl(m, 0, VEC(D), "bert.encoder.layer.%d.attention.output.LayerNorm.bias", l);
    w->in_w = decl(m, 0, MAT(F, D), "bert.encoder.layer.%d.intermediate.dense.weight", l);
    w->in_b = decl(m, 0, VEC(F), "bert.encoder.layer.%d.intermediate.dense.bias", l);
    w->out_w = decl(m, 0, MAT(D, F), "bert.encoder.layer.%d.output.dense.weight", l);
    w->out_b = decl(m, 0, VEC(D), "bert.encoder.layer.%d.output.dense.bias", l);
    w->ln2_g = decl(m, 0, VEC(D), "bert.encoder.layer.%d.output.LayerNorm.weight", l);
    w->ln2_b = decl(m, 0, VEC(D), "bert.encoder.layer.%d.output.LayerNorm.bias", l);
  }
  p->pool_w = decl(m, 0, MAT(D, D), "bert.pooler.dense.weight", 0);
  p->pool_b = decl(m, 0, VEC(D), "bert.pooler.dense.bias", 0);
  p->cls_w = epee_calloc((size_t)k->layers, sizeof(tensor *));
  p->cls_b = epee_calloc((size_t)k->layers, sizeof(tensor *));
  for (int l = 0; l < k->layers; l++) {
    p->cls_w[l] = decl(m, 1, MAT(k->num_labels, D), "classifiers.%d.weight", l);
    p->cls_b[l] = decl(m, 1, VEC(k->num_labels), "classifiers.%d.bias", l);
  }
  params_allocate(&m->ps, use);
  return 0;
}

void bert_init_weights(model *m, uint64_t seed) {
  bert_impl *p = impl(m);
  for (int i = 0; i < m->ps.n; i++) {
    tensor *t = m->ps.t[i];
    const char *dot = strrchr(t->name, '.');
    int is_ln = strstr(t->name, "LayerNorm") != NULL;
    if (t->ndim == 1) { /* biases 0, LayerNorm weight 1 */
      float v = is_ln && strcmp(dot, ".weight") == 0 ? 1.0f : 0.0f;
      for (int64_t j = 0; j < t->n; j++) t->data[j] = v;
    } else {
      /* streams from 2^63 up: never those of dropout ((step << 20) + call), so masks and init are independent */
      rng_fill_normal(t->data, t->n, p->cfg.init_std, seed, (1ULL << 63) + (uint64_t)i);
    }
  }
}

const bert_config *bert_get_config(const model *m) { return &((const bert_impl *)m->impl)->cfg; }
