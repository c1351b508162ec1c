/* Training checkpoints (HDF5, written atomically: temp file + rename, so a kill never leaves a broken
 * one, and never written when any parameter is NaN/Inf). Holds everything --resume needs to continue
 * exactly as an uninterrupted run: weights by HF name, AdamW m and v (flat, in the store's layout), the
 * best weights so far, the step/epoch/batch position, the best-metric bookkeeping. The RNG needs no
 * state: every random number is a function of (seed, step, counter). */
#ifndef EPEE_CHECKPOINT_H
#define EPEE_CHECKPOINT_H

#include "core/adamw.h"

typedef struct {
  int64_t step;          /* optimizer steps done */
  int64_t epoch;         /* current epoch (0-based) */
  int64_t batch;         /* batches of that epoch already done */
  int64_t best_step;     /* step of the best evaluation, -1 before any */
  int64_t evals_since_best;
  int64_t total_steps;
  double best_metric;
} train_state;

/* best may be NULL (no best yet). config_json is stored for information. */
int checkpoint_save(const char *path, const param_store *ps, const adamw *opt, const float *best,
                    const train_state *st, const char *config_json, epee_err *e);
/* Loads into an allocated store of the same model; best (ps->total floats) filled when present. */
int checkpoint_load(const char *path, param_store *ps, adamw *opt, float *best, int *has_best, train_state *st,
                    epee_err *e);

#endif
