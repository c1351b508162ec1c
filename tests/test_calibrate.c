/* Calibration by simulation on a tiny [N=4, L=3, C=2] set whose every grid point was worked out by hand
 * (trajectories below), the selection rules and their tie-breaks, the CSV text, the SVG structure, input
 * errors, and agreement with the streaming policy code on random logits. */
#include <CUnit/CUnit.h>
#include <math.h>
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
                      .rule = rule, .within = within, .layer_budget = budget};
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

  const char *want_csv =
      "policy,tau,patience,accuracy,macro_f1,mean_exit_layer,layer_speedup,chosen\n"
      "none,,,1.000000,1.000000,3.0000,1.0000,1\n"
      "entropy,0.005,,1.000000,1.000000,2.5000,1.2000,1\n"
      "entropy,0.01,,1.000000,1.000000,2.5000,1.2000,0\n"
      "entropy,0.6,,0.500000,0.333333,1.7500,1.7143,0\n"
      "patience,,1,0.750000,0.733333,2.5000,1.2000,0\n"
      "patience,,2,1.000000,1.000000,3.0000,1.0000,1\n"
      "epee,0.005,1,0.750000,0.733333,2.2500,1.3333,0\n"
      "epee,0.005,2,1.000000,1.000000,2.5000,1.2000,1\n"
      "epee,0.01,1,0.750000,0.733333,2.2500,1.3333,0\n"
      "epee,0.01,2,1.000000,1.000000,2.5000,1.2000,0\n"
      "epee,0.6,1,0.250000,0.200000,1.5000,2.0000,0\n"
      "epee,0.6,2,0.500000,0.333333,1.7500,1.7143,0\n"
      "pcee,0.005,1,1.000000,1.000000,2.5000,1.2000,1\n"
      "pcee,0.005,2,1.000000,1.000000,2.7500,1.0909,0\n"
      "pcee,0.01,1,1.000000,1.000000,2.5000,1.2000,0\n"
      "pcee,0.01,2,1.000000,1.000000,2.7500,1.0909,0\n"
      "pcee,0.6,1,0.500000,0.333333,1.7500,1.7143,0\n"
      "pcee,0.6,2,1.000000,1.000000,2.7500,1.0909,0\n";
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

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("calibrate", suite_init, suite_clean);
  CU_add_test(s, "every grid point by hand", test_points);
  CU_add_test(s, "selection rules and tie-breaks", test_rules);
  CU_add_test(s, "patience tie -> larger p", test_patience_tie);
  CU_add_test(s, "CSV text and SVG structure", test_csv_and_svg);
  CU_add_test(s, "bad grid and labels", test_errors);
  CU_add_test(s, "simulation equals streaming decisions", test_matches_streaming);
}
