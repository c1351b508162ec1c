/* AdamW against the formula worked by hand; parameter groups; grad-norm clipping. */
#include <CUnit/CUnit.h>
#include <math.h>

#include "core/adamw.h"

static void test_one_step_by_hand(void) {
  param_store ps;
  params_init(&ps);
  tensor *w = params_declare(&ps, "w", 2, (int[]){1, 2}, 0);   /* 2-D: decayed, backbone lr */
  tensor *b = params_declare(&ps, "b", 1, (int[]){1}, 0);      /* 1-D: no decay */
  tensor *e = params_declare(&ps, "exit.w", 2, (int[]){1, 1}, 1); /* exit group: own lr */
  params_allocate(&ps, PARAMS_TRAIN);
  w->data[0] = 1.0f, w->data[1] = -2.0f, b->data[0] = 1.0f, e->data[0] = 1.0f;
  w->grad[0] = 0.5f, w->grad[1] = 0.0f, b->grad[0] = 0.5f, e->grad[0] = -0.25f;
  adamw opt = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
  /* the trainer gives the no-decay groups weight decay 0 */
  adamw_group g[PG_COUNT] = {{0.1f, 0.01f}, {0.1f, 0.0f}, {0.2f, 0.01f}, {0.2f, 0.0f}};
  adamw_step(&opt, &ps, g, 1.0f);
  /* the gradients are consumed: zero for the next backward */
  CU_ASSERT(w->grad[0] == 0.0f && w->grad[1] == 0.0f && b->grad[0] == 0.0f && e->grad[0] == 0.0f);
  /* step 1: m = 0.1 g, v = 0.001 g^2; mhat = g, vhat = g^2; update = lr g / (|g| + eps) = lr sign(g).
   * w0: 1 * (1 - 0.1 * 0.01) - 0.1 = 0.899.  w1: g = 0: -2 * 0.999 - 0 = -1.998.
   * b: no decay: 1 - 0.1 = 0.9.  exit: lr 0.2, decayed: 1 * (1 - 0.002) + 0.2 = 1.198. */
  CU_ASSERT_DOUBLE_EQUAL(w->data[0], 0.899, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(w->data[1], -1.998, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(b->data[0], 0.9, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(e->data[0], 1.198, 1e-6);
  /* step 2 with g = 1 on w0, worked in double from the formula */
  w->grad[0] = 1.0f;
  adamw_step(&opt, &ps, g, 1.0f);
  double m = 0.9 * 0.05 + 0.1 * 1.0, v = 0.999 * 0.00025 + 0.001 * 1.0;
  double mh = m / (1 - 0.81), vh = v / (1 - 0.999 * 0.999);
  double want = 0.899 * (1 - 0.001) - 0.1 * mh / (sqrt(vh) + 1e-8);
  CU_ASSERT_DOUBLE_EQUAL(w->data[0], want, 1e-6);
  CU_ASSERT_EQUAL(opt.t, 2);
  params_free(&ps);
}

/* The clipping factor of torch's clip_grad_norm_, and adamw_step applying it: the same update as grads scaled
 * beforehand (bit for bit: one float multiplication either way). */
static void test_clip(void) {
  param_store ps;
  params_init(&ps);
  tensor *a = params_declare(&ps, "a", 1, (int[]){1}, 0);
  tensor *b = params_declare(&ps, "b", 1, (int[]){1}, 1);
  params_allocate(&ps, PARAMS_TRAIN);
  a->grad[0] = 3.0f, b->grad[0] = 4.0f;
  double norm = params_grad_norm(&ps);
  CU_ASSERT_DOUBLE_EQUAL(norm, 5.0, 1e-12);
  float k = params_clip_factor(norm, 1.0);
  CU_ASSERT_EQUAL(k, (float)(1.0 / (5.0 + 1e-6)));
  CU_ASSERT_EQUAL(params_clip_factor(norm, 10.0), 1.0f); /* under the limit */
  CU_ASSERT_EQUAL(params_clip_factor(norm, 0.0), 1.0f);  /* clipping off */
  CU_ASSERT_EQUAL(params_clip_factor(NAN, 1.0), 1.0f);
  adamw_group g[PG_COUNT] = {{0.1f, 0.01f}, {0.1f, 0.0f}, {0.2f, 0.01f}, {0.2f, 0.0f}};
  adamw o1 = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f}, o2 = o1;
  adamw_step(&o1, &ps, g, k);
  float fused[2] = {a->data[0], b->data[0]};
  for (int64_t i = 0; i < ps.total; i++) ps.m[i] = ps.v[i] = ps.data[i] = 0.0f; /* same start, grads pre-scaled */
  a->grad[0] = 3.0f * k, b->grad[0] = 4.0f * k;
  adamw_step(&o2, &ps, g, 1.0f);
  CU_ASSERT_EQUAL(a->data[0], fused[0]);
  CU_ASSERT_EQUAL(b->data[0], fused[1]);
  b->grad[0] = NAN; /* a non-finite gradient: a non-finite norm */
  CU_ASSERT_FALSE(isfinite(params_grad_norm(&ps)));
  b->grad[0] = INFINITY;
  CU_ASSERT_FALSE(isfinite(params_grad_norm(&ps)));
  b->grad[0] = 3e38f; /* finite but its square overflows float: the norm is still finite */
  CU_ASSERT_DOUBLE_EQUAL(params_grad_norm(&ps), 3e38, 1e31);
  params_zero_grad(&ps);
  CU_ASSERT_EQUAL(b->grad[0], 0.0f);
  params_free(&ps);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("adamw", NULL, NULL);
  CU_add_test(s, "one step by hand, groups", test_one_step_by_hand);
  CU_add_test(s, "clip, zero, non-finite", test_clip);
}
