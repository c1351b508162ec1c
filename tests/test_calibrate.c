/* Calibration by simulation on a tiny [N=4, L=3, C=2] set whose every grid point was worked out by hand
 * (trajectories below), the selection rules and their tie-breaks, the CSV text, the SVG structure, input
 * errors, and agreement with the streaming policy code on random logits. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/calibrate.h"

#define N 4
#define L 3
#define C 2
/* Logit of the argmax class (the other is 0) and the resulting normalised entropy:
 * S = 20 -> H ~ 6e-8; M = ln 9 -> p = (0.9, 0.1), H = 0.469; W = 0.1 -> H = 0.998. */
#define S 20.0f
#define M 2.1972246f
#define W 0.1f

/* (label, level) per layer; gold in the comment:
 *   s0 gold 0: (0 S) (0 S) (0 S)
 *   s1 gold 1: (0 M) (1 W) (1 S)
 *   s2 gold 0: (1 W) (1 W) (0 M)
 *   s3 gold 1: (1 W) (0 M) (1 W)
 * The last exit is right on all four: full-depth accuracy 1. */
static const int lab[N][L] = {{0, 0, 0}, {0, 1, 1}, {1, 1, 0}, {1, 0, 1}};
static const float lev[N][L] = {{S, S, S}, {M, W, S}, {W, W, M}, {W, M, W}};
static const int gold[N] = {0, 1, 0, 1};
static float logits[N * L * C];

static const epee_policy_kind all_kinds[5] = {EPEE_POLICY_NONE, EPEE_POLICY_ENTROPY, EPEE_POLICY_PATIENCE,
                                              EPEE_POLICY_EPEE, EPEE_POLICY_PCEE};
static const float taus[3] = {0.005f, 0.01f, 0.6f};
static char dir[64];

static int suite_init(void) {
  memset(logits, 0, sizeof logits);
  for (int n = 0; n < N; n++)
    for (int i = 0; i < L; i++) logits[(n * L + i) * C + lab[n][i]] = lev[n][i];
  strcpy(dir, "/tmp/epee_test_calib_XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int suite_clean(void) {
  char p[128];
  const char *files[] = {"calibration.csv", "calibration.svg"};
  for (int i = 0; i < 2; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, files[i]);
    unlink(p);
  }
  return rmdir(dir);
}

static calib_grid grid(calib_rule rule, double within, double budget) {
  return (calib_grid){.kinds = all_kinds, .n_kinds = 5, .taus = taus, .n_taus = 3, .pats = NULL, .n_pats = 0,
                      .rule = rule, .within = within, .layer_budget = budget, .max_recall_drop = 1};
}

/* Hand-worked points in grid order (patience list empty -> p in {1, 2}). pcee at tau 0.005/0.01 and
 * epee's twins equal each other because no exit has 0.005 <= H < 0.01. */
typedef struct {
  epee_policy_kind k;
  float tau;
  int p;
  double acc, f1, layers;
} want_point;
#define F1_P1 (11.0 / 15) /* preds 0 1 1 1 vs gold 0 1 0 1: class 0 F1 2/3, class 1 F1 4/5 */
#define F1_ALL0 (1.0 / 3) /* preds 0 0 0 0: class 0 F1 4/6, class 1 F1 0 */
#define F1_E61 (0.2)      /* preds 0 0 1 0: class 0 F1 2/5, class 1 F1 0 */
static const want_point want_points[18] = {
    {EPEE_POLICY_NONE, 0, 0, 1, 1, 3},
    {EPEE_POLICY_ENTROPY, 0.005f, 0, 1, 1, 2.5},  /* exits 1 3 3 3 */
    {EPEE_POLICY_ENTROPY, 0.01f, 0, 1, 1, 2.5},
    {EPEE_POLICY_ENTROPY, 0.6f, 0, 0.5, F1_ALL0, 1.75}, /* exits 1 1 3 2 */
    {EPEE_POLICY_PATIENCE, 0, 1, 0.75, F1_P1, 2.5},     /* exits 2 3 2 3 */
    {EPEE_POLICY_PATIENCE, 0, 2, 1, 1, 3},
    {EPEE_POLICY_EPEE, 0.005f, 1, 0.75, F1_P1, 2.25},   /* exits 1 3 2 3 */
    {EPEE_POLICY_EPEE, 0.005f, 2, 1, 1, 2.5},           /* exits 1 3 3 3 */
    {EPEE_POLICY_EPEE, 0.01f, 1, 0.75, F1_P1, 2.25},
    {EPEE_POLICY_EPEE, 0.01f, 2, 1, 1, 2.5},
    {EPEE_POLICY_EPEE, 0.6f, 1, 0.25, F1_E61, 1.5},     /* exits 1 1 2 2 */
    {EPEE_POLICY_EPEE, 0.6f, 2, 0.5, F1_ALL0, 1.75},    /* exits 1 1 3 2 */
    {EPEE_POLICY_PCEE, 0.005f, 1, 1, 1, 2.5},           /* exits 1 3 3 3 */
    {EPEE_POLICY_PCEE, 0.005f, 2, 1, 1, 2.75},          /* exits 2 3 3 3 */
    {EPEE_POLICY_PCEE, 0.01f, 1, 1, 1, 2.5},
    {EPEE_POLICY_PCEE, 0.01f, 2, 1, 1, 2.75},
    {EPEE_POLICY_PCEE, 0.6f, 1, 0.5, F1_ALL0, 1.75},    /* exits 1 1 3 2 */
    {EPEE_POLICY_PCEE, 0.6f, 2, 1, 1, 2.75},            /* exits 2 3 3 3 */
};

static void test_points(void) {
  calib_grid g = grid(CALIB_RULE_MAX_ACCURACY, 0, 0);
  calib_result r;
  epee_err e = {{0}};
  CU_ASSERT_FATAL(calib_run(logits, gold, N, L, C, &g, &r, &e) == 0);
  CU_ASSERT_EQUAL_FATAL(r.n_points, 18);
  CU_ASSERT_DOUBLE_EQUAL(r.full_acc, 1.0, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(r.full_f1, 1.0, 1e-12);
  for (int i = 0; i < 18; i++) {
    const calib_point *p = &r.points[i];
    CU_ASSERT_EQUAL(p->pol.kind, want_points[i].k);
    CU_ASSERT_EQUAL(p->pol.tau, want_points[i].tau);
    CU_ASSERT_EQUAL(p->pol.patience, want_points[i].p);
    CU_ASSERT_DOUBLE_EQUAL(p->acc, want_points[i].acc, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(p->f1, want_points[i].f1, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(p->mean_layers, want_points[i].layers, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(p->speedup, L / want_points[i].layers, 1e-12);
  }
  calib_result_free(&r);
}

/* chosen[] per kind (none, entropy, patience, epee, pcee) under a rule, worked out from the table above. */
static void expect_chosen(calib_rule rule, double within, double budget, const int want_idx[5]) {
  calib_grid g = grid(rule, within, budget);
  calib_result r;
  epee_err e = {{0}};
  CU_ASSERT_FATAL(calib_run(logits, gold, N, L, C, &g, &r, &e) == 0);
  for (int k = 0; k < 5; k++) {
    if (r.chosen[k] != want_idx[k])
      printf("\n  rule %d within %g budget %g: kind %d chose %d, want %d\n", (int)rule, within, budget, k,
             r.chosen[k], want_idx[k]);
    CU_ASSERT_EQUAL(r.chosen[k], want_idx[k]);
  }
  calib_result_free(&r);
}

static void test_rules(void) {
  /* within 0.5 points: only accuracy-1 points qualify; ties between tau 0.005 and 0.01 -> smaller tau */
  expect_chosen(CALIB_RULE_FASTEST_WITHIN, 0.005, 0, (const int[5]){0, 1, 5, 7, 12});
  /* within 30 points: accuracy 0.75 qualifies, and is faster for patience (p=1) and epee (0.005, 1) */
  expect_chosen(CALIB_RULE_FASTEST_WITHIN, 0.3, 0, (const int[5]){0, 1, 4, 6, 12});
  /* nothing qualifies (needs accuracy >= 1.1): fall back to the most accurate, ties -> faster */
  expect_chosen(CALIB_RULE_FASTEST_WITHIN, -0.1, 0, (const int[5]){0, 1, 5, 7, 12});
  expect_chosen(CALIB_RULE_MAX_ACCURACY, 0, 0, (const int[5]){0, 1, 5, 7, 12});
  /* budget 2 layers: none and patience cannot meet it -> their fastest point */
  expect_chosen(CALIB_RULE_LAYER_BUDGET, 0, 2.0, (const int[5]){0, 3, 4, 11, 16});
  /* budget 2.5: the boundary counts */
  expect_chosen(CALIB_RULE_LAYER_BUDGET, 0, 2.5, (const int[5]){0, 1, 4, 7, 12});
}

/* Equal accuracy and speed-up at two patience values -> the larger p, whatever the list order; a kind not in
 * the grid has chosen -1. */
static void test_patience_tie(void) {
  epee_policy_kind k = EPEE_POLICY_PATIENCE;
  int pats[2][2] = {{2, 5}, {5, 2}};
  for (int o = 0; o < 2; o++) {
    calib_grid g = {.kinds = &k, .n_kinds = 1, .pats = pats[o], .n_pats = 2, .rule = CALIB_RULE_MAX_ACCURACY};
    calib_result r;
    epee_err e = {{0}};
    CU_ASSERT_FATAL(calib_run(logits, gold, N, L, C, &g, &r, &e) == 0);
    CU_ASSERT_EQUAL(r.n_points, 2);
    CU_ASSERT_EQUAL(r.points[r.chosen[EPEE_POLICY_PATIENCE]].pol.patience, 5);
    CU_ASSERT_EQUAL(r.chosen[EPEE_POLICY_NONE], -1);
    CU_ASSERT_EQUAL(r.chosen[EPEE_POLICY_EPEE], -1);
    calib_result_free(&r);
  }
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  size_t got = fread(s, 1, (size_t)n, f);
  s[got] = 0;
  fclose(f);
  return s;
}

static int count(const char *s, const char *needle) {
  int c = 0;
  for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) c++;
  return c;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

static void test_csv_and_svg(void) {
  calib_grid g = grid(CALIB_RULE_FASTEST_WITHIN, 0.005, 0);
  calib_result r;
  epee_err e = {{0}};
  CU_ASSERT_FATAL(calib_run(logits, gold, N, L, C, &g, &r, &e) == 0);
  char csv[128], svg[128], tmp[140];
  snprintf(csv, sizeof csv, "%s/calibration.csv", dir);
  snprintf(svg, sizeof svg, "%s/calibration.svg", dir);
  CU_ASSERT_EQUAL(calib_write_csv(&r, csv, &e), 0);
  CU_ASSERT_EQUAL(calib_write_svg(&r, L, "dev <tiny> & co", svg, &e), 0);
  snprintf(tmp, sizeof tmp, "%s.tmp", csv);
  CU_ASSERT_FALSE(exists(tmp));
  snprintf(tmp, sizeof tmp, "%s.tmp", svg);
  CU_ASSERT_FALSE(exists(tmp));

  /* the last exit is right on all four, so disagreement = harm = 1 - accuracy; recall drop by hand from the
   * trajectories (e.g. epee 0.6/1 answers 0 0 1 0: class 1 loses both, class 0 one of two) */
  const char *want_csv =
      "policy,tau,patience,accuracy,macro_f1,mean_exit_layer,layer_speedup,disagreement,harm,max_recall_drop,"
      "risk_p_value,risk_certified,chosen\n"
      "none,,,1.000000,1.000000,3.0000,1.0000,0.000000,0.000000,0.000000,,0,1\n"
      "entropy,0.005,,1.000000,1.000000,2.5000,1.2000,0.000000,0.000000,0.000000,,0,1\n"
      "entropy,0.01,,1.000000,1.000000,2.5000,1.2000,0.000000,0.000000,0.000000,,0,0\n"
      "entropy,0.6,,0.500000,0.333333,1.7500,1.7143,0.500000,0.500000,1.000000,,0,0\n"
      "patience,,1,0.750000,0.733333,2.5000,1.2000,0.250000,0.250000,0.500000,,0,0\n"
      "patience,,2,1.000000,1.000000,3.0000,1.0000,0.000000,0.000000,0.000000,,0,1\n"
      "epee,0.005,1,0.750000,0.733333,2.2500,1.3333,0.250000,0.250000,0.500000,,0,0\n"
      "epee,0.005,2,1.000000,1.000000,2.5000,1.2000,0.000000,0.000000,0.000000,,0,1\n"
      "epee,0.01,1,0.750000,0.733333,2.2500,1.3333,0.250000,0.250000,0.500000,,0,0\n"
      "epee,0.01,2,1.000000,1.000000,2.5000,1.2000,0.000000,0.000000,0.000000,,0,0\n"
      "epee,0.6,1,0.250000,0.200000,1.5000,2.0000,0.750000,0.750000,1.000000,,0,0\n"
      "epee,0.6,2,0.500000,0.333333,1.7500,1.7143,0.500000,0.500000,1.000000,,0,0\n"
      "pcee,0.005,1,1.000000,1.000000,2.5000,1.2000,0.000000,0.000000,0.000000,,0,1\n"
      "pcee,0.005,2,1.000000,1.000000,2.7500,1.0909,0.000000,0.000000,0.000000,,0,0\n"
      "pcee,0.01,1,1.000000,1.000000,2.5000,1.2000,0.000000,0.000000,0.000000,,0,0\n"
      "pcee,0.01,2,1.000000,1.000000,2.7500,1.0909,0.000000,0.000000,0.000000,,0,0\n"
      "pcee,0.6,1,0.500000,0.333333,1.7500,1.7143,0.500000,0.500000,1.000000,,0,0\n"
      "pcee,0.6,2,1.000000,1.000000,2.7500,1.0909,0.000000,0.000000,0.000000,,0,0\n";
  char *got = slurp(csv);
  CU_ASSERT_PTR_NOT_NULL_FATAL(got);
  if (strcmp(got, want_csv)) printf("\n  got CSV:\n%s", got);
  CU_ASSERT_STRING_EQUAL(got, want_csv);
  free(got);

  got = slurp(svg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(got);
  CU_ASSERT(strncmp(got, "<?xml", 5) == 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(got, "</svg>\n"));
  CU_ASSERT_EQUAL(count(got, "<polyline"), 5);       /* one per policy */
  CU_ASSERT_EQUAL(count(got, "class=\"ring\""), 5);  /* one chosen point per policy */
  CU_ASSERT_EQUAL(count(got, "r=\"3\" fill=\"#"), 18 + 5); /* every point, plus the 5 legend swatches */
  CU_ASSERT_PTR_NOT_NULL(strstr(got, "dev &lt;tiny&gt; &amp; co"));
  CU_ASSERT_PTR_NOT_NULL(strstr(got, ">pcee</text>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(got, "accuracy (%)"));
  free(got);

  CU_ASSERT_EQUAL(calib_write_csv(&r, "/nonexistent-dir/calibration.csv", &e), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "/nonexistent-dir/calibration.csv.tmp"));
  calib_result_free(&r);
}

static void expect_error(const calib_grid *g, const int *gd, int n, int l, const char *want) {
  calib_result r;
  epee_err e = {{0}};
  CU_ASSERT_EQUAL(calib_run(logits, gd, n, l, C, g, &r, &e), -1);
  if (!strstr(e.msg, want)) printf("\n  got: %s\n  want: ...%s...\n", e.msg, want);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, want));
  CU_ASSERT_PTR_NULL(r.points);
  calib_result_free(&r); /* safe after a failure */
}

static void test_errors(void) {
  calib_grid g = grid(CALIB_RULE_FASTEST_WITHIN, 0.005, 0);
  int bad_gold[N] = {0, 1, 2, 0};
  expect_error(&g, bad_gold, N, L, "gold label of dev sample 2 is 2, expected 0..1");
  expect_error(&g, gold, 0, L, "need N >= 1");
  expect_error(&g, gold, N, 1, "empty for L=1");

  epee_policy_kind dup[2] = {EPEE_POLICY_EPEE, EPEE_POLICY_EPEE};
  calib_grid gd = g;
  gd.kinds = dup, gd.n_kinds = 2;
  expect_error(&gd, gold, N, L, "epee listed twice");
  gd = g, gd.n_kinds = 0;
  expect_error(&gd, gold, N, L, "at least one policy");
  gd = g, gd.n_taus = 0;
  expect_error(&gd, gold, N, L, "policy entropy needs at least one threshold");
  int p0[2] = {1, 0};
  gd = g, gd.pats = p0, gd.n_pats = 2;
  expect_error(&gd, gold, N, L, "patience[1] = 0, expected an integer >= 1");
  float tnan[1] = {NAN};
  gd = g, gd.taus = tnan, gd.n_taus = 1;
  expect_error(&gd, gold, N, L, "tau[0] = nan");
}

/* On random logits every point must equal what the streaming code (epee_policy_run, the engine's path)
 * gives sample by sample; patience list empty -> 1..L-1. */
static void test_matches_streaming(void) {
  enum { RN = 300, RL = 6, RC = 3 };
  float *z = malloc(sizeof(float) * RN * RL * RC);
  int g[RN];
  unsigned s = 12345;
  for (int i = 0; i < RN * RL * RC; i++) {
    s = s * 1103515245u + 12345u;
    z[i] = (float)((s >> 8) % 2000) / 250.0f - 4.0f;
  }
  for (int n = 0; n < RN; n++) g[n] = n % RC;
  const float rt[4] = {0.05f, 0.3f, 0.6f, 0.9f};
  calib_grid cg = {.kinds = all_kinds, .n_kinds = 5, .taus = rt, .n_taus = 4, .rule = CALIB_RULE_FASTEST_WITHIN,
                   .within = 0.01};
  calib_result r;
  epee_err e = {{0}};
  CU_ASSERT_FATAL(calib_run(z, g, RN, RL, RC, &cg, &r, &e) == 0);
  CU_ASSERT_EQUAL(r.n_points, 1 + 4 + 5 + 20 + 20);
  int early = 0;
  for (int i = 0; i < r.n_points; i++) {
    long correct = 0, layers = 0;
    for (int n = 0; n < RN; n++) {
      int y, ex = epee_policy_run(&r.points[i].pol, z + (size_t)n * RL * RC, RL, RC, &y);
      correct += y == g[n];
      layers += ex + 1;
    }
    CU_ASSERT_DOUBLE_EQUAL(r.points[i].acc, (double)correct / RN, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.points[i].mean_layers, (double)layers / RN, 1e-12);
    early += layers < (long)RN * RL;
  }
  CU_ASSERT(early > 30); /* the grid really exercises early exits */
  calib_result_free(&r);
  free(z);
}

/* The risk rule on the tiny set, worked out by hand. Losses = wrong answers (the last exit is always right).
 * epsilon 0.3: P(Bin(4, 0.3) <= 0) = 0.2401, <= 1: 0.6517, <= 2: 0.9163. delta 0.5: entropy's one chain (tau
 * ascending) certifies 0.005 and 0.01 (0 losses), not 0.6 (2); patience's (p descending) p=2, not p=1 (1 loss);
 * epee's two chains at 0.25 each: p=2 certifies 0.005 and 0.01, p=1 fails at once (1 loss); pcee: p=2 all three
 * (0 losses), p=1 0.005 and 0.01. Fastest certified, ties -> smaller tau: {0, 1, 5, 7, 12}. delta 0.2: even 0.2401
 * fails (0.2 for one chain, 0.1 for two): everything falls back to the none point. */
static void test_risk_rule_by_hand(void) {
  calib_grid g = grid(CALIB_RULE_RISK, 0, 0);
  g.epsilon = 0.3, g.delta = 0.5;
  calib_result r;
  epee_err e = {{0}};
  CU_ASSERT_FATAL(calib_run(logits, gold, N, L, C, &g, &r, &e) == 0);
  const int want[5] = {0, 1, 5, 7, 12}, chains[5] = {0, 1, 1, 2, 2};
  const int certified[18] = {0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 0, 1};
  for (int k = 0; k < 5; k++) {
    CU_ASSERT_EQUAL(r.chosen[k], want[k]);
    CU_ASSERT_EQUAL(r.risk_fallback[k], 0);
    CU_ASSERT_EQUAL(r.risk_chains[k], chains[k]);
  }
  for (int i = 0; i < 18; i++) CU_ASSERT_EQUAL(r.points[i].certified, certified[i]);
  CU_ASSERT(isnan(r.points[0].p_value));
  CU_ASSERT_DOUBLE_EQUAL(r.points[1].p_value, 0.2401, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(r.points[4].p_value, 0.6517, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(r.points[3].p_value, 0.9163, 1e-12);
  /* the accuracy-drop form has the same losses here */
  g.risk = CALIB_RISK_ACCURACY_DROP;
  CU_ASSERT_FATAL(calib_choose(&r, &g, &e) == 0);
  for (int k = 0; k < 5; k++) CU_ASSERT_EQUAL(r.chosen[k], want[k]);
  g.delta = 0.2;
  CU_ASSERT_FATAL(calib_choose(&r, &g, &e) == 0);
  for (int k = 0; k < 5; k++) {
    CU_ASSERT_EQUAL(r.chosen[k], 0);
    CU_ASSERT_EQUAL(r.risk_fallback[k], k > 0);
  }
  CU_ASSERT_EQUAL(calib_risk_min_n(0.3, 0.2), 5); /* 0.7^4 = 0.24 > 0.2 >= 0.7^5 = 0.168 */
  CU_ASSERT_EQUAL(calib_risk_min_n(0.01, 0.1), 230);
  calib_result_free(&r);
  /* none is its fallback: a grid without it is refused */
  calib_grid gn = g;
  gn.kinds = all_kinds + 1, gn.n_kinds = 4;
  CU_ASSERT_EQUAL(calib_run(logits, gold, N, L, C, &gn, &r, &e), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "rule risk needs policy none"));
  calib_grid gb = g;
  gb.epsilon = 0;
  CU_ASSERT_EQUAL(calib_run(logits, gold, N, L, C, &gb, &r, &e), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "epsilon and delta in (0, 1)"));
  calib_result_free(&r);
}

static void test_binomial_cdf(void) {
  CU_ASSERT_DOUBLE_EQUAL(calib_binom_cdf(2, 10, 0.5), 56.0 / 1024, 1e-14);
  CU_ASSERT_DOUBLE_EQUAL(calib_binom_cdf(0, 4, 0.3), 0.2401, 1e-14);
  CU_ASSERT_EQUAL(calib_binom_cdf(-1, 10, 0.5), 0);
  CU_ASSERT_EQUAL(calib_binom_cdf(10, 10, 0.5), 1);
  /* large n: the sum of all terms is 1, and the median of Bin(20000, 0.01) sits at 200 */
  CU_ASSERT_DOUBLE_EQUAL(calib_binom_cdf(19999, 20000, 0.01), 1, 1e-9);
  double below = calib_binom_cdf(199, 20000, 0.01), at = calib_binom_cdf(200, 20000, 0.01);
  CU_ASSERT(below < 0.5 && at > 0.5 && at - below > 0.02 && at - below < 0.03); /* P(X = 200) = 0.0282 */
}

/* Heuristic rule options: macro-F1 as the metric and the per-class recall floor. */
static void test_metric_and_recall_floor(void) {
  calib_grid g = grid(CALIB_RULE_FASTEST_WITHIN, 0.3, 0);
  calib_result r;
  epee_err e = {{0}};
  /* within 30 points: accuracy 0.75 qualifies (patience p=1, epee 0.005/1), so do their macro-F1 0.733 */
  g.metric = CALIB_METRIC_MACRO_F1;
  CU_ASSERT_FATAL(calib_run(logits, gold, N, L, C, &g, &r, &e) == 0);
  CU_ASSERT_EQUAL(r.chosen[EPEE_POLICY_PATIENCE], 4);
  CU_ASSERT_EQUAL(r.chosen[EPEE_POLICY_EPEE], 6);
  g.within = 0.26; /* macro-F1 0.733 is 0.267 below 1: now excluded, while accuracy 0.75 would still pass */
  CU_ASSERT_FATAL(calib_choose(&r, &g, &e) == 0);
  CU_ASSERT_EQUAL(r.chosen[EPEE_POLICY_PATIENCE], 5);
  CU_ASSERT_EQUAL(r.chosen[EPEE_POLICY_EPEE], 7);
  g.metric = CALIB_METRIC_ACCURACY;
  CU_ASSERT_FATAL(calib_choose(&r, &g, &e) == 0);
  CU_ASSERT_EQUAL(r.chosen[EPEE_POLICY_EPEE], 6);
  g.max_recall_drop = 0.4; /* epee 0.005/1 costs class 0 half its recall */
  CU_ASSERT_FATAL(calib_choose(&r, &g, &e) == 0);
  CU_ASSERT_EQUAL(r.chosen[EPEE_POLICY_PATIENCE], 5);
  CU_ASSERT_EQUAL(r.chosen[EPEE_POLICY_EPEE], 7);
  calib_result_free(&r);
}

/* ---- the guarantee, checked: synthetic logits with a known risk curve ----------------------------------
 * Two exits, two classes, gold = the last exit's label (so accuracy drop = disagreement). A sample has a
 * difficulty v ~ U(0, 1); its first exit has margin 12 (1 - v) (entropy increasing in v) and disagrees with the
 * last exit with probability v. Policy entropy at tau exits early iff v < v*(tau), so its risk is exactly
 * E[v 1{v < v*}] = v*^2 / 2. Over many independent dev draws (as many random splits of an unlimited pool), the
 * risk rule's choice must have risk > epsilon in at most a delta fraction of draws; the heuristic rule given the
 * same budget (within = epsilon) exceeds it far more often. */
static uint64_t rng_state;
static double unif(void) {
  rng_state += 0x9E3779B97F4A7C15ull; /* splitmix64 */
  uint64_t z = rng_state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static void first_exit(double v, int label, float *z) {
  z[label] = (float)(12 * (1 - v)), z[1 - label] = 0;
}

/* v*(tau): the difficulty at which the first exit's entropy reaches tau (bisection; entropy increases with v) */
static double v_star(float tau) {
  double lo = 0, hi = 1;
  for (int it = 0; it < 60; it++) {
    double mid = (lo + hi) / 2;
    float z[2];
    first_exit(mid, 0, z);
    if (epee_normalized_entropy(z, 2) < tau) lo = mid;
    else hi = mid;
  }
  return lo;
}

static void test_risk_guarantee_holds_and_heuristic_fails(void) {
  enum { TRIALS = 400, ND = 400, NT = 40 };
  const double eps = 0.05, delta = 0.1;
  float taus[NT], *z = malloc(sizeof(float) * ND * 2 * 2);
  int gd[ND];
  calib_log_range(1e-3, 1, NT, taus);
  const epee_policy_kind kinds[2] = {EPEE_POLICY_NONE, EPEE_POLICY_ENTROPY};
  calib_grid g = {.kinds = kinds, .n_kinds = 2, .taus = taus, .n_taus = NT, .rule = CALIB_RULE_RISK,
                  .within = eps, .max_recall_drop = 1, .epsilon = eps, .delta = delta};
  calib_grid h = g;
  h.rule = CALIB_RULE_FASTEST_WITHIN;
  int exceed[2] = {0, 0};
  double speed[2] = {0, 0};
  rng_state = 2026;
  for (int t = 0; t < TRIALS; t++) {
    for (int n = 0; n < ND; n++) {
      double v = unif();
      int last = unif() < 0.5, first = unif() < v ? 1 - last : last;
      first_exit(v, first, z + n * 4);
      z[n * 4 + 2 + last] = 10, z[n * 4 + 2 + 1 - last] = 0;
      gd[n] = last;
    }
    calib_result r;
    epee_err e = {{0}};
    CU_ASSERT_FATAL(calib_run(z, gd, ND, 2, 2, &g, &r, &e) == 0);
    for (int rule = 0; rule < 2; rule++) {
      CU_ASSERT_FATAL(calib_choose(&r, rule ? &h : &g, &e) == 0);
      const calib_point *p = &r.points[r.chosen[EPEE_POLICY_ENTROPY]];
      double vs = p->pol.kind == EPEE_POLICY_NONE ? 0 : v_star(p->pol.tau);
      exceed[rule] += vs * vs / 2 > eps;
      speed[rule] += p->speedup / TRIALS;
    }
    calib_result_free(&r);
  }
  double rate_risk = (double)exceed[0] / TRIALS, rate_heur = (double)exceed[1] / TRIALS;
  double tol = 3 * sqrt(delta * (1 - delta) / TRIALS);
  printf("\n  risk > %.2f in %.1f%% of %d draws with rule risk (delta %.0f%%, mean speed-up %.2fx), %.1f%% with "
         "fastest_within (%.2fx) ", eps, 100 * rate_risk, TRIALS, 100 * delta, speed[0], 100 * rate_heur, speed[1]);
  CU_ASSERT(rate_risk <= delta + tol);
  CU_ASSERT(rate_heur > delta + tol); /* the heuristic violates the same guarantee */
  CU_ASSERT(speed[0] > 1.1); /* and the risk rule is not vacuous (the most a risk of 0.05 allows: 1.19x) */
  free(z);
}

/* Temperature scaling recovers known temperatures: labels drawn from softmax(s), exits given T * s. */
static void test_temperature_recovers_known(void) {
  enum { TN = 20000, TL = 3, TC = 4 };
  const float want[TL] = {2.5f, 0.5f, 1.0f};
  float *z = malloc(sizeof(float) * TN * TL * TC), got[TL];
  int *g = malloc(sizeof(int) * TN);
  rng_state = 7;
  for (int n = 0; n < TN; n++) {
    double s[TC], sum = 0, u = unif();
    for (int c = 0; c < TC; c++) { /* Box-Muller: s_c ~ N(0, 1.5^2) */
      s[c] = 1.5 * sqrt(-2 * log(1 - unif())) * cos(6.283185307179586 * unif());
      sum += exp(s[c]);
    }
    g[n] = TC - 1;
    for (int c = 0; c < TC; c++)
      if ((u -= exp(s[c]) / sum) < 0) {
        g[n] = c;
        break;
      }
    for (int l = 0; l < TL; l++)
      for (int c = 0; c < TC; c++) z[(n * TL + l) * TC + c] = (float)(want[l] * s[c]);
  }
  calib_fit_temperature(z, g, TN, TL, TC, got);
  printf("\n  fitted T %.3f %.3f %.3f (true 2.5 0.5 1) ", got[0], got[1], got[2]);
  for (int l = 0; l < TL; l++) CU_ASSERT(fabs(got[l] / want[l] - 1) < 0.05);
  /* scaled by the fit, the exits agree with each other (all are s up to the fit's error) */
  calib_apply_temperature(z, TN, TL, TC, got, z);
  CU_ASSERT(fabs(z[0] - z[TC]) < 0.05 * fabs(z[0]) + 1e-3);
  /* separable data: the likelihood keeps rising as T falls, so the fit stops at the lower bound */
  for (int n = 0; n < TN; n++)
    for (int l = 0; l < TL; l++)
      for (int c = 0; c < TC; c++) z[(n * TL + l) * TC + c] = c == g[n] ? 3.0f : 0.0f;
  calib_fit_temperature(z, g, TN, TL, TC, got);
  CU_ASSERT_DOUBLE_EQUAL(got[0], CALIB_T_MIN, 1e-6);
  free(z), free(g);
}

/* ECE by hand: bins ((b-1)/15, b/15]; 0.95, 0.95 and 1.0 share the last bin (accuracy 2/3, confidence 0.9667),
 * 0.55 is alone in bin 9 (right), 0 in the first (wrong): ECE = 3/5 * 0.3 + 1/5 * 0.45 = 0.27. */
static void test_ece_and_reliability_svg(void) {
  const float conf[5] = {0.95f, 0.95f, 0.55f, 0.0f, 1.0f};
  const int ok[5] = {1, 0, 1, 0, 1};
  metric_reliability rel[2];
  metric_reliability_of(conf, ok, 5, &rel[0]);
  CU_ASSERT_DOUBLE_EQUAL(rel[0].ece, 0.27, 1e-6);
  CU_ASSERT_EQUAL(rel[0].count[14], 3);
  CU_ASSERT_EQUAL(rel[0].count[8], 1);
  CU_ASSERT_EQUAL(rel[0].count[0], 1);
  CU_ASSERT_DOUBLE_EQUAL(rel[0].acc[14], 2.0 / 3, 1e-12);
  metric_reliability_of(conf, ok, 2, &rel[1]);
  char svg[128];
  snprintf(svg, sizeof svg, "%s/reliability.svg", dir);
  epee_err e = {{0}};
  const char *names[2] = {"last exit", "EPEE answers"};
  CU_ASSERT_FATAL(calib_write_reliability_svg(rel, names, 2, "test", svg, &e) == 0);
  char *got = slurp(svg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(got);
  CU_ASSERT_EQUAL(count(got, "<polyline"), 3); /* two series and the diagonal */
  CU_ASSERT_PTR_NOT_NULL(strstr(got, "last exit (ECE 27.00%)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(got, "EPEE answers (ECE 45.00%)")); /* bin 14: confidence 0.95, accuracy 0.5 */
  free(got);
  unlink(svg);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("calibrate", suite_init, suite_clean);
  CU_add_test(s, "every grid point by hand", test_points);
  CU_add_test(s, "selection rules and tie-breaks", test_rules);
  CU_add_test(s, "patience tie -> larger p", test_patience_tie);
  CU_add_test(s, "CSV text and SVG structure", test_csv_and_svg);
  CU_add_test(s, "bad grid and labels", test_errors);
  CU_add_test(s, "simulation equals streaming decisions", test_matches_streaming);
  CU_add_test(s, "risk rule: fixed-sequence chains by hand", test_risk_rule_by_hand);
  CU_add_test(s, "exact binomial tail", test_binomial_cdf);
  CU_add_test(s, "macro-F1 metric and per-class recall floor", test_metric_and_recall_floor);
  CU_add_test(s, "risk guarantee holds over dev draws; fastest_within violates it",
              test_risk_guarantee_holds_and_heuristic_fails);
  CU_add_test(s, "temperature scaling recovers known temperatures", test_temperature_recovers_known);
  CU_add_test(s, "ECE by hand and the reliability diagram", test_ece_and_reliability_svg);
}
