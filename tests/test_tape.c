/* Tape semantics: accumulation across backward passes, a tensor used twice, no-grad mode; the profiler's hooks. */
#include <CUnit/CUnit.h>

#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/ops.h"
#include "core/params.h"
#include "core/profile.h"
#include "core/progress.h"

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

/* The profile of x[8, 16] -> linear 32 -> gelu -> linear 4 -> cross-entropy, 3 steps: every op in its row with
 * its calls and exact GEMM FLOPs, the rows and the unattributed rest adding up to the steps' time, the JSON. */
static void test_profile(void) {
  param_store ps;
  params_init(&ps);
  tensor *w1 = params_declare(&ps, "w1", 2, (int[]){32, 16}, 0), *b1 = params_declare(&ps, "b1", 1, (int[]){32}, 0);
  tensor *w2 = params_declare(&ps, "w2", 2, (int[]){4, 32}, 0), *b2 = params_declare(&ps, "b2", 1, (int[]){4}, 0);
  params_allocate(&ps, PARAMS_TRAIN);
  for (int64_t i = 0; i < ps.total; i++) ps.data[i] = 0.01f * (float)(i % 7);
  float xs[8 * 16];
  int32_t labels[8];
  for (int i = 0; i < 8 * 16; i++) xs[i] = 0.1f * (float)(i % 5);
  for (int i = 0; i < 8; i++) labels[i] = i % 4;
  epee_ctx c;
  ctx_init(&c, 1 << 20, 1);
  profile p;
  prof_init(&p);
  c.prof = &p;
  for (int step = 0; step < 3; step++) {
    double t0 = now_seconds();
    ctx_reset(&c);
    tensor *x = tensor_wrap(&c, xs, 2, (int[]){8, 16});
    tensor *h = op_gelu(&c, op_linear(&c, x, w1, b1));
    tape_backward(&c, op_cross_entropy(&c, op_linear(&c, h, w2, b2), labels, NULL), NULL);
    prof_add(&p, "optimizer", PROF_OTHER, 0.001, 4.0 * (double)ps.total);
    prof_step(&p, now_seconds() - t0 + 0.001);
  }
  const prof_row *lin = NULL, *lin_b = NULL, *gelu = NULL;
  double sum = 0;
  for (int i = 0; i < p.n; i++) {
    const prof_row *r = &p.rows[i];
    sum += r->seconds;
    CU_ASSERT(r->seconds >= 0);
    if (!strcmp(r->name, "linear")) *(r->phase == PROF_FORWARD ? &lin : &lin_b) = r;
    if (!strcmp(r->name, "gelu") && r->phase == PROF_FORWARD) gelu = r;
  }
  CU_ASSERT_PTR_NOT_NULL_FATAL(lin);
  CU_ASSERT_PTR_NOT_NULL_FATAL(lin_b);
  CU_ASSERT_PTR_NOT_NULL_FATAL(gelu);
  CU_ASSERT_EQUAL(lin->calls, 6);
  CU_ASSERT_EQUAL(lin_b->calls, 6);
  CU_ASSERT_EQUAL(gelu->calls, 3);
  CU_ASSERT_TRUE(lin->gemm);
  CU_ASSERT_FALSE(gelu->gemm);
  CU_ASSERT_DOUBLE_EQUAL(lin->work, 3 * 2.0 * (8 * 32 * 16 + 8 * 4 * 32), 0.5);
  CU_ASSERT_DOUBLE_EQUAL(lin_b->work, 2 * lin->work, 0.5);
  CU_ASSERT_DOUBLE_EQUAL(gelu->work, 3 * 4.0 * (8 * 32 + 8 * 32), 0.5);
  CU_ASSERT(sum <= p.step_seconds + 1e-9); /* every row is inside a step: the rest is unattributed, not negative */
  CU_ASSERT_EQUAL(p.steps, 3);
  char *text = prof_json(&p);
  json_error_t err;
  json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(j);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "steps")), 3);
  json_t *rows = json_object_get(j, "rows");
  CU_ASSERT_EQUAL(json_array_size(rows), (size_t)p.n + 1);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(rows, (size_t)p.n), "op")), "(unattributed)");
  json_decref(j);
  free(text);
  char *table;
  size_t len;
  FILE *f = open_memstream(&table, &len);
  prof_print(&p, f);
  fclose(f);
  CU_ASSERT_PTR_NOT_NULL(strstr(table, "profile: 3 steps"));
  CU_ASSERT_PTR_NOT_NULL(strstr(table, "GFLOP/s"));
  free(table);
  ctx_free(&c);
  params_free(&ps);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("tape", NULL, NULL);
  CU_add_test(s, "tensor used twice; two backwards double the grads", test_used_twice_and_double_backward);
  CU_add_test(s, "no-grad mode records nothing", test_no_grad_records_nothing);
  CU_add_test(s, "profile: rows, calls, FLOPs, JSON", test_profile);
}
