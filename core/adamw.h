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

/* One update of every parameter from its grad:
 *   p -= lr wd p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * groups[PG_COUNT] gives each group's lr and weight decay. */
void adamw_step(adamw *opt, param_store *ps, const adamw_group *groups);

#endif
