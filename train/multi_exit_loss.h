/* The weighted multi-exit loss of EPEE/PABEE: L = sum_i w_i CE(z_i, y) / sum_i w_i. */
#ifndef EPEE_MULTI_EXIT_LOSS_H
#define EPEE_MULTI_EXIT_LOSS_H

#include "core/tensor.h"
#include "train/config.h"

/* The configured weights (asc / uniform / desc / list, see cfg_loss_weights) normalised to sum 1. */
void exit_weights(const cfg_weights *spec, int L, float *w);

/* logits[L] each [B, C], labels [B], normalised weights w[L] -> scalar loss; per-exit CE values are
 * written to ce[L] (may be NULL) for logging. */
tensor *multi_exit_loss(epee_ctx *c, int L, tensor *const *logits, const int32_t *labels, const float *w, float *ce);

#endif
