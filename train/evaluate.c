#include "train/evaluate.h"

#include <stdlib.h>
#include <string.h>

#include "core/progress.h"
#include "infer/batch.h"
#include "infer/metrics.h"

void eval_logits(engine *g, const ds_encoded *d, int batch, float *logits) {
  int L = g->m->n_layers, C = g->m->n_labels;
  ds_plan plan;
  ds_plan_make(d, batch, 0, 0, 0, &plan); /* eval order: sorted by length, original indices kept */
  batch_buf bb;
  batch_buf_init(&bb, d, batch);
  float *out = epee_malloc(sizeof(float) * (size_t)batch * L * C);
  progress bar;
  if (g->progress) progress_start_quiet(&bar, g->progress, "all exits", d->n, "ex");
  for (int bi = 0; bi < plan.n_batches; bi++) {
    const ds_batch *b = &plan.batches[bi];
    model_batch mb = batch_buf_fill(&bb, d, b, NULL, 0, 0);
    engine_all_exits(g, &mb, out);
    for (int r = 0; r < b->n; r++)
      memcpy(logits + (size_t)b->idx[r] * L * C, out + (size_t)r * L * C, sizeof(float) * (size_t)L * C);
    if (g->progress) progress_update(&bar, b->n, NULL);
  }
  if (g->progress) progress_finish(&bar, NULL);
  ds_plan_free(&plan);
  batch_buf_free(&bb);
  free(out);
}

void eval_per_exit(const float *logits, const int *gold, int N, int L, int C, double *acc, double *f1) {
  int *pred = epee_malloc(sizeof(int) * (size_t)N);
  for (int l = 0; l < L; l++) {
    for (int i = 0; i < N; i++) {
      const float *z = logits + ((size_t)i * L + l) * C;
      int best = 0;
      for (int k = 1; k < C; k++)
        if (z[k] > z[best]) best = k;
      pred[i] = best;
    }
    acc[l] = metric_accuracy(gold, pred, N);
    f1[l] = metric_macro_f1(gold, pred, N, C);
  }
  free(pred);
}
