/* The batched early-exit engine against independent references, on tiny random models of every backbone
 * (BERT; ALBERT with factorised embeddings and two layer groups; GPT-2, causal, with and without the exits'
 * final LayerNorm), whose exit heads are scaled up (x20) so that some rows are confident early and real early
 * exits happen. Per backbone, one suite:
 *  - all exits == the training forward (model_forward_all, grad mode off);
 *  - policy none == argmax / softmax of the training forward's last exit;
 *  - every policy and setting: each row's exit layer and label == the policy simulated on that row's
 *    all-exit logits (epee_policy_run), the calibration path; so compaction and trimming are exact, also for
 *    a causal model whose exits read the last real token;
 *  - the same with per-exit temperatures (the engine divides each exit's logits before the policy and softmax);
 *  - a batch == its rows one by one; extra padding, garbage padding ids and row order change nothing;
 *  - no allocation after warm-up; a whole dataset comes back in input order, also with several policies
 *    interleaved (the timing runner).
 * Ids are random, row lengths vary from 1 to T in shuffled order. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/progress.h"
#include "core/rng.h"
#include "infer/engine.h"
#include "models/model.h"

enum { B = 12, T = 10, TMAX = 16, V = 40, L = 4, C = 3 };
static model m;
static int32_t ids[B * T], types[B * T];
static float mask[B * T];
static int lens[B];

/* the model of the running suite (init seed), and the inputs: random ids (hash seed + 4), types (read only by
 * the archs with token types), mask */
static int setup_arch(const char *arch, const model_config *cfg, uint64_t seed) {
  const model_arch *a = model_find_arch(arch);
  epee_err e;
  if (!a || model_create(&m, a, cfg, PARAMS_TRAIN, 0, &e)) return 1;
  a->init(&m, seed);
  for (int i = 0; i < m.ps.n; i++)
    if (!strncmp(m.ps.t[i]->name, "classifiers.", 12))
      for (int64_t k = 0; k < m.ps.t[i]->n; k++) m.ps.t[i]->data[k] *= 20.0f;
  for (int b = 0; b < B; b++) {
    lens[b] = 1 + (b * 7) % T; /* 1..10, shuffled: a length-1 row is [CLS] alone (GPT-2: one token) */
    for (int t = 0; t < T; t++) {
      int real = t < lens[b];
      ids[b * T + t] = real ? (int32_t)(rng_hash(seed + 4, 0, (uint64_t)(b * T + t)) % V) : 0;
      types[b * T + t] = real && t >= lens[b] / 2;
      mask[b * T + t] = (float)real;
    }
  }
  return 0;
}

static int setup_bert(void) {
  model_config cfg = {.vocab = V, .hidden = 16, .layers = L, .heads = 2, .intermediate = 32, .max_position = TMAX,
                      .type_vocab = 2, .num_labels = C, .layer_norm_eps = 1e-12f, .init_std = 0.2f};
  return setup_arch("bert", &cfg, 5);
}
static int setup_albert(void) {
  model_config cfg = {.vocab = V, .hidden = 16, .layers = L, .heads = 2, .intermediate = 32, .max_position = TMAX,
                      .type_vocab = 2, .num_labels = C, .embedding_size = 8, .hidden_groups = 2,
                      .layer_norm_eps = 1e-12f, .init_std = 0.2f};
  return setup_arch("albert", &cfg, 6);
}
static int setup_gpt2(void) {
  model_config cfg = {.vocab = V, .hidden = 16, .layers = L, .heads = 2, .intermediate = 32, .max_position = TMAX,
                      .num_labels = C, .exit_norm = 1, .layer_norm_eps = 1e-5f, .init_std = 0.2f};
  return setup_arch("gpt2", &cfg, 7);
}
static int setup_gpt2_nonorm(void) {
  model_config cfg = {.vocab = V, .hidden = 16, .layers = L, .heads = 2, .intermediate = 32, .max_position = TMAX,
                      .num_labels = C, .exit_norm = 0, .layer_norm_eps = 1e-5f, .init_std = 0.2f};
  return setup_arch("gpt2", &cfg, 8);
}
static int teardown(void) {
  model_free(&m);
  return 0;
}

static model_batch batch_of(int n, int tlen, const int32_t *id, const int32_t *ty, const float *mk) {
  return (model_batch){.B = n, .T = tlen, .ids = id, .type_ids = ty, .mask = mk};
}

/* logits[l] of the training forward, grad mode off, as [B, L, C] */
static void training_logits(float *out) {
  epee_ctx c;
  ctx_init(&c, 0, 1);
  c.grad_mode = 0;
  tensor *logits[L];
  model_batch mb = batch_of(B, T, ids, types, mask);
  model_forward_all(&c, &m, &mb, logits);
  for (int b = 0; b < B; b++)
    for (int l = 0; l < L; l++) memcpy(out + (b * L + l) * C, logits[l]->data + b * C, sizeof(float) * C);
  ctx_free(&c);
}

static void softmax_ref(const float *z, double *p) {
  double mx = z[0], s = 0;
  for (int k = 1; k < C; k++) mx = fmax(mx, z[k]);
  for (int k = 0; k < C; k++) s += p[k] = exp(z[k] - mx);
  for (int k = 0; k < C; k++) p[k] /= s;
}

static void test_all_exits_equal_training_forward(void) {
  engine g;
  epee_err e;
  CU_ASSERT_FATAL(engine_init(&g, &m, B, T, &e) == 0);
  float eng[B * L * C], ref[B * L * C];
  model_batch mb = batch_of(B, T, ids, types, mask);
  engine_all_exits(&g, &mb, eng);
  training_logits(ref);
  double worst = 0;
  for (int i = 0; i < B * L * C; i++) worst = fmax(worst, fabs(eng[i] - ref[i]));
  printf("  max |engine - training forward| = %.2e ", worst);
  CU_ASSERT(worst <= 1e-5);
  engine_free(&g);
}

static void test_none_is_the_last_exit(void) {
  engine g;
  epee_err e;
  CU_ASSERT_FATAL(engine_init(&g, &m, B, T, &e) == 0);
  float ref[B * L * C], probs[B * C];
  int lab[B], lay[B];
  training_logits(ref);
  epee_policy none = {EPEE_POLICY_NONE, 0, 0};
  model_batch mb = batch_of(B, T, ids, types, mask);
  engine_classify(&g, &mb, &none, lab, lay, probs, NULL);
  for (int b = 0; b < B; b++) {
    const float *z = ref + (b * L + L - 1) * C;
    int best = 0;
    for (int k = 1; k < C; k++)
      if (z[k] > z[best]) best = k;
    double p[C];
    softmax_ref(z, p);
    CU_ASSERT_EQUAL(lay[b], L);
    CU_ASSERT_EQUAL(lab[b], best);
    for (int k = 0; k < C; k++) CU_ASSERT(fabs(probs[b * C + k] - p[k]) <= 1e-5);
  }
  engine_free(&g);
}

/* every policy kind with several (tau, patience) */
static int policy_grid(epee_policy *out) {
  const float taus[] = {0.02f, 0.1f, 0.3f, 0.6f};
  int n = 0;
  out[n++] = (epee_policy){EPEE_POLICY_NONE, 0, 0};
  for (int k = EPEE_POLICY_ENTROPY; k <= EPEE_POLICY_PCEE; k++)
    for (int ti = 0; ti < 4; ti++)
      for (int p = 1; p < L; p++) {
        if (k == EPEE_POLICY_ENTROPY && p > 1) continue;  /* entropy ignores patience */
        if (k == EPEE_POLICY_PATIENCE && ti > 0) continue; /* patience ignores tau */
        out[n++] = (epee_policy){(epee_policy_kind)k, taus[ti], p};
      }
  return n;
}

/* Every policy setting through the engine against the simulation on the all-exit logits, scaled by the model's
 * temperatures when it has them (as calibration scales them); *layers_out[pi * B + b] gets each exit layer. */
static void engine_vs_simulation(int *layers_out) {
  engine g;
  epee_err e;
  CU_ASSERT_FATAL(engine_init(&g, &m, B, T, &e) == 0);
  float all[B * L * C], probs[B * C];
  model_batch mb = batch_of(B, T, ids, types, mask);
  engine_all_exits(&g, &mb, all); /* raw: the engine applies temperatures to decisions and probabilities only */
  for (int r = 0; m.temperature && r < B * L; r++) epee_scale_logits(all + r * C, C, m.temperature[r % L], all + r * C);
  epee_policy pols[64];
  int np = policy_grid(pols), early = 0, mixed = 0;
  for (int pi = 0; pi < np; pi++) {
    int lab[B], lay[B], lo = L, hi = 1;
    float ms[B];
    double t0 = now_seconds();
    engine_classify(&g, &mb, &pols[pi], lab, lay, probs, ms);
    double call_ms = 1e3 * (now_seconds() - t0);
    for (int b = 0; b < B; b++) {
      /* a row's answer time lies within the call, and a row that left earlier was answered no later */
      CU_ASSERT(ms[b] > 0 && ms[b] <= call_ms + 1e-3);
      for (int b2 = 0; b2 < B; b2++) CU_ASSERT(lay[b] >= lay[b2] || ms[b] <= ms[b2]);
      int slab, sl = epee_policy_run(&pols[pi], all + b * L * C, L, C, &slab);
      CU_ASSERT_EQUAL(lay[b], sl + 1);
      CU_ASSERT_EQUAL(lab[b], slab);
      double p[C];
      softmax_ref(all + (b * L + sl) * C, p); /* the answer is the exit layer's softmax */
      for (int k = 0; k < C; k++) CU_ASSERT(fabs(probs[b * C + k] - p[k]) <= 1e-5);
      early += lay[b] < L;
      lo = lay[b] < lo ? lay[b] : lo;
      hi = lay[b] > hi ? lay[b] : hi;
      layers_out[pi * B + b] = lay[b];
    }
    mixed += lo < hi; /* rows of one batch left at different layers: compaction happened */
  }
  printf("  %d policy settings, %d early row exits, %d batches with rows leaving at different layers ", np, early,
         mixed);
  CU_ASSERT(early > 0);
  CU_ASSERT(mixed >= 5);
  engine_free(&g);
}

static void test_engine_equals_simulation(void) {
  int layers[64 * B];
  engine_vs_simulation(layers);
}

/* With temperatures (some sharpen, some flatten) the engine still equals the simulation on the scaled logits, and
 * the temperatures really move exits. */
static void test_engine_equals_simulation_with_temperatures(void) {
  static const float temp[L] = {0.5f, 3.0f, 1.7f, 0.8f};
  int raw[64 * B], scaled[64 * B], moved = 0;
  engine_vs_simulation(raw);
  m.temperature = malloc(sizeof temp);
  memcpy(m.temperature, temp, sizeof temp);
  engine_vs_simulation(scaled);
  free(m.temperature);
  m.temperature = NULL;
  epee_policy pols[64];
  int np = policy_grid(pols);
  for (int i = 0; i < np * B; i++) moved += raw[i] != scaled[i];
  printf("(%d row exits moved by the temperatures) ", moved);
  CU_ASSERT(moved >= 10);
}

/* The batch, each row alone at its own length, the batch reversed, and the batch padded to TMAX with
 * garbage ids in the padding: identical labels and exit layers, probabilities within 1e-5. */
static void test_batch_equals_singles_and_padding_is_inert(void) {
  engine g;
  epee_err e;
  CU_ASSERT_FATAL(engine_init(&g, &m, B, TMAX, &e) == 0);
  int32_t pid[B * TMAX], pty[B * TMAX], rid[B * T], rty[B * T];
  float pmk[B * TMAX], rmk[B * T];
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < TMAX; t++) {
      int real = t < lens[b];
      pid[b * TMAX + t] = real ? ids[b * T + t] : (int32_t)((7 * t + b) % V);
      pty[b * TMAX + t] = real ? types[b * T + t] : 1;
      pmk[b * TMAX + t] = (float)real;
    }
    int r = B - 1 - b;
    memcpy(rid + r * T, ids + b * T, sizeof(int32_t) * T);
    memcpy(rty + r * T, types + b * T, sizeof(int32_t) * T);
    memcpy(rmk + r * T, mask + b * T, sizeof(float) * T);
  }
  epee_policy pols[64];
  int np = policy_grid(pols);
  for (int pi = 0; pi < np; pi++) {
    int lab[B], lay[B], plab[B], play[B], rlab[B], rlay[B];
    float probs[B * C], pprobs[B * C], rprobs[B * C];
    model_batch mb = batch_of(B, T, ids, types, mask), pb = batch_of(B, TMAX, pid, pty, pmk),
                rb = batch_of(B, T, rid, rty, rmk);
    engine_classify(&g, &mb, &pols[pi], lab, lay, probs, NULL);
    engine_classify(&g, &pb, &pols[pi], plab, play, pprobs, NULL);
    engine_classify(&g, &rb, &pols[pi], rlab, rlay, rprobs, NULL);
    for (int b = 0; b < B; b++) {
      int y1, l1, r = B - 1 - b;
      float p1[C];
      model_batch one = batch_of(1, lens[b], ids + b * T, types + b * T, mask + b * T);
      engine_classify(&g, &one, &pols[pi], &y1, &l1, p1, NULL);
      CU_ASSERT(l1 == lay[b] && y1 == lab[b]);
      CU_ASSERT(play[b] == lay[b] && plab[b] == lab[b]);
      CU_ASSERT(rlay[r] == lay[b] && rlab[r] == lab[b]);
      for (int k = 0; k < C; k++) {
        CU_ASSERT(fabsf(p1[k] - probs[b * C + k]) <= 1e-5f);
        CU_ASSERT(fabsf(pprobs[b * C + k] - probs[b * C + k]) <= 1e-5f);
        CU_ASSERT(fabsf(rprobs[r * C + k] - probs[b * C + k]) <= 1e-5f);
      }
    }
  }
  engine_free(&g);
}

/* After engine_init the arena is frozen at its warm-up size: calls of every shape leave it unchanged (an
 * overflow would abort), and an empty batch is a no-op. */
static void test_no_allocation_after_warmup(void) {
  engine g;
  epee_err e;
  CU_ASSERT_FATAL(engine_init(&g, &m, B, T, &e) == 0);
  CU_ASSERT(g.ctx.act.frozen && g.ctx.act.extra == NULL && g.ctx.act.cap > 0);
  char *base = g.ctx.act.base;
  size_t cap = g.ctx.act.cap;
  CU_ASSERT(g.ctx.grad_mode == 0 && g.ctx.training == 0);
  epee_policy pols[64];
  int np = policy_grid(pols), lab[B], lay[B];
  float probs[B * C], all[B * L * C];
  for (int pi = 0; pi < np; pi++)
    for (int n = 0; n <= B; n += 3) {
      model_batch mb = batch_of(n, T, ids, types, mask);
      engine_classify(&g, &mb, &pols[pi], lab, lay, probs, NULL);
    }
  model_batch mb = batch_of(B, T, ids, types, mask);
  engine_all_exits(&g, &mb, all);
  CU_ASSERT(g.ctx.act.base == base && g.ctx.act.cap == cap && g.ctx.act.extra == NULL);
  CU_ASSERT_EQUAL(g.ctx.tape.n, 0);
  int sentinel = -7;
  model_batch empty = batch_of(0, T, ids, types, mask);
  engine_classify(&g, &empty, &pols[1], &sentinel, &sentinel, NULL, NULL);
  CU_ASSERT_EQUAL(sentinel, -7);
  engine_free(&g);
}

/* A hand-built encoded set of 2B rows (the test rows twice), batches of 5: answers in input order, each
 * equal to the row classified alone. */
static void test_dataset_in_input_order(void) {
  enum { N = 2 * B };
  ds_encoded d = {0};
  int32_t cat_ids[N * T], cat_ty[N * T];
  int64_t off[N];
  int len[N], gold[N];
  int64_t at = 0;
  for (int i = 0; i < N; i++) {
    int b = i % B;
    off[i] = at;
    len[i] = lens[b];
    gold[i] = -1;
    memcpy(cat_ids + at, ids + b * T, sizeof(int32_t) * (size_t)lens[b]);
    memcpy(cat_ty + at, types + b * T, sizeof(int32_t) * (size_t)lens[b]);
    at += lens[b];
  }
  d = (ds_encoded){.ids = cat_ids, .type_ids = cat_ty, .offset = off, .len = len, .labels = gold, .n = N,
                   .max_len = T, .pad_id = 0};
  engine g;
  epee_err e;
  CU_ASSERT_FATAL(engine_init(&g, &m, 5, T, &e) == 0);
  epee_policy p = {EPEE_POLICY_EPEE, 0.3f, 2};
  int lab[N], lay[N];
  float probs[N * C];
  double s = engine_classify_dataset(&g, &d, 5, &p, lab, lay, probs, NULL);
  CU_ASSERT(s >= 0);
  for (int i = 0; i < N; i++) {
    int b = i % B, y1, l1;
    float p1[C];
    model_batch one = batch_of(1, lens[b], ids + b * T, types + b * T, mask + b * T);
    engine_classify(&g, &one, &p, &y1, &l1, p1, NULL);
    CU_ASSERT(lab[i] == y1 && lay[i] == l1);
    for (int k = 0; k < C; k++) CU_ASSERT(fabsf(probs[i * C + k] - p1[k]) <= 1e-5f);
  }
  /* several policies interleaved batch by batch: each pass's answers equal its own run; one time per batch */
  enum { NB = (N + 4) / 5 };
  epee_policy pols[3] = {{EPEE_POLICY_NONE, 0, 0}, p, {EPEE_POLICY_ENTROPY, 0.2f, 0}};
  int plab[3][N], play[3][N];
  double calls[3][NB];
  engine_pass pass[3];
  for (int k = 0; k < 3; k++)
    pass[k] = (engine_pass){.policy = pols[k], .label = plab[k], .layers = play[k], .call_seconds = calls[k]};
  engine_run_dataset(&g, &d, 5, 2, pass, 3);
  for (int k = 0; k < 3; k++) {
    double sum = 0;
    for (int i = 0; i < NB; i++) sum += calls[k][i];
    CU_ASSERT(pass[k].seconds > 0 && fabs(sum - pass[k].seconds) <= 1e-9);
    engine_classify_dataset(&g, &d, 5, &pols[k], lab, lay, NULL, NULL);
    CU_ASSERT(memcmp(lab, plab[k], sizeof lab) == 0 && memcmp(lay, play[k], sizeof lay) == 0);
  }
  engine_free(&g);
}

void epee_register_tests(void) {
  const struct {
    const char *name;
    int (*setup)(void);
  } suites[] = {{"engine bert", setup_bert},
                {"engine albert (E 8, 2 groups)", setup_albert},
                {"engine gpt2 (causal, exit_norm)", setup_gpt2},
                {"engine gpt2 (causal, no exit_norm)", setup_gpt2_nonorm}};
  for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
    CU_pSuite s = CU_add_suite(suites[i].name, suites[i].setup, teardown);
    CU_add_test(s, "all exits equal the training forward", test_all_exits_equal_training_forward);
    CU_add_test(s, "policy none answers with the last exit", test_none_is_the_last_exit);
    CU_add_test(s, "engine = simulation, every policy and setting", test_engine_equals_simulation);
    CU_add_test(s, "engine = simulation with temperatures", test_engine_equals_simulation_with_temperatures);
    CU_add_test(s, "batch = singles; padding and order are inert", test_batch_equals_singles_and_padding_is_inert);
    CU_add_test(s, "no allocation after warm-up", test_no_allocation_after_warmup);
    CU_add_test(s, "whole dataset in input order", test_dataset_in_input_order);
  }
}
