/* The backbone interface shared by training and the engine. A backbone is three functions over core
 * ops: embed the batch, run one layer, run one exit. Run under a tape they train; run with grad mode
 * off they are the inference path. The engine calls them layer by layer (so it can stop rows early);
 * the trainer calls model_forward_all. */
#ifndef EPEE_MODEL_H
#define EPEE_MODEL_H

#include "core/params.h"

/* One batch of inputs, rows padded to T. Text models read ids/type_ids/mask; image models read pixels. */
typedef struct {
  int B, T;
  const int32_t *ids;      /* [B, T] */
  const int32_t *type_ids; /* [B, T] or NULL (all 0) */
  const float *mask;       /* [B, T] 1 real, 0 padding */
  const int32_t *last;     /* [B] index of the last real token (GPT-2 pooling), or NULL */
  const float *pixels;     /* [B, C, H, W] for image models */
} model_batch;

typedef struct model model;
struct model {
  const char *arch;
  int n_layers, n_labels, hidden;
  param_store ps;
  void *impl;
  tensor *(*embed)(epee_ctx *c, model *m, const model_batch *b);                    /* -> [B, T, D] */
  tensor *(*layer)(epee_ctx *c, model *m, int l, tensor *h, const model_batch *b); /* [B,T,D] -> [B,T,D] */
  tensor *(*exit)(epee_ctx *c, model *m, int l, tensor *h, const model_batch *b);  /* [B,T,D] -> [B, C] */
  void (*free_impl)(model *m);
};

/* All L exits' logits (logits[l] is [B, C]) for training and calibration. */
void model_forward_all(epee_ctx *c, model *m, const model_batch *b, tensor **logits);
void model_free(model *m);

#endif
