/* One optimizer step of a multi-exit model: forward through every exit, the weighted loss, backward, the
 * non-finite check, gradient clipping, AdamW. Shared by the trainer and bench_train, so that the benchmark times
 * exactly what training runs; with ctx->prof set, the parts outside the tape are profiled too. */
#ifndef EPEE_TRAIN_STEP_H
#define EPEE_TRAIN_STEP_H

#include "core/adamw.h"
#include "models/model.h"

/* mb, labels [B] and the normalised exit weights w[L] -> the loss, with ce[L] (may be NULL) each exit's CE.
 * A non-finite loss or gradient is returned as NaN/Inf before the update: the weights are unchanged. `step`
 * seeds dropout; groups are the AdamW rates of the parameter groups (models/model.h). */
double train_step_run(epee_ctx *c, model *m, const model_batch *mb, const int32_t *labels, const float *w,
                      uint64_t step, double clip, adamw *opt, const adamw_group *groups, float *ce);

#endif
