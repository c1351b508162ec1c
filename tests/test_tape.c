/* Tape semantics: accumulation across backward passes, a tensor used twice, no-grad mode. */
#include <CUnit/CUnit.h>

#include "core/ops.h"
#include "core/params.h"

/* y = 3 (a + b) + 2 a  (a used twice) -> dy/da = 5, dy/db = 3 per element */
static tensor *build(epee_ctx *c, tensor *a, tensor *b) {
  tensor *s = op_add(c, a, b);
  return op_weighted_sum(c, 2, (tensor *[]){s, a}, (float[]){3.0f, 2.0f});
}

static void test_used_twice_and_double_backward(void) {
  param_store ps;
  params_init(&ps);
  tensor *a = params_declare(&ps, "a", 1, (int[]){3}, 0);
  tensor *b = params_declare(&ps, "b", 1, (int[]){3}, 0);
  params_allocate(&ps, PARAMS_TRAIN);
  for (int i = 0; i < 3; i++) a->data[i] = (float)i, b->data[i] = 1.0f;
  epee_ctx c;
  ctx_init(&c, 1 << 16, 1);
  tensor *y = build(&c, a, b);
  CU_ASSERT_EQUAL(c.tape.n, 2);
  tape_backward(&c, y, NULL);
  for (int i = 0; i < 3; i++) {
    CU_ASSERT_DOUBLE_EQUAL(a->grad[i], 5.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(b->grad[i], 3.0, 1e-6);
  }
  tape_backward(&c, y, NULL); /* without zeroing: parameter grads double, intermediates do not */
  for (int i = 0; i < 3; i++) {
    CU_ASSERT_DOUBLE_EQUAL(a->grad[i], 10.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(b->grad[i], 6.0, 1e-6);
  }
  ctx_free(&c);
  params_free(&ps);
}

static void test_no_grad_records_nothing(void) {
  param_store ps;
  params_init(&ps);
  tensor *a = params_declare(&ps, "a", 1, (int[]){3}, 0);
  tensor *b = params_declare(&ps, "b", 1, (int[]){3}, 0);
  params_allocate(&ps, PARAMS_TRAIN);
  epee_ctx c;
  ctx_init(&c, 1 << 16, 1);
  c.grad_mode = 0;
  tensor *y = build(&c, a, b);
  CU_ASSERT_EQUAL(c.tape.n, 0);
  CU_ASSERT_FALSE(y->requires_grad);
  CU_ASSERT_PTR_NULL(y->grad);
  ctx_free(&c);
  params_free(&ps);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("tape", NULL, NULL);
  CU_add_test(s, "tensor used twice; two backwards double the grads", test_used_twice_and_double_backward);
  CU_add_test(s, "no-grad mode records nothing", test_no_grad_records_nothing);
}
