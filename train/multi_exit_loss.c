#include "train/multi_exit_loss.h"

#include "core/ops.h"

void exit_weights(const cfg_weights *spec, int L, float *w) {
  double *raw = epee_malloc(sizeof(double) * (size_t)L), sum = 0.0;
  cfg_loss_weights(spec, L, raw);
  for (int i = 0; i < L; i++) sum += raw[i];
  EPEE_CHECK(sum > 0, "loss weights must not all be zero (cfg_validate checks this)");
  for (int i = 0; i < L; i++) w[i] = (float)(raw[i] / sum);
  free(raw);
}

tensor *multi_exit_loss(epee_ctx *c, int L, tensor *const *logits, const int32_t *labels, const float *w, float *ce) {
  tensor **losses = arena_alloc(&c->act, sizeof(tensor *) * (size_t)L);
  for (int i = 0; i < L; i++) {
    losses[i] = op_cross_entropy(c, logits[i], labels, NULL);
    if (ce) ce[i] = losses[i]->data[0];
  }
  return op_weighted_sum(c, L, losses, w);
}
