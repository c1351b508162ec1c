#include "infer/engine.h"

#include <string.h>

#include "core/progress.h"

int engine_init(engine *g, model *m, int max_batch, int max_len, epee_err *e) {
  memset(g, 0, sizeof *g);
  if (max_batch < 1 || max_len < 1)
    return epee_errf(e, "engine: batch (%d) and length (%d) must be at least 1", max_batch, max_len);
  g->m = m;
  g->max_batch = max_batch;
  g->max_len = max_len;
  size_t bt = (size_t)max_batch * max_len;
  for (int i = 0; i < 2; i++) g->h[i] = epee_malloc(sizeof(float) * bt * (size_t)m->hidden);
  g->ids = epee_malloc(sizeof(int32_t) * bt);
  g->types = epee_malloc(sizeof(int32_t) * bt);
  g->mask = epee_malloc(sizeof(float) * bt);
  g->row = epee_malloc(sizeof(int) * (size_t)max_batch);
  g->len = epee_malloc(sizeof(int) * (size_t)max_batch);
  g->state = epee_malloc(sizeof(epee_exit_state) * (size_t)max_batch);
  g->probs = epee_malloc(sizeof(float) * (size_t)m->n_labels);
  ctx_init(&g->ctx, 0, 0);
  g->ctx.grad_mode = 0;
  g->ctx.training = 0;
  /* warm-up at the largest shape sizes the activation arena once */
  int32_t *ids = epee_calloc(bt, sizeof(int32_t));
  float *mask = epee_malloc(sizeof(float) * bt), *logits = epee_malloc(sizeof(float) * (size_t)max_batch *
                                                                          m->n_layers * m->n_labels);
  for (size_t i = 0; i < bt; i++) mask[i] = 1.0f;
  model_batch mb = {.B = max_batch, .T = max_len, .ids = ids, .mask = mask};
  engine_all_exits(g, &mb, logits);
  free(ids), free(mask), free(logits);
  ctx_reset(&g->ctx);
  arena_freeze(&g->ctx.act);
  return 0;
}

void engine_free(engine *g) {
  if (!g->m) return;
  free(g->h[0]), free(g->h[1]), free(g->ids), free(g->types), free(g->mask), free(g->row), free(g->len);
  free(g->state), free(g->probs);
  ctx_free(&g->ctx);
  memset(g, 0, sizeof *g);
}

/* One pass. With all_logits: full depth, every exit recorded, no compaction. Otherwise early exit. */
static void run(engine *g, const model_batch *b, const epee_policy *p, int *label, int *layers, float *probs,
                float *all_logits) {
  model *m = g->m;
  int n = b->B, T = b->T, D = m->hidden, L = m->n_layers, C = m->n_labels;
  EPEE_CHECK(n <= g->max_batch && T <= g->max_len, "engine: batch or length above the engine_init sizes");
  if (n == 0) return;
  memcpy(g->ids, b->ids, sizeof(int32_t) * (size_t)n * T);
  memcpy(g->mask, b->mask, sizeof(float) * (size_t)n * T);
  if (b->type_ids)
    memcpy(g->types, b->type_ids, sizeof(int32_t) * (size_t)n * T);
  else
    memset(g->types, 0, sizeof(int32_t) * (size_t)n * T);
  for (int r = 0; r < n; r++) {
    int len = 0;
    for (int t = 0; t < T; t++) len = b->mask[(size_t)r * T + t] != 0.0f ? t + 1 : len;
    g->row[r] = r;
    g->len[r] = len;
    epee_exit_state_init(&g->state[r]);
  }
  ctx_reset(&g->ctx);
  arena_mark start = arena_get_mark(&g->ctx.act);
  model_batch mb = {.B = n, .T = T, .ids = g->ids, .type_ids = g->types, .mask = g->mask};
  tensor *h = m->embed(&g->ctx, m, &mb);
  int cur = 0;
  memcpy(g->h[cur], h->data, sizeof(float) * (size_t)n * T * D);
  arena_release(&g->ctx.act, start);
  for (int l = 0; l < L && n > 0; l++) {
    h = tensor_wrap(&g->ctx, g->h[cur], 3, (int[]){n, T, D});
    mb = (model_batch){.B = n, .T = T, .ids = g->ids, .type_ids = g->types, .mask = g->mask};
    tensor *out = m->layer(&g->ctx, m, l, h, &mb);
    tensor *z = m->exit(&g->ctx, m, l, out, &mb);
    float *next = g->h[cur ^ 1];
    if (all_logits) {
      for (int r = 0; r < n; r++)
        memcpy(all_logits + ((size_t)g->row[r] * L + l) * C, z->data + (size_t)r * C, sizeof(float) * (size_t)C);
      memcpy(next, out->data, sizeof(float) * (size_t)n * T * D);
    } else {
      /* decide every row, compacting the bookkeeping of the rows that stay (k <= r: in place is safe) */
      int keep = 0, newT = 0;
      for (int r = 0; r < n; r++) {
        const float *zr = z->data + (size_t)r * C;
        int lab;
        if (epee_policy_step(p, &g->state[r], zr, C, l, L, NULL, &lab)) {
          int o = g->row[r];
          label[o] = lab;
          layers[o] = l + 1;
          if (probs) epee_softmax(zr, C, probs + (size_t)o * C);
          continue;
        }
        /* hidden state and inputs of row r move to slot keep, trimmed to newT later: first at full T */
        memcpy(next + (size_t)keep * T * D, out->data + (size_t)r * T * D, sizeof(float) * (size_t)T * D);
        memmove(g->ids + (size_t)keep * T, g->ids + (size_t)r * T, sizeof(int32_t) * (size_t)T);
        memmove(g->types + (size_t)keep * T, g->types + (size_t)r * T, sizeof(int32_t) * (size_t)T);
        memmove(g->mask + (size_t)keep * T, g->mask + (size_t)r * T, sizeof(float) * (size_t)T);
        g->row[keep] = g->row[r];
        g->len[keep] = g->len[r];
        g->state[keep] = g->state[r];
        if (g->len[r] > newT) newT = g->len[r];
        keep++;
      }
      if (keep && newT < T) { /* trim padding columns: row k moves from stride T to stride newT */
        for (int k = 0; k < keep; k++) {
          memmove(next + (size_t)k * newT * D, next + (size_t)k * T * D, sizeof(float) * (size_t)newT * D);
          memmove(g->ids + (size_t)k * newT, g->ids + (size_t)k * T, sizeof(int32_t) * (size_t)newT);
          memmove(g->types + (size_t)k * newT, g->types + (size_t)k * T, sizeof(int32_t) * (size_t)newT);
          memmove(g->mask + (size_t)k * newT, g->mask + (size_t)k * T, sizeof(float) * (size_t)newT);
        }
        T = newT;
      }
      n = keep;
    }
    arena_release(&g->ctx.act, start);
    cur ^= 1;
  }
}

void engine_classify(engine *g, const model_batch *b, const epee_policy *p, int *label, int *layers, float *probs) {
  run(g, b, p, label, layers, probs, NULL);
}

void engine_all_exits(engine *g, const model_batch *b, float *logits) { run(g, b, NULL, NULL, NULL, NULL, logits); }

double engine_classify_dataset(engine *g, const ds_encoded *d, int batch, const epee_policy *p, int *label, int *layers,
                               float *probs) {
  EPEE_CHECK(batch <= g->max_batch && d->max_len <= g->max_len, "engine: dataset shapes above the engine_init sizes");
  int C = g->m->n_labels;
  ds_plan plan;
  ds_plan_make(d, batch, 0, 0, 0, &plan);
  size_t bt = (size_t)batch * (d->max_len ? d->max_len : 1);
  int32_t *ids = epee_malloc(sizeof(int32_t) * bt), *types = epee_malloc(sizeof(int32_t) * bt);
  float *mask = epee_malloc(sizeof(float) * bt), *pr = probs ? epee_malloc(sizeof(float) * (size_t)batch * C) : NULL;
  int *lab = epee_malloc(sizeof(int) * (size_t)batch), *lay = epee_malloc(sizeof(int) * (size_t)batch);
  double seconds = 0.0;
  for (int i = 0; i < plan.n_batches; i++) {
    const ds_batch *bb = &plan.batches[i];
    ds_fill_batch(d, bb, ids, types, mask, NULL);
    model_batch mb = {.B = bb->n, .T = bb->max_len, .ids = ids, .type_ids = types, .mask = mask};
    double t0 = now_seconds();
    engine_classify(g, &mb, p, lab, lay, pr);
    seconds += now_seconds() - t0;
    for (int r = 0; r < bb->n; r++) {
      int o = bb->idx[r];
      label[o] = lab[r];
      layers[o] = lay[r];
      if (probs) memcpy(probs + (size_t)o * C, pr + (size_t)r * C, sizeof(float) * (size_t)C);
    }
  }
  ds_plan_free(&plan);
  free(ids), free(types), free(mask), free(pr), free(lab), free(lay);
  return seconds;
}
