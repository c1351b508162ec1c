/* One batch of an encoded set (text or images) as model input: the buffers behind a model_batch, sized once.
 * Shared by the trainer (with augmentation), its evaluation and the engine's dataset runs. */
#ifndef EPEE_INFER_BATCH_H
#define EPEE_INFER_BATCH_H

#include "data/dataset.h"
#include "models/model.h"

typedef struct {
  int32_t *ids, *types, *labels; /* [max_batch, max_len], [max_batch, max_len], [max_batch] */
  float *mask;                   /* [max_batch, max_len] */
  float *pixels;                 /* [max_batch, C, H, W] for an image set, else NULL */
  int max_batch, max_len;
} batch_buf;

/* Buffers for batches of up to max_batch rows of d (its max_len tokens; its image size). */
void batch_buf_init(batch_buf *bb, const ds_encoded *d, int max_batch);
void batch_buf_free(batch_buf *bb);

/* Batch b of d into bb (labels included) -> the model_batch over bb. aug (images only; NULL = none) draws from
 * (seed, step) as img_fill_batch says, so a resumed run sees the same crops. */
model_batch batch_buf_fill(batch_buf *bb, const ds_encoded *d, const ds_batch *b, const img_aug *aug, uint64_t seed,
                           uint64_t step);

#endif
