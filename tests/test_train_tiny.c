/* A one-block transformer classifier (BERT, 1 layer) trained by the tape on a synthetic task that needs
 * attention: label = whether token 4 outnumbers token 3 in a padded sequence. The loss must fall below a
 * threshold, and two runs with the same seed must give bit-identical losses. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/adamw.h"
#include "core/ops.h"
#include "core/rng.h"
#include "models/model.h"

enum { B = 32, T = 10, STEPS = 250 };

static void make_batch(uint64_t seed, int step, int32_t *ids, float *mask, int32_t *labels) {
  for (int b = 0; b < B; b++) {
    uint64_t row = (uint64_t)step * B + (uint64_t)b;
    int len = 5 + 2 * (int)(rng_hash(seed, 1, row) % 3); /* odd number of real tokens: no ties */
    int n4 = 0;
    ids[b * T] = 2; /* [CLS] */
    mask[b * T] = 1;
    for (int t = 1; t < T; t++) {
      int real = t <= len;
      int tok = real ? 3 + (int)(rng_hash(seed, 2, row * T + (uint64_t)t) & 1) : 0;
      ids[b * T + t] = tok;
      mask[b * T + t] = (float)real;
      n4 += tok == 4;
    }
    labels[b] = 2 * n4 > len;
  }
}

/* returns the mean loss of the last 20 steps; losses[STEPS] recorded */
static double train(uint64_t seed, float *losses) {
  model_config cfg = {.vocab = 8, .hidden = 32, .layers = 1, .heads = 2, .intermediate = 64, .max_position = T,
                      .type_vocab = 2, .num_labels = 2, .hidden_dropout = 0.1f, .attention_dropout = 0.0f,
                      .exit_dropout = 0.1f, .layer_norm_eps = 1e-12f, .init_std = 0.1f};
  const model_arch *a = model_find_arch("bert");
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  model m;
  epee_err e;
  CU_ASSERT_FATAL(model_create(&m, a, &cfg, PARAMS_TRAIN, 0, &e) == 0);
  a->init(&m, seed);
  epee_ctx c;
  ctx_init(&c, 0, seed);
  c.training = 1;
  adamw opt = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
  adamw_group g[PG_COUNT] = {{3e-3f, 0.01f}, {3e-3f, 0.0f}, {3e-3f, 0.01f}, {3e-3f, 0.0f}};
  int32_t ids[B * T], labels[B];
  float mask[B * T];
  double tail = 0.0;
  for (int s = 0; s < STEPS; s++) {
    ctx_reset(&c);
    c.step = (uint64_t)s;
    make_batch(seed, s, ids, mask, labels);
    model_batch mb = {.B = B, .T = T, .ids = ids, .mask = mask};
    tensor *logits;
    model_forward_all(&c, &m, &mb, &logits);
    tensor *loss = op_cross_entropy(&c, logits, labels, NULL);
    tape_backward(&c, loss, NULL); /* adamw_step left the grads zero */
    adamw_step(&opt, &m.ps, g, params_clip_factor(params_grad_norm(&m.ps), 1.0));
    losses[s] = loss->data[0];
    if (s >= STEPS - 20) tail += loss->data[0] / 20.0;
  }
  ctx_free(&c);
  model_free(&m);
  return tail;
}

static void test_learns_and_is_reproducible(void) {
  static float l1[STEPS], l2[STEPS];
  double tail = train(42, l1);
  printf("  first loss %.4f, mean of last 20 losses %.4f (threshold 0.15)\n", l1[0], tail);
  CU_ASSERT(l1[0] > 0.5);
  CU_ASSERT(tail < 0.15);
  train(42, l2);
  CU_ASSERT(memcmp(l1, l2, sizeof l1) == 0);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("train_tiny", NULL, NULL);
  CU_add_test(s, "one-block transformer learns a counting task; same seed, same losses", test_learns_and_is_reproducible);
}
