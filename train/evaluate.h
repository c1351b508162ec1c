/* Evaluation of every exit on a split: all-exit logits through the engine (the serving code path, so
 * dev numbers and calibration see exactly what epee-infer will compute), then accuracy and macro-F1
 * per exit. */
#ifndef EPEE_EVALUATE_H
#define EPEE_EVALUATE_H

#include "data/dataset.h"
#include "infer/engine.h"

/* logits [N, L, C] in the split's order; batches of `batch` rows sorted by length. */
void eval_logits(engine *g, const ds_encoded *d, int batch, float *logits);
/* acc[L], f1[L] of argmax per exit */
void eval_per_exit(const float *logits, const int *gold, int N, int L, int C, double *acc, double *f1);

#endif
