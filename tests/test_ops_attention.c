/* Masked softmax and fused attention: cases worked by hand (masking, fully masked rows), forward vs a
 * double reference and gradients vs finite differences (padding, causal, both, T = H = hd = 1, odd
 * sizes, dropout with the mask recomputed in the reference), dropout determinism, thread-count
 * independence, the inference path saving nothing, and accumulation across backward passes. */
#include <CUnit/CUnit.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dnnl_wrap.h"
#include "core/ops.h"
#include "core/rng.h"
#include "tests/gradcheck.h"

#define TOL 1e-3

/* ---------------- by hand ---------------- */

/* softmax([0, ln 2, ln 3]) = [1, 2, 3] / 6; with the third key padded [1, 2] / 3; causal, query 0 of 3
 * sees key 0 only -> [1, 0, 0]; a fully padded row is uniform (HF's finfo.min convention) */
static void test_softmax_by_hand(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 16, 1);
  float s[3] = {0.0f, logf(2.0f), logf(3.0f)};
  tensor *x = tensor_wrap(&c, s, 4, (int[]){1, 1, 1, 3});
  const float pad_last[3] = {1, 1, 0}, all_pad[3] = {0, 0, 0};
  tensor *y = op_softmax(&c, x, NULL, 0);
  CU_ASSERT_DOUBLE_EQUAL(y->data[0], 1.0 / 6, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(y->data[1], 2.0 / 6, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(y->data[2], 3.0 / 6, 1e-6);
  y = op_softmax(&c, x, pad_last, 0);
  CU_ASSERT_DOUBLE_EQUAL(y->data[0], 1.0 / 3, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(y->data[1], 2.0 / 3, 1e-6);
  CU_ASSERT_EQUAL(y->data[2], 0.0f);
  y = op_softmax(&c, x, all_pad, 0);
  for (int j = 0; j < 3; j++) CU_ASSERT_DOUBLE_EQUAL(y->data[j], 1.0 / 3, 1e-6);
  /* causal with Tq = 1 < Tk = 3: the single query is the last one, it sees every key */
  y = op_softmax(&c, x, NULL, 1);
  CU_ASSERT_DOUBLE_EQUAL(y->data[2], 3.0 / 6, 1e-6);
  float sq[9] = {5, 1, 2, 0, 0, 7, 1, 1, 1};
  tensor *x3 = tensor_wrap(&c, sq, 4, (int[]){1, 1, 3, 3});
  y = op_softmax(&c, x3, NULL, 1);
  CU_ASSERT_DOUBLE_EQUAL(y->data[0], 1.0, 1e-6); /* row 0: only key 0 */
  CU_ASSERT_EQUAL(y->data[1], 0.0f);
  CU_ASSERT_EQUAL(y->data[2], 0.0f);
  CU_ASSERT_DOUBLE_EQUAL(y->data[3], 0.5, 1e-6); /* row 1: keys 0, 1 with equal scores */
  CU_ASSERT_DOUBLE_EQUAL(y->data[4], 0.5, 1e-6);
  CU_ASSERT_EQUAL(y->data[5], 0.0f); /* the 7 is in the future */
  for (int j = 6; j < 9; j++) CU_ASSERT_DOUBLE_EQUAL(y->data[j], 1.0 / 3, 1e-6);
  ctx_free(&c);
}

/* q = k = 0 gives equal scores, so each output is the mean of the visible values:
 * v = [1, 3, 8] (T = 3, one head of size 1); no mask -> 4 everywhere; key 2 padded -> 2;
 * causal -> [1, 2, 4]; padded + causal -> [1, 2, 2] */
static void test_attention_by_hand(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 16, 1);
  float zeros[3] = {0, 0, 0}, vals[3] = {1, 3, 8};
  const float pad_last[3] = {1, 1, 0};
  tensor *q = tensor_wrap(&c, zeros, 3, (int[]){1, 3, 1}), *v = tensor_wrap(&c, vals, 3, (int[]){1, 3, 1});
  const float want[4][3] = {{4, 4, 4}, {2, 2, 2}, {1, 2, 4}, {1, 2, 2}};
  for (int m = 0; m < 4; m++) {
    tensor *y = op_attention(&c, q, q, v, 1, m & 1 ? pad_last : NULL, m >> 1, 0.0f);
    for (int i = 0; i < 3; i++) CU_ASSERT_DOUBLE_EQUAL(y->data[i], want[m][i], 1e-5);
  }
  ctx_free(&c);
}

/* ---------------- softmax: gradcheck ---------------- */

typedef struct {
  int B, H, Tq, Tk, causal;
  const float *mask; /* [B, Tk] */
} sm_arg;

static int visible(const float *mask, int causal, int b, int i, int j, int Tq, int Tk) {
  return (!mask || mask[(size_t)b * Tk + j] != 0.0f) && (!causal || j <= i + Tk - Tq);
}

static tensor *sm_fast(epee_ctx *c, tensor **in, const void *arg) {
  const sm_arg *a = arg;
  return op_softmax(c, in[0], a->mask, a->causal);
}

static void sm_ref(const double *const *in, double *out, const void *arg) {
  const sm_arg *a = arg;
  for (int b = 0; b < a->B; b++)
    for (int h = 0; h < a->H; h++)
      for (int i = 0; i < a->Tq; i++) {
        size_t o = (((size_t)b * a->H + h) * a->Tq + i) * a->Tk;
        double mx = -INFINITY, sum = 0.0;
        for (int j = 0; j < a->Tk; j++) {
          out[o + j] = visible(a->mask, a->causal, b, i, j, a->Tq, a->Tk) ? in[0][o + j] : -FLT_MAX;
          mx = fmax(mx, out[o + j]);
        }
        for (int j = 0; j < a->Tk; j++) sum += out[o + j] = exp(out[o + j] - mx);
        for (int j = 0; j < a->Tk; j++) out[o + j] /= sum;
      }
}

/* batch 0 real, batch 1 with two padded keys, batch 2 fully padded (a uniform row) */
static const float mask_3x5[15] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0};

static void test_softmax_gradcheck(void) {
  const sm_arg cases[] = {{3, 2, 5, 5, 0, mask_3x5}, {2, 3, 4, 4, 1, NULL},     {3, 1, 5, 5, 1, mask_3x5},
                          {2, 2, 3, 5, 1, NULL},     {3, 2, 2, 5, 1, mask_3x5}, {1, 1, 1, 1, 0, NULL},
                          {1, 1, 1, 37, 0, NULL}};
  const char *names[] = {"padding", "causal", "padding + causal", "causal, Tq 3 < Tk 5", "padding + causal, Tq < Tk",
                         "one element", "one row of 37"};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const sm_arg *a = &cases[i];
    char name[80];
    snprintf(name, sizeof name, "softmax %s", names[i]);
    gc_case k = {.name = name, .n_in = 1, .ndim = {4}, .shape = {{a->B, a->H, a->Tq, a->Tk}}, .diff = {1},
                 .fast = sm_fast, .ref = sm_ref, .arg = a};
    gc_assert(&k, 400 + i, 128, TOL);
  }
}

/* ---------------- attention: gradcheck ---------------- */

typedef struct {
  int B, T, H, hd, causal;
  const float *mask; /* [B, T] */
  float p;           /* dropout */
  uint64_t seed, step;
} att_arg;

static tensor *att_fast(epee_ctx *c, tensor **in, const void *arg) {
  const att_arg *a = arg;
  c->training = a->p > 0.0f;
  c->step = a->step;
  return op_attention(c, in[0], in[1], in[2], a->H, a->mask, a->causal, a->p);
}

/* The dropout mask is recomputed from its definition: element (b, h, i, j) of the first dropout call of
 * step s keeps iff uniform(seed, (s << 20) + 0, ((b H + h) T + i) T + j) < 1 - p (as op_dropout). */
static void att_ref(const double *const *in, double *out, const void *arg) {
  const att_arg *a = arg;
  int T = a->T, H = a->H, hd = a->hd, D = H * hd;
  double *s = epee_malloc(sizeof(double) * (size_t)T);
  for (int b = 0; b < a->B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < T; i++) {
        const double *qi = in[0] + ((size_t)b * T + i) * D + h * hd;
        double mx = -INFINITY, sum = 0.0;
        for (int j = 0; j < T; j++) {
          const double *kj = in[1] + ((size_t)b * T + j) * D + h * hd;
          double d = 0.0;
          for (int e = 0; e < hd; e++) d += qi[e] * kj[e];
          s[j] = visible(a->mask, a->causal, b, i, j, T, T) ? d / sqrt((double)hd) : -FLT_MAX;
          mx = fmax(mx, s[j]);
        }
        for (int j = 0; j < T; j++) sum += s[j] = exp(s[j] - mx);
        for (int j = 0; j < T; j++) {
          s[j] /= sum;
          if (a->p > 0.0f) {
            uint64_t idx = (((uint64_t)b * H + h) * T + i) * T + j;
            s[j] = rng_uniform(a->seed, a->step << 20, idx) < 1.0f - a->p ? s[j] / (1.0 - a->p) : 0.0;
          }
        }
        for (int e = 0; e < hd; e++) {
          double y = 0.0;
          for (int j = 0; j < T; j++) y += s[j] * in[2][((size_t)b * T + j) * D + h * hd + e];
          out[((size_t)b * T + i) * D + h * hd + e] = y;
        }
      }
  free(s);
}

/* diff: which of q, k, v require grad (the backward skips the work of the others) */
static void run_attention_case(const att_arg *a, const char *what, const int diff[3]) {
  int D = a->H * a->hd;
  char name[96];
  snprintf(name, sizeof name, "attention B%d T%d H%d hd%d %s", a->B, a->T, a->H, a->hd, what);
  gc_case k = {.name = name, .n_in = 3, .ndim = {3, 3, 3},
               .shape = {{a->B, a->T, D}, {a->B, a->T, D}, {a->B, a->T, D}}, .diff = {diff[0], diff[1], diff[2]},
               .fast = att_fast, .ref = att_ref, .arg = a};
  gc_assert(&k, a->seed, 96, TOL);
}

static void test_attention_gradcheck(void) {
  const att_arg cases[] = {
      {3, 5, 2, 4, 0, mask_3x5, 0, 501, 0}, {2, 6, 3, 2, 1, NULL, 0, 502, 0}, {3, 5, 2, 3, 1, mask_3x5, 0, 503, 0},
      {1, 1, 1, 3, 0, NULL, 0, 504, 0},     {2, 4, 1, 1, 0, NULL, 0, 505, 0}, {1, 17, 3, 5, 1, NULL, 0, 506, 0},
      {2, 9, 4, 8, 0, NULL, 0, 507, 0},
  };
  const char *names[] = {"padding (a fully padded batch)", "causal", "padding + causal", "T = 1", "H = hd = 1",
                         "odd sizes, causal", "four heads"};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_attention_case(&cases[i], names[i], (int[]){1, 1, 1});
  run_attention_case(&cases[2], "padding + causal, grad of v only", (int[]){0, 0, 1});
  run_attention_case(&cases[2], "padding + causal, grad of q only", (int[]){1, 0, 0});
  run_attention_case(&cases[2], "padding + causal, grad of k, v", (int[]){0, 1, 1});
}

static void test_attention_dropout_gradcheck(void) {
  const att_arg cases[] = {{2, 7, 2, 4, 0, NULL, 0.3f, 601, 0}, {3, 5, 2, 3, 1, mask_3x5, 0.5f, 602, 9}};
  run_attention_case(&cases[0], "dropout 0.3", (int[]){1, 1, 1});
  run_attention_case(&cases[1], "dropout 0.5, padding + causal, step 9", (int[]){1, 1, 1});
  run_attention_case(&cases[1], "dropout 0.5, grad of v only", (int[]){0, 0, 1});
}

/* ---------------- dropout determinism, thread count, inference path, accumulation ---------------- */

typedef struct {
  float *y, *dq;
  size_t arena_used;
  int tape_n;
} att_run;

/* one forward (+ backward when grad) of attention on fixed inputs, B=2 T=9 H=3 hd=4, padding mask */
static att_run run_fixed(uint64_t seed, uint64_t step, float p, int training, int grad, int threads) {
  enum { B = 2, T = 9, H = 3, hd = 4, D = H * hd };
  static const float mask[B * T] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
  int saved_threads = omp_get_max_threads();
  omp_set_num_threads(threads);
  epee_ctx c;
  ctx_init(&c, 1 << 20, seed);
  c.step = step;
  c.training = training;
  c.grad_mode = grad;
  float *buf = arena_alloc(&c.act, sizeof(float) * 3 * B * T * D);
  rng_fill_normal(buf, 3 * B * T * D, 1.0f, 77, 0);
  tensor *in[3];
  for (int i = 0; i < 3; i++) {
    in[i] = tensor_wrap(&c, buf + (size_t)i * B * T * D, 3, (int[]){B, T, D});
    in[i]->requires_grad = 1;
  }
  size_t before = c.act.used;
  tensor *y = op_attention(&c, in[0], in[1], in[2], H, mask, 0, p);
  att_run r = {epee_malloc(sizeof(float) * B * T * D), NULL, c.act.used - before, c.tape.n};
  memcpy(r.y, y->data, sizeof(float) * B * T * D);
  if (grad) {
    tape_backward(&c, y, NULL);
    r.dq = epee_malloc(sizeof(float) * B * T * D);
    memcpy(r.dq, in[0]->grad, sizeof(float) * B * T * D);
  }
  ctx_free(&c);
  omp_set_num_threads(saved_threads);
  return r;
}

static void free_run(att_run *r) {
  free(r->y);
  free(r->dq);
}

static int same(const float *a, const float *b, int n) { return memcmp(a, b, sizeof(float) * (size_t)n) == 0; }

static void test_dropout_determinism(void) {
  int n = 2 * 9 * 12;
  att_run a = run_fixed(5, 3, 0.2f, 1, 1, 2), b = run_fixed(5, 3, 0.2f, 1, 1, 2);
  att_run other_step = run_fixed(5, 4, 0.2f, 1, 1, 2), other_seed = run_fixed(6, 3, 0.2f, 1, 1, 2);
  att_run eval = run_fixed(5, 3, 0.2f, 0, 1, 2), no_drop = run_fixed(5, 3, 0.0f, 1, 1, 2);
  CU_ASSERT(same(a.y, b.y, n) && same(a.dq, b.dq, n));
  CU_ASSERT(!same(a.y, other_step.y, n));
  CU_ASSERT(!same(a.y, other_seed.y, n));
  CU_ASSERT(same(eval.y, no_drop.y, n)); /* not training: no dropout whatever p */
  CU_ASSERT(!same(a.y, eval.y, n));
  att_run *all[] = {&a, &b, &other_step, &other_seed, &eval, &no_drop};
  for (int i = 0; i < 6; i++) free_run(all[i]);
}

static void test_thread_count_independent(void) {
  int n = 2 * 9 * 12;
  att_run one = run_fixed(5, 3, 0.2f, 1, 1, 1), two = run_fixed(5, 3, 0.2f, 1, 1, 2);
  CU_ASSERT(same(one.y, two.y, n));
  CU_ASSERT(same(one.dq, two.dq, n));
  free_run(&one), free_run(&two);
}

/* without grad mode: same output, nothing on the tape, and less arena than the saved probabilities */
static void test_inference_saves_nothing(void) {
  int n = 2 * 9 * 12;
  att_run g = run_fixed(5, 3, 0.0f, 0, 1, 2), i = run_fixed(5, 3, 0.0f, 0, 0, 2);
  CU_ASSERT(same(g.y, i.y, n));
  CU_ASSERT_EQUAL(g.tape_n, 1);
  CU_ASSERT_EQUAL(i.tape_n, 0);
  size_t probs = sizeof(float) * 2 * 3 * 9 * 9, out = sizeof(float) * (size_t)n;
  CU_ASSERT(g.arena_used >= out + probs);
  /* output + one 9 x 9 scratch block per thread (+ headers and alignment) */
  CU_ASSERT(i.arena_used <= out + sizeof(float) * 81 * (size_t)omp_get_max_threads() + 512);
  free_run(&g), free_run(&i);
}

static void test_backward_twice_doubles(void) {
  enum { B = 2, T = 4, H = 2, hd = 3, D = H * hd };
  epee_ctx c;
  ctx_init(&c, 1 << 16, 1);
  float *buf = arena_alloc(&c.act, sizeof(float) * 3 * B * T * D);
  rng_fill_normal(buf, 3 * B * T * D, 1.0f, 3, 0);
  tensor *in[3];
  for (int i = 0; i < 3; i++) {
    in[i] = tensor_wrap(&c, buf + (size_t)i * B * T * D, 3, (int[]){B, T, D});
    in[i]->requires_grad = 1;
  }
  tensor *y = op_attention(&c, in[0], in[1], in[2], H, NULL, 1, 0.0f);
  tape_backward(&c, y, NULL);
  float first[3][B * T * D];
  for (int i = 0; i < 3; i++) memcpy(first[i], in[i]->grad, sizeof first[i]);
  tape_backward(&c, y, NULL);
  int ok = 1;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < B * T * D; j++) ok &= fabsf(in[i]->grad[j] - 2 * first[i][j]) <= 1e-5f * (1 + fabsf(first[i][j]));
  CU_ASSERT(ok);
  ctx_free(&c);
}

static int shutdown_wrapper(void) {
  dw_shutdown();
  return 0;
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("ops_attention", NULL, shutdown_wrapper);
  CU_add_test(s, "softmax worked by hand (masks, fully masked row)", test_softmax_by_hand);
  CU_add_test(s, "attention worked by hand (means of visible values)", test_attention_by_hand);
  CU_add_test(s, "softmax gradcheck", test_softmax_gradcheck);
  CU_add_test(s, "attention gradcheck", test_attention_gradcheck);
  CU_add_test(s, "attention with dropout gradcheck (mask recomputed)", test_attention_dropout_gradcheck);
  CU_add_test(s, "dropout: same seed and step, same result", test_dropout_determinism);
  CU_add_test(s, "result independent of the thread count", test_thread_count_independent);
  CU_add_test(s, "inference path saves nothing", test_inference_saves_nothing);
  CU_add_test(s, "backward twice doubles leaf grads", test_backward_twice_doubles);
}
