#include "train/posttrain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/h5io.h"
#include "core/json.h"
#include "infer/metrics.h"
#include "infer/model_file.h"
#include "train/evaluate.h"
#include "train/hf_init.h"

typedef struct {
  double acc, f1, mean_layers, speedup, seconds, wall_speedup;
  int agree; /* rows whose engine exit layer and label equal the policy simulated on the all-exit logits */
} test_row;

/* ---- JSON (core/json.h): figures rounded to 6 decimals, so files stay readable ---------------------------- */

static void jnum(json_t *o, const char *key, double v) { json_object_set_new(o, key, json_num(v, 6)); }


/* ---- the grid of the config ------------------------------------------------------------------------------ */

int posttrain_grid(const cfg_calibrate *cc, calib_grid *g, epee_policy_kind *kinds, float **taus) {
  int nk = 0;
  for (int i = 0; i < cc->policies.n && nk < EPEE_POLICY_KINDS; i++)
    if (epee_policy_parse(cc->policies.v[i], &kinds[nk]) == 0) nk++;
  const cfg_flist *r = &cc->tau_range;
  int nt = r->n == 3 ? (int)r->v[2] : cc->tau.n;
  *taus = epee_malloc(sizeof(float) * (size_t)(nt + 1));
  if (r->n == 3)
    calib_log_range(r->v[0], r->v[1], nt, *taus);
  else
    for (int i = 0; i < nt; i++) (*taus)[i] = (float)cc->tau.v[i];
  *g = (calib_grid){.kinds = kinds, .n_kinds = nk, .taus = *taus, .n_taus = nt, .pats = cc->patience.v,
                    .n_pats = cc->patience.n, .rule = (calib_rule)cc->rule, .within = cc->within,
                    .layer_budget = cc->layer_budget, .metric = (calib_metric)cc->metric,
                    .max_recall_drop = cc->max_recall_drop, .risk = (calib_risk)cc->risk, .epsilon = cc->epsilon,
                    .delta = cc->delta};
  return nk;
}

/* Batch-1 timing uses the first BATCH1_MAX test examples: per-row results do not depend on the batch
 * (tests/test_engine.c checks that a batch of N equals N single calls), only the time does. */
#define BATCH1_MAX 1000

/* Runs the engine over the test split (or its first BATCH1_MAX rows at batch 1) under every policy with
 * have[k], interleaved batch by batch (engine_run_dataset), so their times compare like for like:
 * rows[k] gets policy k's metrics and seconds, wall_speedup against policy none when it is there, and how
 * many rows agree with the simulation on the test split's all-exit logits[N, L, C] (the calibration path,
 * temperature-scaled as the engine's are). */
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
  /* the timing baseline is the pass whose policy is none (the risk rule's fallback can be none too) */
  double base = 0;
  for (int i = 0; i < n; i++)
    if (pass[i].policy.kind == EPEE_POLICY_NONE && base == 0) base = pass[i].seconds;
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

/* Reliability of the answers of `pol` on logits [N, L, C] (already temperature-scaled): the confidence of each
 * answer is the softmax maximum of its exit. */
static void reliability(const float *logits, const int *gold, int N, int L, int C, const epee_policy *pol,
                        metric_reliability *rel) {
  float *conf = epee_malloc(sizeof(float) * (size_t)N), *p = epee_malloc(sizeof(float) * (size_t)C);
  int *ok = epee_malloc(sizeof(int) * (size_t)N);
  for (int n = 0; n < N; n++) {
    int y, l = epee_policy_run(pol, logits + (size_t)n * L * C, L, C, &y);
    epee_softmax(logits + ((size_t)n * L + l) * C, C, p);
    conf[n] = p[y] > 1 ? 1 : p[y];
    ok[n] = y == gold[n];
  }
  metric_reliability_of(conf, ok, N, rel);
  free(conf), free(p), free(ok);
}

/* ECE of every exit: each answering every sample with its own argmax. */
static void ece_per_exit(const float *logits, const int *gold, int N, int L, int C, double *ece) {
  float *conf = epee_malloc(sizeof(float) * (size_t)N), *p = epee_malloc(sizeof(float) * (size_t)C);
  int *ok = epee_malloc(sizeof(int) * (size_t)N);
  for (int l = 0; l < L; l++) {
    for (int n = 0; n < N; n++) {
      const float *z = logits + ((size_t)n * L + l) * C;
      int y = epee_argmax(z, C);
      epee_softmax(z, C, p);
      conf[n] = p[y] > 1 ? 1 : p[y];
      ok[n] = y == gold[n];
    }
    metric_reliability rel;
    metric_reliability_of(conf, ok, N, &rel);
    ece[l] = rel.ece;
  }
  free(conf), free(p), free(ok);
}

/* One split's per-exit figures for summary.json; ece_t only with temperatures. */
static json_t *split_json(int n, const double *acc, const double *f1, const double *ece, const double *ece_t, int L) {
  json_t *o = json_object();
  json_object_set_new(o, "n", json_integer(n));
  json_object_set_new(o, "accuracy", json_nums(acc, L, 6));
  json_object_set_new(o, "macro_f1", json_nums(f1, L, 6));
  json_object_set_new(o, "ece", json_nums(ece, L, 6));
  if (ece_t) json_object_set_new(o, "ece_temperature", json_nums(ece_t, L, 6));
  return o;
}

static json_t *point_json(const calib_point *p) {
  json_t *o = json_object();
  jnum(o, "accuracy", p->acc);
  jnum(o, "macro_f1", p->f1);
  jnum(o, "mean_exit_layer", p->mean_layers);
  jnum(o, "layer_speedup", p->speedup);
  jnum(o, "disagreement", p->disagree);
  jnum(o, "accuracy_drop_risk", p->harm);
  jnum(o, "max_recall_drop", p->recall_drop);
  return o;
}

/* The settings two rules choose, each judged on test by simulation on the test logits (= the engine, which the
 * main table checks row by row). */
typedef struct {
  const char *rule;
  int chosen[EPEE_POLICY_KINDS], fallback[EPEE_POLICY_KINDS];
  calib_point test[EPEE_POLICY_KINDS];
} rule_result;

int posttrain_run(job *j, engine *g, epee_err *e) {
  const epee_config *cfg = j->cfg;
  const cfg_calibrate *cc = &cfg->calibrate;
  int L = j->m.n_layers, C = j->m.n_labels;
  int Nd = j->enc[SPLIT_DEV].n, Nt = j->enc[SPLIT_TEST].n;
  const int *gd = j->enc[SPLIT_DEV].labels, *gt = j->enc[SPLIT_TEST].labels;
  char path[4096], title[256];
  int rc = -1;
  float *dev = epee_malloc(sizeof(float) * (size_t)Nd * L * C);
  float *test = epee_malloc(sizeof(float) * (size_t)Nt * L * C);
  float *dev_s = dev, *test_s = test, *T = NULL; /* the temperature-scaled logits (the raw ones without) */
  double *stat = epee_malloc(sizeof(double) * (size_t)L * 8); /* per exit, [split]: dev 0, test 1 */
  double *acc[2] = {stat, stat + L}, *f1[2] = {stat + 2 * L, stat + 3 * L}, *ece[2] = {stat + 4 * L, stat + 5 * L},
         *ece_t[2] = {stat + 6 * L, stat + 7 * L};
  calib_result cr;
  memset(&cr, 0, sizeof cr);
  char *metrics_json = NULL;
  float *taus = NULL;
  rule_result rules[2];
  int n_rules = 0;

  /* 1. every exit on dev and test; temperatures fitted on dev */
  eval_logits(g, &j->enc[SPLIT_DEV], cc->batch, dev);
  eval_logits(g, &j->enc[SPLIT_TEST], cc->batch, test);
  if (cc->temperature) {
    T = epee_malloc(sizeof(float) * (size_t)L);
    calib_fit_temperature(dev, gd, Nd, L, C, T);
    dev_s = epee_malloc(sizeof(float) * (size_t)Nd * L * C);
    test_s = epee_malloc(sizeof(float) * (size_t)Nt * L * C);
    calib_apply_temperature(dev, Nd, L, C, T, dev_s);
    calib_apply_temperature(test, Nt, L, C, T, test_s);
  }
  const float *raw[2] = {dev, test}, *scaled[2] = {dev_s, test_s};
  const int *gold[2] = {gd, gt}, Ns[2] = {Nd, Nt};
  for (int s = 0; s < 2; s++) {
    eval_per_exit(raw[s], gold[s], Ns[s], L, C, acc[s], f1[s]);
    ece_per_exit(raw[s], gold[s], Ns[s], L, C, ece[s]);
    if (T) ece_per_exit(scaled[s], gold[s], Ns[s], L, C, ece_t[s]);
  }
  printf("\n exit | dev acc | dev F1 | test acc | test F1 | dev ECE | test ECE%s\n------+---------+--------+----------+"
         "---------+---------+---------\n", T ? " | T    | test ECE (T)" : "");
  for (int l = 0; l < L; l++) {
    printf(" %4d | %7.4f | %6.4f | %8.4f | %7.4f | %7.4f | %8.4f", l + 1, acc[0][l], f1[0][l], acc[1][l], f1[1][l],
           ece[0][l], ece[1][l]);
    if (T) printf(" | %.3f | %.4f", T[l], ece_t[1][l]);
    printf("\n");
  }
  json_t *sum = json_object(), *labels = json_array();
  json_object_set_new(sum, "arch", json_string(j->m.arch->name));
  json_object_set_new(sum, "tokenizer", json_string(j->tok ? j->tok->kind->name : ""));
  json_object_set_new(sum, "layers", json_integer(L));
  for (int k = 0; k < C; k++) json_array_append_new(labels, json_string(j->labels[k]));
  json_object_set_new(sum, "labels", labels);
  json_object_set_new(sum, "ece_bins", json_integer(METRIC_ECE_BINS));
  json_t *temps = T ? json_array() : json_null();
  for (int l = 0; T && l < L; l++) json_array_append_new(temps, json_num(T[l], 6));
  json_object_set_new(sum, "temperature", temps);
  json_object_set_new(sum, "dev", split_json(Nd, acc[0], f1[0], ece[0], T ? ece_t[0] : NULL, L));
  json_object_set_new(sum, "test", split_json(Nt, acc[1], f1[1], ece[1], T ? ece_t[1] : NULL, L));
  char *text = json_text(sum, 2);
  snprintf(path, sizeof path, "%s/summary.json", cfg->run.dir);
  int wrc = atomic_write_text(path, text, e);
  free(text);
  if (wrc) goto out;

  /* the raw all-exit logits of both splits, for re-analysis without the model (experiments/risk_resplit) */
  char tmp[4200];
  snprintf(path, sizeof path, "%s/logits.h5", cfg->run.dir);
  hid_t lf = h5_create_tmp(path, tmp, sizeof tmp, e);
  if (lf < 0) goto out;
  int ok = !h5_write_floats(lf, "dev_logits", dev, 3, (int[]){Nd, L, C}, e) &&
           !h5_write_ints(lf, "dev_labels", gd, 1, (int[]){Nd}, e) &&
           !h5_write_floats(lf, "test_logits", test, 3, (int[]){Nt, L, C}, e) &&
           !h5_write_ints(lf, "test_labels", gt, 1, (int[]){Nt}, e);
  if (h5_commit(lf, tmp, path, ok, e)) goto out;

  /* 2. calibration on dev by simulation (on the scaled logits when temperatures are on) */
  epee_policy_kind kinds[EPEE_POLICY_KINDS];
  calib_grid grid;
  posttrain_grid(cc, &grid, kinds, &taus);
  if (calib_run(dev_s, gd, Nd, L, C, &grid, &cr, e)) goto out;
  /* the heuristic rule and the risk rule side by side (the risk rule needs none, its fallback), then the
   * configured rule again, whose choice the rest reports */
  calib_rule compared[2] = {CALIB_RULE_FASTEST_WITHIN, CALIB_RULE_RISK};
  for (int i = 0; i < 2; i++) {
    calib_grid gr = grid;
    gr.rule = compared[i];
    if (compared[i] == CALIB_RULE_RISK && cr.chosen[EPEE_POLICY_NONE] < 0) continue;
    if (calib_choose(&cr, &gr, e)) goto out;
    rule_result *rr = &rules[n_rules++];
    rr->rule = cfg_rule_names[compared[i]];
    for (int k = 0; k < EPEE_POLICY_KINDS; k++) {
      rr->chosen[k] = cr.chosen[k], rr->fallback[k] = cr.risk_fallback[k];
      if (cr.chosen[k] >= 0) rr->test[k] = calib_eval(test_s, gt, Nt, L, C, &cr.points[cr.chosen[k]].pol);
      if (cr.risk_fallback[k])
        printf("risk rule: no %s setting is certified at epsilon %g, delta %g (%g per chain) with %d dev examples "
               "(a setting without any loss needs %d): full depth\n",
               epee_policy_name((epee_policy_kind)k), cc->epsilon, cc->delta, cc->delta / cr.risk_chains[k], Nd,
               calib_risk_min_n(cc->epsilon, cc->delta / cr.risk_chains[k]));
    }
  }
  if (calib_choose(&cr, &grid, e)) goto out;
  snprintf(path, sizeof path, "%s/calibration.csv", cfg->run.dir);
  if (calib_write_csv(&cr, path, e)) goto out;
  snprintf(path, sizeof path, "%s/calibration.svg", cfg->run.dir);
  snprintf(title, sizeof title, "Dev accuracy vs layer speed-up (%s, %d layers)", j->m.arch->name, L);
  if (calib_write_svg(&cr, L, title, path, e)) goto out;

  /* 3. test: each policy at its own dev-chosen setting, through the engine (which applies the temperatures),
   * batch 1 and batched */
  if (T) {
    j->m.temperature = epee_malloc(sizeof(float) * (size_t)L);
    memcpy(j->m.temperature, T, sizeof(float) * (size_t)L);
  }
  int Bs[2] = {1, cc->batch};
  test_row rows[2][5];
  int have[5] = {0};
  epee_policy chosen[5];
  for (int k = 0; k < 5; k++)
    if (cr.chosen[k] >= 0) {
      have[k] = 1;
      chosen[k] = cr.points[cr.chosen[k]].pol;
    }
  for (int b = 0; b < 2; b++) run_tests(g, j, test_s, chosen, have, Bs[b], rows[b]);

  /* reliability of the last exit and of the EPEE answers on test */
  metric_reliability rel[2];
  const char *rel_names[2] = {"last exit", "EPEE answers"};
  epee_policy last = {EPEE_POLICY_NONE, 0, 0};
  reliability(test_s, gt, Nt, L, C, &last, &rel[0]);
  int n_rel = 1;
  if (have[EPEE_POLICY_EPEE]) reliability(test_s, gt, Nt, L, C, &chosen[EPEE_POLICY_EPEE], &rel[n_rel++]);
  snprintf(path, sizeof path, "%s/reliability.svg", cfg->run.dir);
  snprintf(title, sizeof title, "Test reliability (%s, %d bins%s)", j->m.arch->name, METRIC_ECE_BINS,
           T ? ", temperature-scaled" : "");
  if (calib_write_reliability_svg(rel, rel_names, n_rel, title, path, e)) goto out;

  snprintf(path, sizeof path, "%s/results.md", cfg->run.dir);
  atomic_file af;
  FILE *f = atomic_open(&af, path, e);
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
    /* a risk-rule fallback shows as "epee -> none" */
    char name[32];
    snprintf(name, sizeof name, "%s%s%s", epee_policy_name((epee_policy_kind)k), (int)cp->pol.kind == k ? "" : " -> ",
             (int)cp->pol.kind == k ? "" : epee_policy_name(cp->pol.kind));
    fprintf(f, "| %s | %g | %d | %.4f | %.4f | %.4f | %.2f | %.2f | %.2f | %.2f |\n", name, cp->pol.tau,
            cp->pol.patience, cp->acc, r->acc, r->f1, r->mean_layers, r->speedup, rows[0][k].wall_speedup,
            rows[1][k].wall_speedup);
    printf(" %-8s | %6.3f | %2d | %7.4f | %8.4f | %7.4f | %10.2f | %7.2f | %12.2f | %.2f\n", name, cp->pol.tau,
           cp->pol.patience, cp->acc, r->acc, r->f1, r->mean_layers, r->speedup, rows[0][k].wall_speedup,
           rows[1][k].wall_speedup);
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
  if (T) {
    fprintf(f, "\nTemperatures fitted on dev (exit 1..%d):", L);
    for (int l = 0; l < L; l++) fprintf(f, " %.3f", T[l]);
    fprintf(f, "; the grid, the engine and these results use the scaled logits.\n");
  }
  const char *risk_name = cfg_risk_names[cc->risk];
  fprintf(f, "\n## Rules compared: %s vs risk (%s <= %g with probability >= %g)\n\n", rules[0].rule, risk_name,
          cc->epsilon, 1 - cc->delta);
  fprintf(f, "Risk = %s. Test by simulation on the test logits (the same decisions as the engine, above).\n\n",
          cc->risk == CFG_RISK_ACCURACY_DROP
              ? "the fraction of inputs answered wrong where full depth is right (bounds the accuracy drop)"
              : "the fraction of inputs whose answer differs from the full-depth answer");
  fprintf(f, "| rule | policy | tau | patience | dev risk | test risk | test risk > epsilon | dev acc | test acc | "
             "test macro-F1 | mean exit layer | layer speed-up |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int i = 0; i < n_rules; i++)
    for (int k = 1; k < 5; k++) {
      if (rules[i].chosen[k] < 0) continue;
      const calib_point *d = &cr.points[rules[i].chosen[k]], *t = &rules[i].test[k];
      double tr = calib_point_risk(t, (calib_risk)cc->risk);
      fprintf(f, "| %s | %s%s | %g | %d | %.4f | %.4f | %s | %.4f | %.4f | %.4f | %.2f | %.2fx |\n", rules[i].rule,
              epee_policy_name((epee_policy_kind)k), rules[i].fallback[k] ? " (none certified: full depth)" : "",
              d->pol.tau, d->pol.patience, calib_point_risk(d, (calib_risk)cc->risk), tr,
              tr > cc->epsilon ? "yes" : "no", d->acc, t->acc, t->f1, t->mean_layers, t->speedup);
    }
  if (n_rules < 2) fprintf(f, "\n(rule risk not run: policy none is not in calibrate.policies.)\n");
  if (atomic_commit(&af, e)) goto out;

  /* results.json (also embedded in the model file as its metrics); engine_equals_simulation ends each "test" */
  json_t *res = json_object(), *pols = json_object();
  json_object_set_new(res, "rule", json_string(cfg_rule_names[cc->rule]));
  json_object_set_new(res, "dev_n", json_integer(Nd));
  json_object_set_new(res, "test_n", json_integer(Nt));
  json_object_set_new(res, "policies", pols);
  char key[64];
  for (int k = 0; k < 5; k++) {
    if (!have[k]) continue;
    const calib_point *cp = &cr.points[cr.chosen[k]];
    json_t *p = json_object(), *d = json_object(), *t = json_object();
    json_object_set_new(pols, epee_policy_name((epee_policy_kind)k), p);
    if ((int)cp->pol.kind != k) json_object_set_new(p, "fallback", json_string(epee_policy_name(cp->pol.kind)));
    json_object_set_new(p, "tau", json_float(cp->pol.tau));
    json_object_set_new(p, "patience", json_integer(cp->pol.patience));
    json_object_set_new(p, "dev", d);
    jnum(d, "accuracy", cp->acc);
    jnum(d, "macro_f1", cp->f1);
    jnum(d, "mean_exit_layer", cp->mean_layers);
    jnum(d, "layer_speedup", cp->speedup);
    json_object_set_new(p, "test", t);
    jnum(t, "accuracy", rows[1][k].acc);
    jnum(t, "macro_f1", rows[1][k].f1);
    jnum(t, "mean_exit_layer", rows[1][k].mean_layers);
    jnum(t, "layer_speedup", rows[1][k].speedup);
    jnum(t, "wall_speedup_batch1", rows[0][k].wall_speedup);
    snprintf(key, sizeof key, "wall_speedup_batch%d", cc->batch);
    jnum(t, key, rows[1][k].wall_speedup);
    jnum(t, "seconds_batch1", rows[0][k].seconds);
    snprintf(key, sizeof key, "seconds_batch%d", cc->batch);
    jnum(t, key, rows[1][k].seconds);
    json_object_set_new(t, "engine_equals_simulation", json_integer(rows[1][k].agree));
  }
  json_t *risk = json_object(), *rj = json_object(), *rl = json_object();
  json_object_set_new(res, "risk", risk);
  json_object_set_new(risk, "loss", json_string(risk_name));
  jnum(risk, "epsilon", cc->epsilon);
  jnum(risk, "delta", cc->delta);
  json_object_set_new(res, "rules", rj);
  for (int i = 0; i < n_rules; i++) {
    json_t *ro = json_object();
    json_object_set_new(rj, rules[i].rule, ro);
    for (int k = 1; k < 5; k++) {
      if (rules[i].chosen[k] < 0) continue;
      const calib_point *d = &cr.points[rules[i].chosen[k]];
      json_object_set_new(ro, epee_policy_name((epee_policy_kind)k),
                          json_pack("{s:s, s:o, s:i, s:b, s:o, s:o}", "policy", epee_policy_name(d->pol.kind), "tau",
                                    json_float(d->pol.tau), "patience", d->pol.patience, "fallback",
                                    rules[i].fallback[k], "dev", point_json(d), "test", point_json(&rules[i].test[k])));
    }
  }
  json_object_set_new(res, "reliability_test", rl);
  for (int i = 0; i < n_rel; i++) jnum(rl, i ? "epee_ece" : "last_exit_ece", rel[i].ece);
  metrics_json = json_text(res, 0);
  snprintf(path, sizeof path, "%s/results.json", cfg->run.dir);
  if (atomic_write_text(path, metrics_json, e)) goto out;

  /* 4. export: the model with EPEE's calibrated policy (or the first calibrated one) and its temperatures */
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
    wrc = model_file_write(path, &j->m, &meta, e);
    if (!wrc) wrc = hf_init_export(&j->m, &meta, cfg, e);
    free(meta.train_config_json);
    if (wrc) goto out;
    printf("\nexported %s (policy %s, tau %g, patience %d%s)\n", path, epee_policy_name(meta.policy.kind),
           meta.policy.tau, meta.policy.patience, T ? ", temperatures" : "");
  }
  printf("run folder: %s (summary.json, calibration.csv/.svg, reliability.svg, results.md/.json, logits.h5, "
         "metrics.jsonl)\n", cfg->run.dir);
  rc = 0;
out:
  calib_result_free(&cr);
  free(metrics_json), free(taus), free(T), free(stat);
  if (dev_s != dev) free(dev_s), free(test_s);
  free(dev), free(test);
  return rc;
}
