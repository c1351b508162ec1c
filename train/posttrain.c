#include "train/posttrain.h"

#include <stdio.h>
#include <string.h>

#include "infer/metrics.h"
#include "infer/model_file.h"
#include "train/calibrate.h"
#include "train/evaluate.h"

typedef struct {
  double acc, f1, mean_layers, speedup, seconds, wall_speedup;
  int agree; /* rows whose engine exit layer and label equal the policy simulated on the all-exit logits */
} test_row;

static FILE *open_tmp(const char *path, char *tmp, size_t n, epee_err *e) {
  snprintf(tmp, n, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) epee_errf(e, "%s: cannot write", tmp);
  return f;
}

static int close_rename(FILE *f, const char *tmp, const char *path, epee_err *e) {
  if (fclose(f) != 0 || rename(tmp, path) != 0) {
    remove(tmp);
    return epee_errf(e, "%s: cannot write", path);
  }
  return 0;
}

static void json_array(FILE *f, const double *x, int n) {
  fputc('[', f);
  for (int i = 0; i < n; i++) fprintf(f, "%s%.6f", i ? "," : "", x[i]);
  fputc(']', f);
}

/* Batch-1 timing uses the first BATCH1_MAX test examples: per-row results do not depend on the batch
 * (tests/test_engine.c checks that a batch of N equals N single calls), only the time does. */
#define BATCH1_MAX 1000

/* Runs the engine over the test split (or its first BATCH1_MAX rows at batch 1) under every policy with
 * have[k], interleaved batch by batch (engine_run_dataset), so their times compare like for like:
 * rows[k] gets policy k's metrics and seconds, wall_speedup against policy none when it is there, and how
 * many rows agree with the simulation on the test split's all-exit logits[N, L, C] (the calibration path). */
static void run_tests(engine *g, const job *j, const float *logits, const epee_policy *pol, const int *have, int B,
                      test_row *rows) {
  ds_encoded sub = j->enc[SPLIT_TEST];
  if (B == 1 && sub.n > BATCH1_MAX) sub.n = BATCH1_MAX;
  int L = j->m.n_layers, C = j->m.n_labels, n = 0, N = sub.n;
  engine_pass pass[5];
  int which[5];
  for (int k = 0; k < 5; k++)
    if (have[k]) {
      which[n] = k;
      pass[n++] = (engine_pass){.policy = pol[k], .label = epee_malloc(sizeof(int) * (size_t)N),
                                .layers = epee_malloc(sizeof(int) * (size_t)N)};
    }
  engine_run_dataset(g, &sub, B, ENGINE_TIMING_SWEEPS, pass, n);
  double base = have[EPEE_POLICY_NONE] ? pass[0].seconds : 0; /* none is kind 0: the first pass */
  for (int i = 0; i < n; i++) {
    test_row *r = &rows[which[i]];
    double s = 0;
    for (int x = 0; x < N; x++) s += pass[i].layers[x];
    r->acc = metric_accuracy(sub.labels, pass[i].label, N);
    r->f1 = metric_macro_f1(sub.labels, pass[i].label, N, C);
    r->mean_layers = s / N;
    r->speedup = L / r->mean_layers;
    r->seconds = pass[i].seconds;
    r->wall_speedup = base > 0 && r->seconds > 0 ? base / r->seconds : 0;
    r->agree = 0;
    for (int x = 0; x < N; x++) {
      int y, l = epee_policy_run(&pol[which[i]], logits + (size_t)x * L * C, L, C, &y);
      r->agree += y == pass[i].label[x] && l + 1 == pass[i].layers[x];
    }
    free(pass[i].label), free(pass[i].layers);
  }
}

int posttrain_run(job *j, engine *g, epee_err *e) {
  const epee_config *cfg = j->cfg;
  int L = j->m.n_layers, C = j->m.n_labels;
  int Nd = j->enc[SPLIT_DEV].n, Nt = j->enc[SPLIT_TEST].n;
  char path[4096], tmp[4200];
  int rc = -1;
  float *dev = epee_malloc(sizeof(float) * (size_t)Nd * L * C);
  float *test = epee_malloc(sizeof(float) * (size_t)Nt * L * C);
  double *acc[2], *f1[2];
  for (int s = 0; s < 2; s++) {
    acc[s] = epee_malloc(sizeof(double) * (size_t)L);
    f1[s] = epee_malloc(sizeof(double) * (size_t)L);
  }
  calib_result cr;
  memset(&cr, 0, sizeof cr);
  char *metrics_json = NULL;
  size_t metrics_len = 0;

  /* 1. every exit on dev and test */
  eval_logits(g, &j->enc[SPLIT_DEV], cfg->calibrate.batch, dev);
  eval_logits(g, &j->enc[SPLIT_TEST], cfg->calibrate.batch, test);
  eval_per_exit(dev, j->enc[SPLIT_DEV].labels, Nd, L, C, acc[0], f1[0]);
  eval_per_exit(test, j->enc[SPLIT_TEST].labels, Nt, L, C, acc[1], f1[1]);
  printf("\n exit | dev acc | dev F1 | test acc | test F1\n------+---------+--------+----------+--------\n");
  for (int l = 0; l < L; l++)
    printf(" %4d | %7.4f | %6.4f | %8.4f | %7.4f\n", l + 1, acc[0][l], f1[0][l], acc[1][l], f1[1][l]);
  snprintf(path, sizeof path, "%s/summary.json", cfg->run.dir);
  FILE *f = open_tmp(path, tmp, sizeof tmp, e);
  if (!f) goto out;
  fprintf(f, "{\n  \"arch\": \"%s\",\n  \"tokenizer\": \"%s\",\n  \"layers\": %d,\n  \"labels\": [", j->m.arch->name,
          j->tok ? j->tok->kind->name : "", L);
  for (int i = 0; i < C; i++) fprintf(f, "%s\"%s\"", i ? ", " : "", j->labels[i]);
  fprintf(f, "],\n  \"dev\": {\"n\": %d, \"accuracy\": ", Nd);
  json_array(f, acc[0], L);
  fprintf(f, ", \"macro_f1\": ");
  json_array(f, f1[0], L);
  fprintf(f, "},\n  \"test\": {\"n\": %d, \"accuracy\": ", Nt);
  json_array(f, acc[1], L);
  fprintf(f, ", \"macro_f1\": ");
  json_array(f, f1[1], L);
  fprintf(f, "}\n}\n");
  if (close_rename(f, tmp, path, e)) goto out;

  /* 2. calibration on dev by simulation */
  const cfg_calibrate *cc = &cfg->calibrate;
  epee_policy_kind kinds[8];
  int nk = 0;
  for (int i = 0; i < cc->policies.n && nk < 8; i++)
    if (epee_policy_parse(cc->policies.v[i], &kinds[nk]) == 0) nk++;
  float *taus = epee_malloc(sizeof(float) * (size_t)(cc->tau.n + 1));
  for (int i = 0; i < cc->tau.n; i++) taus[i] = (float)cc->tau.v[i];
  calib_grid grid = {.kinds = kinds, .n_kinds = nk, .taus = taus, .n_taus = cc->tau.n, .pats = cc->patience.v,
                     .n_pats = cc->patience.n, .rule = (int)cc->rule, .within = cc->within,
                     .layer_budget = cc->layer_budget};
  int crc = calib_run(dev, j->enc[SPLIT_DEV].labels, Nd, L, C, &grid, &cr, e);
  free(taus);
  if (crc) goto out;
  snprintf(path, sizeof path, "%s/calibration.csv", cfg->run.dir);
  if (calib_write_csv(&cr, path, e)) goto out;
  snprintf(path, sizeof path, "%s/calibration.svg", cfg->run.dir);
  char title[256];
  snprintf(title, sizeof title, "Dev accuracy vs layer speed-up (%s, %d layers)", j->m.arch->name, L);
  if (calib_write_svg(&cr, L, title, path, e)) goto out;

  /* 3. test: each policy at its own dev-chosen setting, through the engine, batch 1 and batched */
  int Bs[2] = {1, cc->batch};
  test_row rows[2][5];
  int have[5] = {0};
  epee_policy chosen[5];
  for (int k = 0; k < 5; k++)
    if (cr.chosen[k] >= 0) {
      have[k] = 1;
      chosen[k] = cr.points[cr.chosen[k]].pol;
    }
  for (int b = 0; b < 2; b++) run_tests(g, j, test, chosen, have, Bs[b], rows[b]);
  snprintf(path, sizeof path, "%s/results.md", cfg->run.dir);
  f = open_tmp(path, tmp, sizeof tmp, e);
  if (!f) goto out;
  fprintf(f, "# Test results (%d examples; settings chosen on dev, %d examples, rule %s)\n\n", Nt, Nd,
          cfg_rule_names[cc->rule]);
  fprintf(f, "| policy | tau | patience | dev acc | test acc | test macro-F1 | mean exit layer | layer speed-up | "
             "wall speed-up (batch 1) | wall speed-up (batch %d) |\n|---|---|---|---|---|---|---|---|---|---|\n",
          cc->batch);
  printf("\n policy   |   tau  | p  | dev acc | test acc | test F1 | mean layer | layer x | wall x (b=1) | wall x (b=%d)\n",
         cc->batch);
  for (int k = 0; k < 5; k++) {
    if (!have[k]) continue;
    const calib_point *cp = &cr.points[cr.chosen[k]];
    const test_row *r = &rows[1][k];
    fprintf(f, "| %s | %g | %d | %.4f | %.4f | %.4f | %.2f | %.2f | %.2f | %.2f |\n", epee_policy_name(cp->pol.kind),
            cp->pol.tau, cp->pol.patience, cp->acc, r->acc, r->f1, r->mean_layers, r->speedup,
            rows[0][k].wall_speedup, rows[1][k].wall_speedup);
    printf(" %-8s | %6.3f | %2d | %7.4f | %8.4f | %7.4f | %10.2f | %7.2f | %12.2f | %.2f\n",
           epee_policy_name(cp->pol.kind), cp->pol.tau, cp->pol.patience, cp->acc, r->acc, r->f1, r->mean_layers,
           r->speedup, rows[0][k].wall_speedup, rows[1][k].wall_speedup);
  }
  fprintf(f, "\nEngine = simulation (exit layer and label of each row, batched run vs the policy simulated on the "
             "all-exit logits, as calibration does):");
  printf("\nengine = simulation on test (exit layer and label per row):");
  for (int k = 0; k < 5; k++)
    if (have[k]) {
      fprintf(f, " %s %d/%d;", epee_policy_name((epee_policy_kind)k), rows[1][k].agree, Nt);
      printf(" %s %d/%d;", epee_policy_name((epee_policy_kind)k), rows[1][k].agree, Nt);
    }
  printf("\n");
  fprintf(f, " (a row can differ only by a last-bit float difference at a threshold: the engine's GEMMs see "
             "other row counts).\n");
  fprintf(f, "\nAccuracy, F1 and layers: the whole test split, batched. Wall-clock speed-up = engine time of policy "
             "none (the last exit only) / engine time of the policy on the same inputs in the same run, every batch "
             "run under each policy in turn (rotating order) so that machine drift falls on all alike, three "
             "times, each batch counting its fastest time per policy; at batch 1 "
             "over the first %d test examples (per-example results do not depend on the batch size).\n", BATCH1_MAX);
  if (close_rename(f, tmp, path, e)) goto out;

  /* results.json (also embedded in the model file as its metrics) */
  FILE *mj = open_memstream(&metrics_json, &metrics_len);
  fprintf(mj, "{\"rule\":\"%s\",\"dev_n\":%d,\"test_n\":%d,\"policies\":{", cfg_rule_names[cc->rule], Nd, Nt);
  int first = 1;
  for (int k = 0; k < 5; k++) {
    if (!have[k]) continue;
    const calib_point *cp = &cr.points[cr.chosen[k]];
    fprintf(mj, "%s\"%s\":{\"tau\":%g,\"patience\":%d,\"dev\":{\"accuracy\":%.6f,\"macro_f1\":%.6f,"
                "\"mean_exit_layer\":%.4f,\"layer_speedup\":%.4f},\"test\":{\"accuracy\":%.6f,\"macro_f1\":%.6f,"
                "\"mean_exit_layer\":%.4f,\"layer_speedup\":%.4f,\"wall_speedup_batch1\":%.4f,"
                "\"wall_speedup_batch%d\":%.4f,\"seconds_batch1\":%.4f,\"seconds_batch%d\":%.4f,"
                "\"engine_equals_simulation\":%d}}",
            first ? "" : ",", epee_policy_name(cp->pol.kind), cp->pol.tau, cp->pol.patience, cp->acc, cp->f1,
            cp->mean_layers, cp->speedup, rows[1][k].acc, rows[1][k].f1, rows[1][k].mean_layers, rows[1][k].speedup,
            rows[0][k].wall_speedup, cc->batch, rows[1][k].wall_speedup, rows[0][k].seconds, cc->batch,
            rows[1][k].seconds, rows[1][k].agree);
    first = 0;
  }
  fprintf(mj, "}}");
  fclose(mj);
  snprintf(path, sizeof path, "%s/results.json", cfg->run.dir);
  f = open_tmp(path, tmp, sizeof tmp, e);
  if (!f) goto out;
  fprintf(f, "%s\n", metrics_json);
  if (close_rename(f, tmp, path, e)) goto out;

  /* 4. export: the model with EPEE's calibrated policy (or the first calibrated one) */
  if (cfg->export.enabled) {
    int k = have[EPEE_POLICY_EPEE] ? EPEE_POLICY_EPEE : -1;
    for (int i = 0; k < 0 && i < 5; i++)
      if (have[i]) k = i;
    model_meta meta = {0};
    meta.labels = j->labels;
    meta.n_labels = j->n_labels;
    meta.tok = j->tok;
    meta.max_length = cfg->tokenizer.max_length;
    meta.norm = j->enc[SPLIT_TRAIN].norm;
    meta.resize = cfg->image.resize == CFG_RESIZE_BILINEAR;
    meta.policy = k >= 0 ? chosen[k] : (epee_policy){EPEE_POLICY_NONE, 0, 0};
    meta.metrics_json = metrics_json;
    meta.train_config_json = cfg_to_json(cfg);
    if (cfg->export.path[0] == '/')
      snprintf(path, sizeof path, "%s", cfg->export.path);
    else
      snprintf(path, sizeof path, "%s/%s", cfg->run.dir, cfg->export.path);
    int wrc = model_file_write(path, &j->m, &meta, e);
    free(meta.train_config_json);
    if (wrc) goto out;
    printf("\nexported %s (policy %s, tau %g, patience %d)\n", path, epee_policy_name(meta.policy.kind),
           meta.policy.tau, meta.policy.patience);
  }
  printf("run folder: %s (summary.json, calibration.csv/.svg, results.md/.json, metrics.jsonl)\n", cfg->run.dir);
  rc = 0;
out:
  calib_result_free(&cr);
  free(metrics_json);
  free(dev), free(test);
  for (int s = 0; s < 2; s++) free(acc[s]), free(f1[s]);
  return rc;
}
