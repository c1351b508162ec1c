/* BERT with an exit after every layer, HuggingFace semantics and state_dict names
 * (BertModel + PABEE/EPEE heads): post-LN blocks, GELU erf, LayerNorm eps from config, one pooler
 * (dense + tanh on [CLS]) shared by all exits, exit_i = classifiers.<i>(dropout(pooler(h_i))). */
#ifndef EPEE_BERT_H
#define EPEE_BERT_H

#include "models/model.h"

typedef struct {
  int vocab, hidden, layers, heads, intermediate, max_position, type_vocab, num_labels;
  float hidden_dropout, attention_dropout, exit_dropout, layer_norm_eps, init_std;
} bert_config;

/* Declares and allocates every parameter (zeroed), for training or serving only (params_use). Returns -1 with e
 * set on an invalid config. */
int bert_create(model *m, const bert_config *cfg, params_use use, epee_err *e);
/* HF init: weights N(0, init_std), biases 0, LayerNorm weight 1 / bias 0 (padding row not special). */
void bert_init_weights(model *m, uint64_t seed);
const bert_config *bert_get_config(const model *m);

#endif
