/* The engine against the training forward and against the policy simulation; batch == singles;
 * padding-independence; the public API on texts. A tiny random BERT whose exit heads are scaled up so
 * that some rows are confident early and real early exits happen. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "infer/engine.h"
#include "models/bert.h"

enum { B = 9, T = 8, V = 40 };
static model m;
static int32_t ids[B * T], types[B * T];
static float mask[B * T];

static int setup(void) {
  bert_config cfg = {.vocab = V, .hidden = 16, .layers = 4, .heads = 2, .intermediate = 32, .max_position = 16,
                     .type_vocab = 2, .num_labels = 3, .layer_norm_eps = 1e-12f, .init_std = 0.3f};
  epee_err e;
  if (bert_create(&m, &cfg, &e)) return 1;
  bert_init_weights(&m, 5);
  for (int i = 0; i < m.ps.n; i++)
    if (!strncmp(m.ps.t[i]->name, "classifiers.", 12))
      for (int64_t k = 0; k < m.ps.t[i]->n; k++) m.ps.t[i]->data[k] *= 20.0f;
  for (int b = 0; b < B; b++) {
    int len = 2 + b % (T - 1); /* lengths 2..8: padding at the end */
    for (int t = 0; t < T; t++) {
      ids[b * T + t] = t < len ? (int32_t)(rng_hash(9, 0, (uint64_t)(b * T + t)) % V) : 0;
      types[b * T + t] = t >= len / 2 && t < len;
      mask[b * T + t] = t < len;
    }
  }
  return 0;
}
static int teardown(void) {
  model_free(&m);
  return 0;
}

static void test_all_exits_equal_training_forward(void) {
  engine g;
  epee_err e;
  CU_ASSERT_FATAL(engine_init(&g, &m, B, T, &e) == 0);
  int L = m.n_layers, C = m.n_labels;
  float *eng = malloc(sizeof(float) * B * L * C);
  model_batch mb = {.B = B, .T = T, .ids = ids, .type_ids = types, .mask = mask};
  engine_all_exits(&g, &mb, eng);
  epee_ctx c;
  ctx_init(&c, 0, 1);
  c.grad_mode = 0;
  tensor *logits[4];
  model_forward_all(&c, &m, &mb, logits);
  double worst = 0;
  for (int b = 0; b < B; b++)
    for (int l = 0; l < L; l++)
      for (int k = 0; k < C; k++)
        worst = fmax(worst, fabs(eng[(b * L + l) * C + k] - logits[l]->data[b * C + k]));
  printf("  max |engine - training forward| = %.2e\n", worst);
  CU_ASSERT(worst <= 1e-5);
  ctx_free(&c);
  free(eng);
  engine_free(&g);
}

static void test_engine_equals_simulation_and_singles(void) {
  engine g;
  epee_err e;
  CU_ASSERT_FATAL(engine_init(&g, &m, B, T, &e) == 0);
  int L = m.n_layers, C = m.n_labels;
  float *all = malloc(sizeof(float) * B * L * C), probs[B * 3], p1[3];
  model_batch mb = {.B = B, .T = T, .ids = ids, .type_ids = types, .mask = mask};
  engine_all_exits(&g, &mb, all);
  epee_policy pols[] = {{EPEE_POLICY_NONE, 0, 0},      {EPEE_POLICY_ENTROPY, 0.3f, 0}, {EPEE_POLICY_PATIENCE, 0, 1},
                        {EPEE_POLICY_EPEE, 0.2f, 2},   {EPEE_POLICY_PCEE, 0.4f, 2},    {EPEE_POLICY_ENTROPY, 0.05f, 0}};
  int early = 0;
  for (size_t pi = 0; pi < sizeof pols / sizeof pols[0]; pi++) {
    int lab[B], lay[B];
    engine_classify(&g, &mb, &pols[pi], lab, lay, probs);
    for (int b = 0; b < B; b++) {
      int slab, sl = epee_policy_run(&pols[pi], all + (size_t)b * L * C, L, C, &slab);
      CU_ASSERT_EQUAL(lay[b], sl + 1);
      CU_ASSERT_EQUAL(lab[b], slab);
      early += lay[b] < L;
      /* the same row alone, at its own length */
      int len = 0;
      for (int t = 0; t < T; t++) len += mask[b * T + t] != 0;
      model_batch one = {.B = 1, .T = len, .ids = ids + b * T, .type_ids = types + b * T, .mask = mask + b * T};
      int l1, y1;
      engine_classify(&g, &one, &pols[pi], &y1, &l1, p1);
      CU_ASSERT_EQUAL(l1, lay[b]);
      CU_ASSERT_EQUAL(y1, lab[b]);
      for (int k = 0; k < C; k++) CU_ASSERT(fabsf(p1[k] - probs[b * C + k]) <= 1e-5f);
    }
  }
  printf("  %d early exits over the policies (must be > 0)\n", early);
  CU_ASSERT(early > 0);
  free(all);
  engine_free(&g);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("engine", setup, teardown);
  CU_add_test(s, "all exits equal the training forward", test_all_exits_equal_training_forward);
  CU_add_test(s, "engine = simulation for every policy; batch = singles; padding-free", test_engine_equals_simulation_and_singles);
}
