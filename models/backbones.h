/* The backbones' create functions (one file each, rows of models/registry.c) and the pieces they share
 * (models/blocks.c). Only models/ includes this header. */
#ifndef EPEE_BACKBONES_H
#define EPEE_BACKBONES_H

#include "models/model.h"

int bert_create(model *m, epee_err *e);
int albert_create(model *m, epee_err *e);
int gpt2_create(model *m, epee_err *e);
void gpt2_init(model *m, uint64_t seed);
int vit_create(model *m, epee_err *e);

/* The weights of one post-LN encoder block (BERT's layer, ALBERT's shared layer). */
typedef struct {
  tensor *q_w, *q_b, *k_w, *k_b, *v_w, *v_b;
  tensor *ao_w, *ao_b, *ln1_g, *ln1_b;   /* attention output dense, LayerNorm */
  tensor *in_w, *in_b;                   /* feed-forward in (intermediate) */
  tensor *out_w, *out_b, *ln2_g, *ln2_b; /* feed-forward out, LayerNorm */
} post_ln_block;
/* Declares them under prefix (e.g. "bert.encoder.layer.%d.", with %d = l) and the arch's names of the parts
 * (names[16], in the struct's order). */
void post_ln_declare(model *m, post_ln_block *w, const char *prefix, int l, const char *const *names);
/* h [B,T,D] -> LN2(a + FFN(a)), a = LN1(h + Attn(h)); FFN = out(act(in(.))), act GELU erf or tanh (gelu_new) */
tensor *post_ln_forward(epee_ctx *c, model *m, const post_ln_block *w, tensor *h, const model_batch *b, int gelu_tanh);

/* ids [B,T] -> word[ids] + pos[0..T-1] (+ type[type_ids] when type != NULL): [B, T, E] */
tensor *text_embed(epee_ctx *c, const model_batch *b, int max_position, tensor *word, tensor *pos, tensor *type);
/* h [B,T,D] -> h[:, 0] : [B, D], the [CLS] position */
tensor *cls_rows(epee_ctx *c, tensor *h);
/* h [B,T,D] -> cls_w(dropout(tanh(pool_w h[:, 0] + pool_b))) + cls_b : [B, C] (BERT, ALBERT) */
tensor *cls_pooler_exit(epee_ctx *c, model *m, tensor *h, tensor *pool_w, tensor *pool_b, tensor *cls_w,
                        tensor *cls_b);
/* classifiers.<l>.weight [C, D] and .bias [C] for every layer, into malloc'ed arrays (*w)[L], (*b)[L] */
void declare_exits(model *m, tensor ***w, tensor ***b);

#endif
