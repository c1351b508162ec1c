/* Exit policies and metrics on hand-worked logit sequences. Expected entropies come from closed forms
 * (e.g. binary entropy of 0.25 = 0.811278 bits), expected exits from stepping the rules by hand. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <string.h>

#include "infer/metrics.h"
#include "infer/policy.h"

#define MAXL 8
#define MAXC 22

/* Logit levels for a row whose argmax is `label`: STRONG gives H ~ 1e-7 (below any tau used here),
 * WEAK gives H > 0.99 (above every tau used here). */
#define STRONG 20.0f
#define WEAK 0.1f

/* seq[i] = row i: zeros except z[label[i]] = level[i]. */
static void make_seq(float *seq, int L, int C, const int *label, const float *level) {
  memset(seq, 0, sizeof(float) * (size_t)L * C);
  for (int i = 0; i < L; i++) seq[i * C + label[i]] = level[i];
}

static int run(epee_policy_kind k, float tau, int p, const float *seq, int L, int C, int *label) {
  epee_policy pol = {k, tau, p};
  return epee_policy_run(&pol, seq, L, C, label);
}

static void test_entropy_normalised(void) {
  float z[MAXC] = {0};
  CU_ASSERT_DOUBLE_EQUAL(epee_normalized_entropy(z, 2), 1.0, 1e-6);  /* uniform -> ln C / ln C */
  CU_ASSERT_DOUBLE_EQUAL(epee_normalized_entropy(z, 22), 1.0, 1e-6);
  for (int k = 0; k < 22; k++) z[k] = 1000;
  CU_ASSERT_DOUBLE_EQUAL(epee_normalized_entropy(z, 22), 1.0, 1e-6); /* no overflow for huge logits */

  float b[2] = {0, logf(3)}; /* p = (1/4, 3/4): binary entropy 0.811278 bits */
  CU_ASSERT_DOUBLE_EQUAL(epee_normalized_entropy(b, 2), 0.8112781245, 1e-6);
  float bs[2] = {500, 500 + logf(3)}; /* shift invariance */
  CU_ASSERT_DOUBLE_EQUAL(epee_normalized_entropy(bs, 2), 0.8112781245, 1e-4);

  /* C = 22, z = (ln 21, 0 x 21): p_0 = 1/2, others 1/42: H = (ln 2 + ln 42) / 2 = ln 84 / 2 */
  float m[22] = {logf(21)};
  CU_ASSERT_DOUBLE_EQUAL(epee_normalized_entropy(m, 22), log(84) / (2 * log(22)), 1e-6);

  float oh[3] = {100, 0, 0};
  float h = epee_normalized_entropy(oh, 3);
  CU_ASSERT(h >= 0 && h < 1e-6);
  float big[2] = {1000, -1000};
  h = epee_normalized_entropy(big, 2);
  CU_ASSERT(h == 0);

  float ninf[3] = {0, -INFINITY, 0}; /* two equal classes left: ln 2 / ln 3 */
  CU_ASSERT_DOUBLE_EQUAL(epee_normalized_entropy(ninf, 3), log(2) / log(3), 1e-6);
}

static void test_argmax_softmax(void) {
  float z[4] = {1, 3, 3, 2};
  CU_ASSERT_EQUAL(epee_argmax(z, 4), 1); /* tie -> lowest index */
  float t[3] = {5, 5, 5};
  CU_ASSERT_EQUAL(epee_argmax(t, 3), 0);

  float b[2] = {0, logf(3)}, p[2];
  epee_softmax(b, 2, p);
  CU_ASSERT_DOUBLE_EQUAL(p[0], 0.25, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(p[1], 0.75, 1e-6);
  float big[2] = {1000, 1000 + logf(3)};
  epee_softmax(big, 2, big); /* in place, no overflow */
  CU_ASSERT_DOUBLE_EQUAL(big[0], 0.25, 1e-4);
  CU_ASSERT_DOUBLE_EQUAL(big[1], 0.75, 1e-4);
}

/* Labels 0,0,1,1,1,0 with high entropy: the counter goes 0,1,0,1,2,0. */
static void test_patience_counting(void) {
  const int L = 6, C = 2;
  int lab[6] = {0, 0, 1, 1, 1, 0};
  float lev[6] = {WEAK, WEAK, WEAK, WEAK, WEAK, WEAK}, seq[6 * 2];
  make_seq(seq, L, C, lab, lev);

  epee_policy pol = {EPEE_POLICY_PATIENCE, 0.5f, 2};
  epee_exit_state s;
  epee_exit_state_init(&s);
  int want_counter[5] = {0, 1, 0, 1, 2}, want_exit[5] = {0, 0, 0, 0, 1};
  for (int i = 0; i < 5; i++) {
    float H = -1;
    int y = -1;
    int ex = epee_policy_step(&pol, &s, seq + i * C, C, i, L, &H, &y);
    CU_ASSERT_EQUAL(ex, want_exit[i]);
    CU_ASSERT_EQUAL(s.counter, want_counter[i]);
    CU_ASSERT_EQUAL(y, lab[i]);
    CU_ASSERT(H > 0.99f && H <= 1.0f);
  }
  int y;
  CU_ASSERT_EQUAL(run(EPEE_POLICY_PATIENCE, 0, 2, seq, L, C, &y), 4);
  CU_ASSERT_EQUAL(y, 1);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_PATIENCE, 0, 1, seq, L, C, &y), 1);
  CU_ASSERT_EQUAL(y, 0);
  /* p = 3 never reached: the last exit answers */
  CU_ASSERT_EQUAL(run(EPEE_POLICY_PATIENCE, 0, 3, seq, L, C, &y), 5);
  CU_ASSERT_EQUAL(y, 0);
}

/* PABEE semantics: p = 1 needs two agreeing exits, so the earliest exit is layer 1, even when every exit is
 * confident; entropy can leave at layer 0. C = 22. */
static void test_earliest_exits(void) {
  const int L = 4, C = 22;
  int lab[4] = {7, 7, 7, 7};
  float lev[4] = {STRONG, STRONG, STRONG, STRONG}, seq[4 * 22];
  make_seq(seq, L, C, lab, lev);
  int y;
  CU_ASSERT_EQUAL(run(EPEE_POLICY_PATIENCE, 0, 1, seq, L, C, &y), 1);
  CU_ASSERT_EQUAL(y, 7);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_PATIENCE, 0, 2, seq, L, C, &y), 2);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_ENTROPY, 0.001f, 0, seq, L, C, &y), 0);
  CU_ASSERT_EQUAL(y, 7);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_EPEE, 0.001f, 1, seq, L, C, &y), 0);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_PCEE, 0.001f, 1, seq, L, C, &y), 0);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_PCEE, 0.001f, 3, seq, L, C, &y), 2); /* streak of 3 ends at layer 2 */
  CU_ASSERT_EQUAL(run(EPEE_POLICY_NONE, 0.001f, 1, seq, L, C, &y), 3);
  /* p >= L never fires */
  CU_ASSERT_EQUAL(run(EPEE_POLICY_PATIENCE, 0, 4, seq, L, C, &y), 3);
}

static void test_entropy_policy(void) {
  const int L = 5, C = 2;
  int lab[5] = {1, 0, 1, 0, 1};
  float lev[5] = {WEAK, WEAK, WEAK, STRONG, WEAK}, seq[5 * 2];
  make_seq(seq, L, C, lab, lev);
  int y;
  CU_ASSERT_EQUAL(run(EPEE_POLICY_ENTROPY, 0.01f, 0, seq, L, C, &y), 3);
  CU_ASSERT_EQUAL(y, 0);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_ENTROPY, 1e-9f, 0, seq, L, C, &y), 4); /* nothing fires: last exit */
  CU_ASSERT_EQUAL(y, 1);

  /* strict test: uniform logits have H = 1 exactly, so tau = 1 does not fire and tau = 1.001 does */
  float uni[3 * 2] = {0};
  CU_ASSERT_EQUAL(run(EPEE_POLICY_ENTROPY, 1.0f, 0, uni, 3, C, &y), 2);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_ENTROPY, 1.001f, 0, uni, 3, C, &y), 0);
}

/* EPEE = entropy OR patience: whichever fires first. */
static void test_epee_or(void) {
  const int L = 6, C = 2;
  int y;
  float seq[6 * 2];
  /* patience (p = 1) fires at layer 1, entropy only at layer 3 -> 1 */
  int lab1[6] = {0, 0, 1, 1, 0, 1};
  float lev1[6] = {WEAK, WEAK, WEAK, STRONG, WEAK, WEAK};
  make_seq(seq, L, C, lab1, lev1);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_EPEE, 0.01f, 1, seq, L, C, &y), 1);
  CU_ASSERT_EQUAL(y, 0);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_ENTROPY, 0.01f, 1, seq, L, C, &y), 3);
  /* p = 3 needs 0,0,0,0: never; entropy at layer 3 -> 3 */
  CU_ASSERT_EQUAL(run(EPEE_POLICY_EPEE, 0.01f, 3, seq, L, C, &y), 3);
  CU_ASSERT_EQUAL(y, 1);
  /* labels 0,1,1,1,1,0 with high entropy: counter 0,0,1,2,3,0 */
  int lab2[6] = {0, 1, 1, 1, 1, 0};
  float lev2[6] = {WEAK, WEAK, WEAK, WEAK, WEAK, WEAK};
  make_seq(seq, L, C, lab2, lev2);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_EPEE, 0.01f, 2, seq, L, C, &y), 3);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_EPEE, 0.01f, 3, seq, L, C, &y), 4);
  CU_ASSERT_EQUAL(y, 1);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_EPEE, 0.01f, 4, seq, L, C, &y), 5); /* neither: last exit */
  CU_ASSERT_EQUAL(y, 0);
}

/* PCEE: streak of low-entropy exits, reset by a high-entropy one; labels play no part. */
static void test_pcee_streaks(void) {
  const int L = 6, C = 2;
  int y;
  float seq[6 * 2];
  int lab[6] = {0, 1, 0, 1, 0, 1}; /* alternating: the patience counter would stay 0 */
  float lev[6] = {STRONG, WEAK, STRONG, STRONG, WEAK, STRONG};
  make_seq(seq, L, C, lab, lev);
  epee_policy pol = {EPEE_POLICY_PCEE, 0.01f, 2};
  epee_exit_state s;
  epee_exit_state_init(&s);
  int want_k[4] = {1, 0, 1, 2};
  for (int i = 0; i < 4; i++) {
    int ex = epee_policy_step(&pol, &s, seq + i * C, C, i, L, NULL, NULL);
    CU_ASSERT_EQUAL(s.counter, want_k[i]);
    CU_ASSERT_EQUAL(ex, i == 3);
  }
  CU_ASSERT_EQUAL(run(EPEE_POLICY_PCEE, 0.01f, 2, seq, L, C, &y), 3);
  CU_ASSERT_EQUAL(y, 1);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_PCEE, 0.01f, 1, seq, L, C, &y), 0);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_PCEE, 0.01f, 3, seq, L, C, &y), 5); /* streaks never reach 3 */
  CU_ASSERT_EQUAL(run(EPEE_POLICY_PATIENCE, 0.01f, 1, seq, L, C, &y), 5);

  /* same labels but entropy high except a streak at the end: the reset keeps it from firing early */
  int lab2[6] = {1, 1, 1, 1, 1, 1};
  float lev2[6] = {STRONG, WEAK, WEAK, STRONG, STRONG, WEAK};
  make_seq(seq, L, C, lab2, lev2);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_PCEE, 0.01f, 2, seq, L, C, &y), 4);
}

/* none answers with the last exit; every policy exits at L-1 at the latest; L = 1 exits at once. */
static void test_last_exit_fallback(void) {
  const int L = 3, C = 2;
  int lab[3] = {0, 0, 1};
  float lev[3] = {STRONG, STRONG, WEAK}, seq[3 * 2];
  make_seq(seq, L, C, lab, lev);
  epee_policy none = {EPEE_POLICY_NONE, 0.5f, 1};
  epee_exit_state s;
  epee_exit_state_init(&s);
  CU_ASSERT_EQUAL(epee_policy_step(&none, &s, seq, C, 0, L, NULL, NULL), 0);
  CU_ASSERT_EQUAL(epee_policy_step(&none, &s, seq + C, C, 1, L, NULL, NULL), 0);
  int y = -1;
  CU_ASSERT_EQUAL(epee_policy_step(&none, &s, seq + 2 * C, C, 2, L, NULL, &y), 1);
  CU_ASSERT_EQUAL(y, 1);
  for (int k = 0; k < EPEE_POLICY_KINDS; k++) CU_ASSERT_EQUAL(run((epee_policy_kind)k, 0, 100, seq, L, C, &y), 2);
  CU_ASSERT_EQUAL(run(EPEE_POLICY_PATIENCE, 0, 1, seq, 1, C, &y), 0);
  CU_ASSERT_EQUAL(y, 0);
}

static void test_names_and_validation(void) {
  const char *names[5] = {"none", "entropy", "patience", "epee", "pcee"};
  for (int k = 0; k < 5; k++) {
    epee_policy_kind got = EPEE_POLICY_NONE;
    CU_ASSERT_STRING_EQUAL(epee_policy_name((epee_policy_kind)k), names[k]);
    CU_ASSERT_EQUAL(epee_policy_parse(names[k], &got), 0);
    CU_ASSERT_EQUAL(got, k);
  }
  epee_policy_kind got = EPEE_POLICY_PCEE;
  CU_ASSERT_EQUAL(epee_policy_parse("EPEE", &got), -1);
  CU_ASSERT_EQUAL(epee_policy_parse("", &got), -1);
  CU_ASSERT_EQUAL(got, EPEE_POLICY_PCEE);

  epee_err e = {{0}};
  epee_policy ok = {EPEE_POLICY_EPEE, 0.05f, 3}, pat0 = {EPEE_POLICY_PATIENCE, 0, 0},
              ent_nan = {EPEE_POLICY_ENTROPY, NAN, 0}, ent_neg = {EPEE_POLICY_PCEE, -0.1f, 2},
              none = {EPEE_POLICY_NONE, NAN, -5}, bad = {(epee_policy_kind)9, 0, 1};
  CU_ASSERT_EQUAL(epee_policy_validate(&ok, "m.h5", &e), 0);
  CU_ASSERT_EQUAL(epee_policy_validate(&none, "m.h5", &e), 0); /* unused fields are not checked */
  CU_ASSERT_EQUAL(epee_policy_validate(&pat0, "m.h5", &e), -1);
  CU_ASSERT_STRING_EQUAL(e.msg, "m.h5: policy patience: patience 0, expected an integer >= 1");
  CU_ASSERT_EQUAL(epee_policy_validate(&ent_nan, "m.h5", &e), -1);
  CU_ASSERT_EQUAL(epee_policy_validate(&ent_neg, "m.h5", &e), -1);
  CU_ASSERT_EQUAL(epee_policy_validate(&bad, "m.h5", &e), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "unknown policy kind 9"));
}

/* gold 0 0 1 1 2 2, pred 0 1 1 1 0 2: class 0 TP1 FP1 FN1 -> 1/2; class 1 TP2 FP1 FN0 -> 4/5; class 2 TP1 FP0
 * FN1 -> 2/3; class 3 absent from both -> not counted. Macro = (1/2 + 4/5 + 2/3) / 3 = 59/90. */
static void test_metrics(void) {
  int gold[6] = {0, 0, 1, 1, 2, 2}, pred[6] = {0, 1, 1, 1, 0, 2};
  CU_ASSERT_DOUBLE_EQUAL(metric_accuracy(gold, pred, 6), 4.0 / 6, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(metric_macro_f1(gold, pred, 6, 4), 59.0 / 90, 1e-12);
  /* class 3 predicted once but never gold: counted with F1 0. gold 0 0 1, pred 0 3 1: class 0 TP1 FN1 -> 2/3,
   * class 1 -> 1, class 3 FP1 -> 0: macro = 5/9 */
  int g2[3] = {0, 0, 1}, p2[3] = {0, 3, 1};
  CU_ASSERT_DOUBLE_EQUAL(metric_macro_f1(g2, p2, 3, 4), 5.0 / 9, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(metric_accuracy(g2, p2, 0), 0.0, 0);
  CU_ASSERT_DOUBLE_EQUAL(metric_macro_f1(g2, p2, 0, 4), 0.0, 0);

  int conf[9];
  metric_confusion(gold, pred, 6, 3, conf);
  int want[9] = {1, 1, 0, 0, 2, 0, 1, 0, 1};
  CU_ASSERT_EQUAL(memcmp(conf, want, sizeof want), 0);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("policy", NULL, NULL);
  CU_add_test(s, "entropy normalised by ln C, stable", test_entropy_normalised);
  CU_add_test(s, "argmax ties and softmax", test_argmax_softmax);
  CU_add_test(s, "patience counter and reset", test_patience_counting);
  CU_add_test(s, "earliest exits (C = 22)", test_earliest_exits);
  CU_add_test(s, "entropy policy, strict threshold", test_entropy_policy);
  CU_add_test(s, "epee is entropy OR patience", test_epee_or);
  CU_add_test(s, "pcee streaks and reset", test_pcee_streaks);
  CU_add_test(s, "last exit fallback", test_last_exit_fallback);
  CU_add_test(s, "names, parsing, validation", test_names_and_validation);
  CU_add_test(s, "accuracy, macro-F1, confusion", test_metrics);
}
