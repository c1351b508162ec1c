/* Training throughput of a multi-exit backbone (BERT by default; any arch of the registry with --arch): median
 * step time (forward + backward + AdamW) over repeats, examples/s and achieved GFLOP/s, beside a raw oneDNN GEMM
 * measured in the same run. --infer times the full-depth forward without a tape instead (the engine's policy
 * none, what serving runs), at the given batch.
 * Usage: bench_train [--arch bert|albert|gpt2|vit] [--layers L] [--hidden D] [--heads H] [--intermediate F]
 *                    [--seq T] [--batch B] [--steps N] [--vocab V] [--labels C] [--embedding E] [--groups G]
 *                    [--image S] [--patch P] [--channels C] [--infer 1] [--profile 1]
 * (the options of experiments/bench_train_torch.py; --embedding and --groups are ALBERT's; --image, --patch and
 * --channels ViT's, whose sequence is then (S/P)^2 + 1). For an image arch it also times the data path of one
 * batch (normalisation + random crop + flip, img_fill_batch) against the step. --profile 1 prints where the
 * timed steps' time goes, per op kind (core/profile.h; the step is train/train_step.c, what training runs).
 * FLOPs per training step = 3 x forward, forward per token = 2 L (4 D^2 + 2 D F) + 4 L T D
 * (DESIGN section 7; the same per layer for every arch: q, k, v and the output projection are 4 D^2, GPT-2's
 * c_attn + c_proj too; embeddings are lookups, ALBERT's E -> D mapping, ViT's patch projection (2 C P^2 D per
 * patch, under 1% at ViT-Base) and the exits are not counted). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/adamw.h"
#include "core/dnnl_wrap.h"
#include "core/profile.h"
#include "core/progress.h"
#include "core/rng.h"
#include "data/images.h"
#include "infer/engine.h"
#include "models/model.h"
#include "train/multi_exit_loss.h"
#include "train/train_step.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double raw_gemm_gflops(void) {
  /* the largest BERT-base GEMM shape: [1024, 768] x [768, 3072] */
  int M = 1024, K = 768, N = 3072;
  float *a = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)K * N),
        *c = malloc(sizeof(float) * (size_t)M * N);
  rng_fill_normal(a, (int64_t)M * K, 1, 1, 1);
  rng_fill_normal(b, (int64_t)K * N, 1, 1, 2);
  double t[15];
  for (int r = 0; r < 18; r++) {
    double t0 = now_seconds();
    dw_sgemm_raw(0, 0, M, N, K, a, b, c);
    if (r >= 3) t[r - 3] = now_seconds() - t0;
  }
  qsort(t, 15, sizeof(double), cmp_double);
  free(a), free(b), free(c);
  return 2.0 * M * N * K / t[7] / 1e9;
}

int main(int argc, char **argv) {
  /* BERT-base sizes; ALBERT-base's embedding size and single group, GPT-2's exit_norm. No dropout: the PyTorch
   * twins have none, and both sides must do the same work. */
  model_config cfg = {.vocab = 30522, .hidden = 768, .layers = 12, .heads = 12, .intermediate = 3072,
                      .max_position = 512, .type_vocab = 2, .num_labels = 3, .embedding_size = 128,
                      .hidden_groups = 1, .exit_norm = 1, .layer_norm_eps = 1e-12f, .init_std = 0.02f,
                      .image_size = 224, .patch_size = 16, .channels = 3};
  const char *arch_name = "bert";
  int T = 128, B = 8, steps = 10, infer = 0, profiling = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    int v = atoi(argv[i + 1]);
    if (!strcmp(argv[i], "--arch")) arch_name = argv[i + 1];
    else if (!strcmp(argv[i], "--layers")) cfg.layers = v;
    else if (!strcmp(argv[i], "--hidden")) cfg.hidden = v;
    else if (!strcmp(argv[i], "--heads")) cfg.heads = v;
    else if (!strcmp(argv[i], "--intermediate")) cfg.intermediate = v;
    else if (!strcmp(argv[i], "--seq")) T = v;
    else if (!strcmp(argv[i], "--batch")) B = v;
    else if (!strcmp(argv[i], "--steps")) steps = v;
    else if (!strcmp(argv[i], "--vocab")) cfg.vocab = v;
    else if (!strcmp(argv[i], "--labels")) cfg.num_labels = v;
    else if (!strcmp(argv[i], "--embedding")) cfg.embedding_size = v;
    else if (!strcmp(argv[i], "--groups")) cfg.hidden_groups = v;
    else if (!strcmp(argv[i], "--image")) cfg.image_size = v;
    else if (!strcmp(argv[i], "--patch")) cfg.patch_size = v;
    else if (!strcmp(argv[i], "--channels")) cfg.channels = v;
    else if (!strcmp(argv[i], "--infer")) infer = v;
    else if (!strcmp(argv[i], "--profile")) profiling = v;
    else {
      fprintf(stderr, "bench_train: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  const model_arch *arch = model_find_arch(arch_name);
  if (!arch) {
    fprintf(stderr, "bench_train: unknown --arch %s (one of", arch_name);
    for (int i = 0; model_arch_names[i]; i++) fprintf(stderr, " %s", model_arch_names[i]);
    fprintf(stderr, ")\n");
    return 2;
  }
  model m;
  epee_err e;
  if (model_create(&m, arch, &cfg, PARAMS_TRAIN, 0, &e)) {
    fprintf(stderr, "bench_train: %s\n", e.msg);
    return 2;
  }
  int image = arch->input == MODEL_INPUT_IMAGE;
  if (image) T = model_max_tokens(&m);
  if (steps < 1 || B < 1 || T < 1 || T > model_max_tokens(&m)) {
    fprintf(stderr, "bench_train: need steps >= 1, batch >= 1, 1 <= seq <= %d\n", model_max_tokens(&m));
    return 2;
  }
  arch->init(&m, 1);
  int L = cfg.layers, S = cfg.image_size, Ch = cfg.channels;
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)B * T), *labels = malloc(sizeof(int32_t) * (size_t)B);
  float *mask = malloc(sizeof(float) * (size_t)B * T), *w = malloc(sizeof(float) * (size_t)L);
  for (int i = 0; i < B * T; i++) ids[i] = (int32_t)(rng_hash(7, 0, (uint64_t)i) % (uint64_t)cfg.vocab), mask[i] = 1;
  for (int i = 0; i < B; i++) labels[i] = i % cfg.num_labels;
  /* images: B random 8-bit images and the batch the model reads, filled as training fills it */
  size_t npx = image ? (size_t)B * Ch * S * S : 1;
  uint8_t *raw = malloc(npx);
  float *pixels = malloc(sizeof(float) * npx);
  int *idx = malloc(sizeof(int) * (size_t)B);
  for (size_t i = 0; i < npx; i++) raw[i] = (uint8_t)rng_hash(8, 0, i);
  for (int i = 0; i < B; i++) idx[i] = i;
  img_set imgs = {.pixels = raw, .n = B, .H = S, .W = S, .C = Ch};
  img_norm nm = {{0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}};
  img_aug aug = {.crop_pad = 4, .hflip = 1};
  double fill_s = 0;
  if (image) {
    double ft[21];
    for (int r = 0; r < 21; r++) {
      double t0 = now_seconds();
      img_fill_batch(&imgs, idx, B, &nm, &aug, 1, (uint64_t)r, pixels);
      ft[r] = now_seconds() - t0;
    }
    qsort(ft, 21, sizeof(double), cmp_double);
    fill_s = ft[10];
  }
  exit_weights(&(cfg_weights){.kind = CFG_WEIGHTS_ASC}, L, w);
  epee_ctx c;
  ctx_init(&c, 0, 1);
  c.training = 1;
  adamw opt = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
  adamw_group g[PG_COUNT] = {{1e-5f, 0.01f}, {1e-5f, 0}, {1e-5f, 0.01f}, {1e-5f, 0}};
  profile prof;
  prof_init(&prof);
  int warm = 2;
  double *t = malloc(sizeof(double) * (size_t)steps);
  engine eng = {0};
  int *lab = malloc(sizeof(int) * (size_t)B), *lay = malloc(sizeof(int) * (size_t)B);
  if (infer && engine_init(&eng, &m, B, T, &e)) {
    fprintf(stderr, "bench_train: %s\n", e.msg);
    return 2;
  }
  for (int s = 0; s < warm + steps; s++) {
    double t0 = now_seconds();
    model_batch mb = {.B = B, .T = T, .ids = ids, .mask = mask, .pixels = image ? pixels : NULL};
    if (infer) { /* the serving path at full depth: the last exit only */
      engine_classify(&eng, &mb, &(epee_policy){EPEE_POLICY_NONE, 0, 0}, lab, lay, NULL, NULL);
      if (s >= warm) t[s - warm] = now_seconds() - t0;
      continue;
    }
    if (profiling && s == warm) c.prof = &prof; /* the timed steps only */
    train_step_run(&c, &m, &mb, labels, w, (uint64_t)s, 1.0, &opt, g, NULL);
    if (s >= warm) t[s - warm] = now_seconds() - t0;
    if (c.prof) prof_step(c.prof, now_seconds() - t0);
  }
  qsort(t, (size_t)steps, sizeof(double), cmp_double);
  double med = t[steps / 2];
  double D = cfg.hidden, F = cfg.intermediate;
  double flop_tok = 2.0 * L * (4 * D * D + 2 * D * F) + 4.0 * L * T * D;
  double gflops = (infer ? 1.0 : 3.0) * flop_tok * B * T / med / 1e9;
  double peak = raw_gemm_gflops();
  dw_describe_machine(stdout);
  printf("epee-c   %s  %s L=%d D=%d H=%d F=%d T=%d B=%d threads=%d: median %s %.1f ms, %.1f examples/s, "
         "%.1f GFLOP/s, %.0f%% of raw oneDNN GEMM (%.1f GFLOP/s)\n",
         infer ? "infer" : "train", arch->name, L, cfg.hidden, cfg.heads, cfg.intermediate, T, B,
         omp_get_max_threads(), infer ? "forward" : "step", 1e3 * med, B / med, gflops, 100 * gflops / peak, peak);
  if (profiling && !infer) prof_print(&prof, stdout);
  if (image)
    printf("epee-c   data   %dx%dx%d images, batch %d: normalise + random crop (pad 4) + flip %.3f ms = %.2f%% of "
           "the %s\n", S, S, Ch, B, 1e3 * fill_s, 100 * fill_s / med, infer ? "forward" : "training step");
  engine_free(&eng);
  free(lab), free(lay), free(raw), free(pixels), free(idx);
  free(ids), free(labels), free(mask), free(w), free(t);
  ctx_free(&c);
  model_free(&m);
  dw_shutdown();
  return 0;
}
