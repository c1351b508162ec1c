/* How often does each selection rule's choice exceed the risk budget on new data? Reads a finished run's raw
 * all-exit logits (RUN/logits.h5, written by epee-train) and its config (RUN/config.yaml, plus overrides),
 * calibrates on dev and judges on test as epee-train does, then repeats that over random re-splits of dev + test
 * (the same sizes, the pool shuffled with a seeded hash): per policy and rule, the setting chosen on the real dev
 * split with its dev and test risk and test layer speed-up, and over the re-splits how many times the test risk
 * exceeded calibrate.epsilon, the mean test risk and the mean test layer speed-up. With calibrate.temperature
 * the temperatures are refitted on each re-split's dev part, as epee-train would. Prints a Markdown table.
 * Usage: risk_resplit RUN_DIR [SPLITS = 50] [section.key=value ...] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5io.h"
#include "core/rng.h"
#include "train/posttrain.h"

typedef struct {
  float *logits; /* [n, L, C] */
  int *gold, n;
} split;

/* One rule's choice for one policy kind: the dev point, whether it is the risk rule's fallback, its test figures */
typedef struct {
  int dev, fallback;
  calib_point test;
} choice;

typedef struct {
  uint64_t key;
  int row;
} keyed;

static int by_key(const void *a, const void *b) {
  const keyed *x = a, *y = b;
  return (x->key > y->key) - (x->key < y->key);
}

static void gather(const split *pool, const int *idx, int n, int L, int C, split *out) {
  size_t row = (size_t)L * C;
  out->n = n;
  for (int i = 0; i < n; i++) {
    memcpy(out->logits + (size_t)i * row, pool->logits + (size_t)idx[i] * row, sizeof(float) * row);
    out->gold[i] = pool->gold[idx[i]];
  }
}

/* Calibrates on dev (temperatures refitted when asked) and evaluates each rule's choice per kind on test (ch);
 * returns -1 with e set on a bad grid. */
static int calibrate(const split *dev, const split *test, int L, int C, const calib_grid *g, int temperature,
                     calib_result *cr, choice ch[2][EPEE_POLICY_KINDS], epee_err *e) {
  if (temperature) {
    float *T = malloc(sizeof(float) * (size_t)L);
    calib_fit_temperature(dev->logits, dev->gold, dev->n, L, C, T);
    calib_apply_temperature(dev->logits, dev->n, L, C, T, dev->logits);
    calib_apply_temperature(test->logits, test->n, L, C, T, test->logits);
    free(T);
  }
  if (calib_run(dev->logits, dev->gold, dev->n, L, C, g, cr, e)) return -1;
  const calib_rule rules[2] = {CALIB_RULE_FASTEST_WITHIN, CALIB_RULE_RISK};
  for (int r = 0; r < 2; r++) {
    calib_grid gr = *g;
    gr.rule = rules[r];
    if (calib_choose(cr, &gr, e)) return -1;
    for (int k = 0; k < EPEE_POLICY_KINDS; k++) {
      if (cr->chosen[k] < 0) continue;
      ch[r][k] = (choice){cr->chosen[k], cr->risk_fallback[k],
                          calib_eval(test->logits, test->gold, test->n, L, C, &cr->points[cr->chosen[k]].pol)};
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: risk_resplit RUN_DIR [SPLITS] [section.key=value ...]\n");
    return 2;
  }
  const char *run = argv[1];
  int has_n = argc > 2 && !strchr(argv[2], '='), splits = has_n ? atoi(argv[2]) : 50, first_override = has_n ? 3 : 2;
  char path[4096];
  epee_err e = {{0}};
  epee_config cfg;
  snprintf(path, sizeof path, "%s/config.yaml", run);
  int rc = cfg_load(path, &cfg, &e);
  for (int i = first_override; !rc && i < argc; i++) rc = cfg_override(&cfg, argv[i], &e);
  if (!rc) rc = cfg_validate(&cfg, &e);
  snprintf(path, sizeof path, "%s/logits.h5", run);
  hid_t f = rc ? -1 : h5_open_sealed(path, &e);
  int no_logits = !rc && f < 0;
  int shape[2][4], nd[2];
  if (f >= 0 && !h5_shape(f, path, "dev_logits", &nd[0], shape[0], &e) &&
      !h5_shape(f, path, "test_logits", &nd[1], shape[1], &e) &&
      (nd[0] != 3 || nd[1] != 3 || shape[1][1] != shape[0][1] || shape[1][2] != shape[0][2]))
    epee_errf(&e, "%s: expected dev_logits and test_logits of shapes [N, L, C] with the same L and C", path);
  rc = rc || f < 0 || e.msg[0];
  if (rc || splits < 1) {
    fprintf(stderr, "risk_resplit: %s%s\n", rc ? e.msg : "SPLITS must be at least 1",
            no_logits ? " (epee-train writes it; for a run trained before: epee-train --calibrate RUN_DIR)" : "");
    return 1;
  }
  int Nd = shape[0][0], Nt = shape[1][0], L = shape[0][1], C = shape[0][2], Np = Nd + Nt;
  size_t row = (size_t)L * C;
  split pool = {malloc(sizeof(float) * row * Np), malloc(sizeof(int) * Np), Np};
  if (h5_read_floats(f, path, "dev_logits", pool.logits, 3, (int[]){Nd, L, C}, &e) ||
      h5_read_floats(f, path, "test_logits", pool.logits + row * Nd, 3, (int[]){Nt, L, C}, &e) ||
      h5_read_ints(f, path, "dev_labels", pool.gold, 1, (int[]){Nd}, &e) ||
      h5_read_ints(f, path, "test_labels", pool.gold + Nd, 1, (int[]){Nt}, &e)) {
    fprintf(stderr, "risk_resplit: %s\n", e.msg);
    return 1;
  }
  H5Fclose(f);
  epee_policy_kind kinds[EPEE_POLICY_KINDS];
  calib_grid g;
  float *taus;
  posttrain_grid(&cfg.calibrate, &g, kinds, &taus);
  const cfg_calibrate *cc = &cfg.calibrate;
  split dev = {malloc(sizeof(float) * row * Nd), malloc(sizeof(int) * Nd), Nd};
  split test = {malloc(sizeof(float) * row * Nt), malloc(sizeof(int) * Nt), Nt};
  int *idx = malloc(sizeof(int) * Np);
  keyed *key = malloc(sizeof(keyed) * Np);

  /* the real split first (s = -1), then the re-splits: the pool ordered by a seeded hash of each row */
  choice real[2][EPEE_POLICY_KINDS], pt[2][EPEE_POLICY_KINDS];
  calib_result real_cr;
  int exceed[2][EPEE_POLICY_KINDS] = {{0}}, fallbacks[2][EPEE_POLICY_KINDS] = {{0}};
  double mean_risk[2][EPEE_POLICY_KINDS] = {{0}}, mean_speed[2][EPEE_POLICY_KINDS] = {{0}};
  for (int s = -1; s < splits; s++) {
    for (int i = 0; i < Np; i++)
      key[i] = (keyed){s < 0 ? (uint64_t)i : rng_hash((uint64_t)cfg.run.seed, (uint64_t)s, (uint64_t)i), i};
    qsort(key, (size_t)Np, sizeof *key, by_key);
    for (int i = 0; i < Np; i++) idx[i] = key[i].row;
    gather(&pool, idx, Nd, L, C, &dev);
    gather(&pool, idx + Nd, Nt, L, C, &test);
    calib_result cr;
    if (calibrate(&dev, &test, L, C, &g, cc->temperature, &cr, s < 0 ? real : pt, &e)) {
      fprintf(stderr, "risk_resplit: %s\n", e.msg);
      return 1;
    }
    if (s < 0) {
      real_cr = cr;
      continue;
    }
    for (int r = 0; r < 2; r++)
      for (int k = 1; k < EPEE_POLICY_KINDS; k++) {
        if (cr.chosen[k] < 0) continue;
        double risk = calib_point_risk(&pt[r][k].test, g.risk);
        exceed[r][k] += risk > cc->epsilon;
        fallbacks[r][k] += pt[r][k].fallback;
        mean_risk[r][k] += risk / splits;
        mean_speed[r][k] += pt[r][k].test.speedup / splits;
      }
    calib_result_free(&cr);
  }
  printf("%s: dev %d, test %d, %d re-splits; risk = %s, epsilon %g, delta %g; fastest_within %g (%s)%s\n\n", run, Nd,
         Nt, splits, cfg_risk_names[cc->risk], cc->epsilon, cc->delta, cc->within, cfg_metric_names[cc->metric],
         cc->temperature ? "; temperatures refitted per split" : "");
  printf("| policy | rule | tau | p | dev risk | test risk | test acc | layer speed-up "
         "| test risk > epsilon (re-splits) | mean test risk | mean layer speed-up | fell back to full depth |\n"
         "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  const char *rule_names[2] = {"fastest_within", "risk"};
  for (int k = 1; k < EPEE_POLICY_KINDS; k++)
    for (int r = 0; r < 2; r++) {
      if (real_cr.chosen[k] < 0) continue;
      const calib_point *t = &real[r][k].test, *d = &real_cr.points[real[r][k].dev];
      printf("| %s | %s | %s%g | %d | %.4f | %.4f | %.4f | %.2fx | %d/%d | %.4f | %.2fx | %d/%d |\n",
             epee_policy_name((epee_policy_kind)k), rule_names[r], real[r][k].fallback ? "(none) " : "", d->pol.tau,
             d->pol.patience, calib_point_risk(d, g.risk), calib_point_risk(t, g.risk), t->acc, t->speedup,
             exceed[r][k], splits, mean_risk[r][k], mean_speed[r][k], fallbacks[r][k], splits);
    }
  calib_result_free(&real_cr);
  free(pool.logits), free(pool.gold), free(dev.logits), free(dev.gold), free(test.logits), free(test.gold);
  free(idx), free(key), free(taus);
  cfg_free(&cfg);
  return 0;
}
