#include "infer/batch.h"

#include <string.h>

void batch_buf_init(batch_buf *bb, const ds_encoded *d, int max_batch) {
  memset(bb, 0, sizeof *bb);
  bb->max_batch = max_batch;
  bb->max_len = d->max_len > 0 ? d->max_len : 1;
  size_t bt = (size_t)max_batch * bb->max_len;
  bb->ids = epee_malloc(sizeof(int32_t) * bt);
  bb->types = epee_malloc(sizeof(int32_t) * bt);
  bb->mask = epee_malloc(sizeof(float) * bt);
  bb->labels = epee_malloc(sizeof(int32_t) * (size_t)max_batch);
  const img_set *s = d->images;
  if (s) bb->pixels = epee_malloc(sizeof(float) * (size_t)max_batch * s->C * s->H * s->W);
}

void batch_buf_free(batch_buf *bb) {
  free(bb->ids), free(bb->types), free(bb->mask), free(bb->labels), free(bb->pixels);
  memset(bb, 0, sizeof *bb);
}

model_batch batch_buf_fill(batch_buf *bb, const ds_encoded *d, const ds_batch *b, const img_aug *aug, uint64_t seed,
                           uint64_t step) {
  EPEE_CHECK(b->n <= bb->max_batch && b->max_len <= bb->max_len, "batch_buf: batch above its sizes");
  ds_fill_batch(d, b, bb->ids, bb->types, bb->mask, bb->labels);
  if (d->images) img_fill_batch(d->images, b->idx, b->n, &d->norm, aug, seed, step, bb->pixels);
  return (model_batch){.B = b->n, .T = b->max_len, .ids = bb->ids, .type_ids = bb->types, .mask = bb->mask,
                       .pixels = bb->pixels};
}
