/* AdamW (Loshchilov & Hutter; torch.optim.AdamW): decoupled weight decay, bias correction, one
 * (lr, weight decay) pair per parameter group. */
#ifndef EPEE_ADAMW_H
#define EPEE_ADAMW_H

#include "core/params.h"

typedef struct {
  float lr, weight_decay;
} adamw_group;

typedef struct {
  float beta1, beta2, eps;
  int64_t t; /* steps taken; part of the checkpoint */
} adamw;

/* One update of every parameter from its grad, g = grad_scale * grad (the clipping factor, params_clip_factor;
 * 1: none):
 *   p -= lr wd p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * groups[PG_COUNT] gives each group's lr and weight decay. Leaves every grad zero, ready for the next backward:
 * the scaling and the zeroing ride on the update's pass instead of two more passes over the gradients. */
void adamw_step(adamw *opt, param_store *ps, const adamw_group *groups, float grad_scale);

#endif
