#include "infer/engine.h"

#include <string.h>

#include "core/progress.h"
#include "infer/batch.h"

int engine_init(engine *g, model *m, int max_batch, int max_len, epee_err *e) {
  memset(g, 0, sizeof *g);
  if (max_batch < 1 || max_len < 1)
    return epee_errf(e, "engine: batch (%d) and length (%d) must be at least 1", max_batch, max_len);
  g->m = m;
  g->max_batch = max_batch;
  g->max_len = max_len;
  size_t bt = (size_t)max_batch * max_len;
  for (int i = 0; i < 2; i++) g->h[i] = epee_malloc(sizeof(float) * bt * (size_t)m->hidden);
  g->mask = epee_malloc(sizeof(float) * bt);
  g->row = epee_malloc(sizeof(int) * (size_t)max_batch);
  g->len = epee_malloc(sizeof(int) * (size_t)max_batch);
  g->state = epee_malloc(sizeof(epee_exit_state) * (size_t)max_batch);
  g->scaled = epee_malloc(sizeof(float) * (size_t)m->n_labels);
  ctx_init(&g->ctx, 0, 0);
  g->ctx.grad_mode = 0;
  g->ctx.training = 0;
  /* Warm-up at the largest shape: every later call runs the same ops on at most as many rows and tokens,
   * so the arena's high-water mark is reached here; the next ctx_reset folds it into one block. */
  int32_t *ids = epee_calloc(bt, sizeof(int32_t));
  float *mask = epee_malloc(sizeof(float) * bt);
  float *logits = epee_malloc(sizeof(float) * (size_t)max_batch * m->n_layers * m->n_labels);
  const model_config *k = &m->cfg;
  float *pixels = m->arch->input == MODEL_INPUT_IMAGE
                      ? epee_calloc((size_t)max_batch * k->channels * k->image_size * k->image_size, sizeof(float))
                      : NULL;
  for (size_t i = 0; i < bt; i++) mask[i] = 1.0f;
  model_batch mb = {.B = max_batch, .T = max_len, .ids = ids, .mask = mask, .pixels = pixels};
  engine_all_exits(g, &mb, logits);
  free(ids), free(mask), free(logits), free(pixels);
  ctx_reset(&g->ctx);
  arena_freeze(&g->ctx.act);
  return 0;
}

void engine_free(engine *g) {
  if (!g->m) return;
  free(g->h[0]), free(g->h[1]), free(g->mask);
  free(g->row), free(g->len), free(g->state), free(g->scaled);
  ctx_free(&g->ctx);
  memset(g, 0, sizeof *g);
}

/* The caller's mask into the engine's buffer (compacted in place later); per row its length. */
static void load_batch(engine *g, const model_batch *b) {
  int n = b->B, T = b->T;
  EPEE_CHECK(n >= 0 && n <= g->max_batch && (n == 0 || (T >= 1 && T <= g->max_len)),
             "engine: batch or length above the engine_init sizes");
  size_t nt = (size_t)n * T;
  memcpy(g->mask, b->mask, sizeof(float) * nt);
  for (int r = 0; r < n; r++) {
    int len = 0;
    for (int t = 0; t < T; t++)
      if (b->mask[(size_t)r * T + t] != 0.0f) len = t + 1;
    EPEE_CHECK(len >= 1, "engine: every row needs at least one real token (mask 1)");
    g->row[r] = r;
    g->len[r] = len;
    epee_exit_state_init(&g->state[r]);
  }
}

/* Active row r moves to slot k <= r (so ascending r never overwrites a row still to be read). */
static void move_row(engine *g, const float *h_out, float *h_next, int r, int k, int T, int D) {
  memcpy(h_next + (size_t)k * T * D, h_out + (size_t)r * T * D, sizeof(float) * (size_t)T * D);
  if (k == r) return;
  memmove(g->mask + (size_t)k * T, g->mask + (size_t)r * T, sizeof(float) * (size_t)T);
  g->row[k] = g->row[r];
  g->len[k] = g->len[r];
  g->state[k] = g->state[r];
}

/* n rows re-strided from T to newT < T columns, dropping trailing padding (row 0 stays put, row k moves
 * left, so ascending k is safe). */
static void trim_rows(engine *g, float *h, int n, int T, int newT, int D) {
  for (int k = 1; k < n; k++) {
    memmove(h + (size_t)k * newT * D, h + (size_t)k * T * D, sizeof(float) * (size_t)newT * D);
    memmove(g->mask + (size_t)k * newT, g->mask + (size_t)k * T, sizeof(float) * (size_t)newT);
  }
}

/* One pass layer by layer. all_logits != NULL: full depth, every exit recorded, no compaction.
 * Otherwise early exit under p, writing label/layers/probs of each row as it leaves. */
static void run(engine *g, const model_batch *b, const epee_policy *p, int *label, int *layers, float *probs,
                float *ms, float *all_logits) {
  double t0 = now_seconds();
  model *m = g->m;
  load_batch(g, b);
  int n = b->B, T = b->T, D = m->hidden, L = m->n_layers, C = m->n_labels, cur = 0;
  if (n == 0) return;
  ctx_reset(&g->ctx);
  arena_mark start = arena_get_mark(&g->ctx.act);
  model_batch mb = {.B = n, .T = T, .ids = b->ids, .type_ids = b->type_ids, .mask = g->mask, .pixels = b->pixels};
  tensor *h = m->embed(&g->ctx, m, &mb);
  memcpy(g->h[cur], h->data, sizeof(float) * (size_t)n * T * D);
  arena_release(&g->ctx.act, start);
  for (int l = 0; l < L && n > 0; l++) {
    mb = (model_batch){.B = n, .T = T, .mask = g->mask}; /* layers and exits read only the mask */
    h = tensor_wrap(&g->ctx, g->h[cur], 3, (int[]){n, T, D});
    tensor *out = m->layer(&g->ctx, m, l, h, &mb);
    float *next = g->h[cur ^ 1];
    /* policy none answers at the last exit only: the others are not even computed */
    int decide = !all_logits && (p->kind != EPEE_POLICY_NONE || l == L - 1);
    tensor *z = all_logits || decide ? m->exit(&g->ctx, m, l, out, &mb) : NULL;
    if (!decide) {
      for (int r = 0; all_logits && r < n; r++)
        memcpy(all_logits + ((size_t)r * L + l) * C, z->data + (size_t)r * C, sizeof(float) * (size_t)C);
      memcpy(next, out->data, sizeof(float) * (size_t)n * T * D);
    } else {
      int keep = 0, newT = 0;
      for (int r = 0; r < n; r++) {
        const float *zr = z->data + (size_t)r * C;
        if (m->temperature) { /* the calibrated temperature: before the policy sees the entropy */
          epee_scale_logits(zr, C, m->temperature[l], g->scaled);
          zr = g->scaled;
        }
        int y;
        if (epee_policy_step(p, &g->state[r], zr, C, l, L, NULL, &y)) {
          int o = g->row[r];
          label[o] = y;
          layers[o] = l + 1;
          if (probs) epee_softmax(zr, C, probs + (size_t)o * C);
          if (ms) ms[o] = (float)(1e3 * (now_seconds() - t0));
        } else {
          if (g->len[r] > newT) newT = g->len[r];
          move_row(g, out->data, next, r, keep++, T, D);
        }
      }
      if (keep > 0 && newT < T) {
        trim_rows(g, next, keep, T, newT, D);
        T = newT;
      }
      n = keep;
    }
    arena_release(&g->ctx.act, start);
    cur ^= 1;
  }
}

void engine_classify(engine *g, const model_batch *b, const epee_policy *p, int *label, int *layers, float *probs,
                     float *ms) {
  EPEE_CHECK(p != NULL, "engine_classify needs a policy");
  run(g, b, p, label, layers, probs, ms, NULL);
}

void engine_all_exits(engine *g, const model_batch *b, float *logits) {
  run(g, b, NULL, NULL, NULL, NULL, NULL, logits);
}

void engine_run_dataset(engine *g, const ds_encoded *d, int batch, int sweeps, engine_pass *pass, int n_pass) {
  EPEE_CHECK(batch >= 1 && batch <= g->max_batch && d->max_len <= g->max_len && n_pass >= 1 && sweeps >= 1,
             "engine: dataset shapes above the engine_init sizes, no pass or no sweep");
  int C = g->m->n_labels;
  ds_plan plan;
  ds_plan_make(d, batch, 0, 0, 0, &plan);
  int nb = plan.n_batches;
  batch_buf bb;
  batch_buf_init(&bb, d, batch);
  float *pr = epee_malloc(sizeof(float) * (size_t)batch * C);
  float *rms = epee_malloc(sizeof(float) * (size_t)batch);
  int *lab = epee_malloc(sizeof(int) * (size_t)batch), *lay = epee_malloc(sizeof(int) * (size_t)batch);
  double *best = epee_malloc(sizeof(double) * (size_t)n_pass * (nb > 0 ? nb : 1)); /* [pass, batch] */
  progress bar;
  if (g->progress) progress_start_quiet(&bar, g->progress, "timed runs", (int64_t)sweeps * nb, "batch");
  for (int s = 0; s < sweeps; s++)
    for (int i = 0; i < nb; i++) {
      const ds_batch *b_i = &plan.batches[i];
      model_batch mb = batch_buf_fill(&bb, d, b_i, NULL, 0, 0);
      for (int j = 0; j < n_pass; j++) {
        int k = (i + s + j) % n_pass; /* rotated: no pass always runs first (cold) or last */
        engine_pass *ps = &pass[k];
        double t0 = now_seconds();
        engine_classify(g, &mb, &ps->policy, lab, lay, ps->probs ? pr : NULL, ps->ms ? rms : NULL);
        double dt = now_seconds() - t0, *b = &best[(size_t)k * nb + i];
        if (s > 0 && dt >= *b) continue; /* the answers are the same every sweep; keep the fastest's times */
        *b = dt;
        for (int r = 0; r < b_i->n; r++) {
          int o = b_i->idx[r];
          if (ps->label) ps->label[o] = lab[r];
          if (ps->layers) ps->layers[o] = lay[r];
          if (ps->probs) memcpy(ps->probs + (size_t)o * C, pr + (size_t)r * C, sizeof(float) * (size_t)C);
          if (ps->ms) ps->ms[o] = rms[r];
        }
      }
      if (g->progress) progress_update(&bar, 1, NULL);
    }
  if (g->progress) progress_finish(&bar, NULL);
  for (int k = 0; k < n_pass; k++) {
    pass[k].seconds = 0.0;
    for (int i = 0; i < nb; i++) {
      pass[k].seconds += best[(size_t)k * nb + i];
      if (pass[k].call_seconds) pass[k].call_seconds[i] = best[(size_t)k * nb + i];
    }
  }
  ds_plan_free(&plan);
  batch_buf_free(&bb);
  free(pr), free(rms), free(lab), free(lay), free(best);
}

double engine_classify_dataset(engine *g, const ds_encoded *d, int batch, const epee_policy *p, int *label, int *layers,
                               float *probs, float *ms) {
  engine_pass ps = {.policy = *p, .label = label, .layers = layers, .probs = probs, .ms = ms};
  engine_run_dataset(g, d, batch, 1, &ps, 1);
  return ps.seconds;
}
