/* Core kernels at BERT-base shapes: linear forward / backward against a raw oneDNN GEMM of the same
 * size measured in the same run, the default model's GEMMs at batch-1 serving (packed weights), fused attention
 * forward / backward, fused linear epilogues, the GELU kernels.
 *
 * Each repetition times the raw GEMM and our op back to back, so a load change on the machine hits both
 * alike; the table shows medians. Threads: OMP_NUM_THREADS.
 *   usage: bench_core [reps]   (default 20, after 3 warm-up runs) */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/dnnl_wrap.h"
#include "core/ops.h"
#include "core/rng.h"

#define WARMUP 3
#define MAX_REPS 1000

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *t, int n) {
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static float *randn(int64_t n, uint64_t stream) {
  float *x = epee_malloc(sizeof(float) * (size_t)n);
  rng_fill_normal(x, n, 0.05f, 1, stream);
  return x;
}

/* ---- linear: one row of the table per (pass, shape) ---- */
typedef struct {
  int M, N, K;
  float *x, *w, *b, *y, *dy, *dx, *dw, *db, *tmp;
} lin_bufs;

static void ours_fwd(lin_bufs *l) { dw_linear_fwd(l->x, l->w, 0, l->b, DW_ACT_NONE, NULL, l->y, l->M, l->N, l->K); }
static void raw_fwd(lin_bufs *l) { dw_sgemm_raw(0, 0, l->M, l->N, l->K, l->x, l->w, l->y); }
static void ours_bwd(lin_bufs *l) {
  dw_linear_bwd_data(l->dy, l->w, 0, l->dx, l->M, l->N, l->K);
  dw_linear_bwd_weights(l->dy, l->x, 0, l->dw, l->db, l->M, l->N, l->K);
}
/* the same two GEMM shapes, untransposed and without accumulation or bias */
static void raw_bwd(lin_bufs *l) {
  dw_sgemm_raw(0, 0, l->M, l->K, l->N, l->dy, l->w, l->dx);
  dw_sgemm_raw(0, 0, l->N, l->K, l->M, l->dy, l->x, l->tmp);
}

static void bench_pair(const char *what, lin_bufs *l, void (*raw)(lin_bufs *), void (*ours)(lin_bufs *), double flops,
                       int reps, double *t_ours) {
  double tr[MAX_REPS], to[MAX_REPS];
  for (int r = 0; r < WARMUP; r++) raw(l), ours(l);
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    raw(l);
    double t1 = now();
    ours(l);
    double t2 = now();
    tr[r] = t1 - t0;
    to[r] = t2 - t1;
  }
  double mr = median(tr, reps), mo = median(to, reps);
  *t_ours = mo;
  printf("%-9s %5d %5d %5d   %8.3f %8.1f   %8.3f %8.1f   %6.1f%%\n", what, l->M, l->N, l->K, mo * 1e3, flops / mo * 1e-9,
         mr * 1e3, flops / mr * 1e-9, 100.0 * mr / mo);
}

/* returns forward + backward seconds of this shape */
static double bench_linear(int M, int N, int K, int reps) {
  lin_bufs l = {M, N, K, randn((int64_t)M * K, 1), randn((int64_t)N * K, 2), randn(N, 3), randn((int64_t)M * N, 4),
                randn((int64_t)M * N, 5), randn((int64_t)M * K, 6), randn((int64_t)N * K, 7), randn(N, 8),
                randn((int64_t)N * K, 9)};
  double tf, tb, flops = 2.0 * M * N * K;
  bench_pair("fwd", &l, raw_fwd, ours_fwd, flops, reps, &tf);
  bench_pair("bwd", &l, raw_bwd, ours_bwd, 2 * flops, reps, &tb);
  float *bufs[] = {l.x, l.w, l.b, l.y, l.dy, l.dx, l.dw, l.db, l.tmp};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
  return tf + tb;
}

/* Serving: one forward at batch 1, the weights packed as the engine runs them (dw_linear_fwd_frozen); returns the
 * seconds of one layer's six GEMMs (Q, K, V, output projection, FFN up and down) and sets *raw to the raw GEMMs'. */
static void ours_fwd_packed(lin_bufs *l) {
  dw_linear_fwd_frozen(l->x, l->w, 0, l->b, DW_ACT_NONE, NULL, l->y, l->M, l->N, l->K);
}

static double bench_serving_layer(int M, int D, int F, int reps, double *raw) {
  const int shape[3][2] = {{D, D}, {F, D}, {D, F}}, count[3] = {4, 1, 1};
  double ours = 0.0;
  *raw = 0.0;
  for (int s = 0; s < 3; s++) {
    int N = shape[s][0], K = shape[s][1];
    lin_bufs l = {.M = M, .N = N, .K = K, .x = randn((int64_t)M * K, 1), .w = randn((int64_t)N * K, 2),
                  .b = randn(N, 3), .y = randn((int64_t)M * N, 4)};
    double tr[MAX_REPS], to[MAX_REPS];
    for (int r = -WARMUP; r < reps; r++) { /* as bench_pair, keeping both medians */
      double t0 = now();
      raw_fwd(&l);
      double t1 = now();
      ours_fwd_packed(&l);
      double t2 = now();
      if (r >= 0) tr[r] = t1 - t0, to[r] = t2 - t1;
    }
    double mr = median(tr, reps), mo = median(to, reps), flops = 2.0 * M * N * K;
    printf("serve     %5d %5d %5d   %8.3f %8.1f   %8.3f %8.1f   %6.1f%%\n", M, N, K, mo * 1e3, flops / mo * 1e-9,
           mr * 1e3, flops / mr * 1e-9, 100.0 * mr / mo);
    ours += count[s] * mo, *raw += count[s] * mr;
    dw_forget_weights(l.w, sizeof(float) * (size_t)N * K);
    free(l.x), free(l.w), free(l.b), free(l.y);
  }
  return ours;
}

/* ---- attention ---- */
typedef struct {
  double fwd, bwd;
} attn_times;

static attn_times bench_attention(int B, int T, int H, int hd, float p, int grad, int reps) {
  int D = H * hd;
  float *q = randn((int64_t)B * T * D, 11), *k = randn((int64_t)B * T * D, 12), *v = randn((int64_t)B * T * D, 13);
  float *mask = epee_malloc(sizeof(float) * (size_t)B * T);
  for (int b = 0; b < B; b++) /* realistic padding: batch b has T - 8b real tokens */
    for (int t = 0; t < T; t++) mask[b * T + t] = t < T - 8 * b ? 1.0f : 0.0f;
  epee_ctx c;
  ctx_init(&c, (size_t)64 << 20, 1);
  c.training = p > 0.0f;
  c.grad_mode = grad;
  double tf[MAX_REPS], tb[MAX_REPS];
  for (int r = -WARMUP; r < reps; r++) {
    ctx_reset(&c);
    c.step = (uint64_t)(r + WARMUP);
    tensor *tq = tensor_wrap(&c, q, 3, (int[]){B, T, D}), *tk = tensor_wrap(&c, k, 3, (int[]){B, T, D}),
           *tv = tensor_wrap(&c, v, 3, (int[]){B, T, D});
    tq->requires_grad = tk->requires_grad = tv->requires_grad = 1;
    for (int i = 0; i < 3 && grad; i++) tensor_grad(&c, (tensor *[]){tq, tk, tv}[i]);
    double t0 = now();
    tensor *y = op_attention(&c, tq, tk, tv, H, mask, 0, p);
    double t1 = now(), t2 = t1, t3 = t1;
    if (grad) { /* the op's own backward, without the tape's bookkeeping */
      tape_entry *e = &c.tape.entries[c.tape.n - 1];
      rng_fill_normal(tensor_grad(&c, y), y->n, 1.0f, 5, 0);
      t2 = now();
      e->backward(e);
      t3 = now();
    }
    if (r >= 0) tf[r] = t1 - t0, tb[r] = t3 - t2;
  }
  ctx_free(&c);
  free(q), free(k), free(v), free(mask);
  return (attn_times){median(tf, reps), grad ? median(tb, reps) : 0.0};
}

/* ---- fused linear epilogues (op_linear_ex) against the same layer composed of single ops ---- */
typedef struct {
  double fwd, bwd;
} pass_times;

/* one layer: x[M,K] -> FFN up + GELU (gelu), or dropout(x W^T + b) + r (the projections before a LayerNorm) */
static tensor *epilogue_layer(epee_ctx *c, tensor *x, tensor *w, tensor *b, tensor *r, int gelu, float p, int fused) {
  linear_epilogue ep = gelu ? (linear_epilogue){.act = ACT_GELU} : (linear_epilogue){.dropout = p, .residual = r};
  if (fused) return op_linear_ex(c, x, w, b, ep);
  tensor *z = op_linear(c, x, w, b);
  return gelu ? op_gelu(c, z) : op_add(c, op_dropout(c, z, p), r);
}

/* medians of forward and backward (tape_backward from the output, input grads included), fused and composed
 * alternating in every repetition */
static void bench_epilogue(const char *name, int M, int N, int K, int gelu, float p, int grad, int reps) {
  float *x = randn((int64_t)M * K, 21), *w = randn((int64_t)N * K, 22), *b = randn(N, 23);
  float *r = randn((int64_t)M * N, 24), *dy = randn((int64_t)M * N, 25);
  epee_ctx c;
  ctx_init(&c, (size_t)256 << 20, 1);
  c.training = grad, c.grad_mode = grad;
  double t[2][2][MAX_REPS];
  for (int rep = -WARMUP; rep < reps; rep++)
    for (int fused = 0; fused < 2; fused++) {
      ctx_reset(&c);
      c.step = (uint64_t)(rep + WARMUP);
      tensor *tx = tensor_wrap(&c, x, 2, (int[]){M, K}), *tw = tensor_wrap(&c, w, 2, (int[]){N, K}),
             *tb = tensor_wrap(&c, b, 1, &N), *tr = tensor_wrap(&c, r, 2, (int[]){M, N});
      tx->requires_grad = tw->requires_grad = tb->requires_grad = tr->requires_grad = grad;
      double t0 = now();
      tensor *y = epilogue_layer(&c, tx, tw, tb, tr, gelu, p, fused);
      double t1 = now();
      if (grad) tape_backward(&c, y, dy);
      double t2 = now();
      if (rep >= 0) t[fused][0][rep] = t1 - t0, t[fused][1][rep] = t2 - t1;
    }
  pass_times pt[2];
  for (int f = 0; f < 2; f++) pt[f] = (pass_times){median(t[f][0], reps), grad ? median(t[f][1], reps) : 0.0};
  double all0 = pt[0].fwd + pt[0].bwd, all1 = pt[1].fwd + pt[1].bwd;
  printf("%-42s %5d %5d %5d   %7.3f %7.3f   %9.3f %7.3f   %5.2fx\n", name, M, N, K, pt[0].fwd * 1e3, pt[0].bwd * 1e3,
         pt[1].fwd * 1e3, pt[1].bwd * 1e3, all0 / all1);
  ctx_free(&c);
  free(x), free(w), free(b), free(r), free(dy);
}

/* The GELU kernels alone, on one thread: [2048, 1024] (the default shape's FFN activation, 8 MB, so memory
 * traffic counts as it does in a step); value and derivative (act_grad_kernel: dx = dy f'(x)) */
static void bench_activations(int reps) {
  const int64_t n = 2048 * 1024;
  float *x = randn(n, 21), *dy = randn(n, 22), *y = randn(n, 23);
  printf("\nGELU kernels, one thread, %lld elements (ns per element, median):\n", (long long)n);
  const struct {
    const char *name;
    act_kind kind;
  } acts[] = {{"gelu (erf)", ACT_GELU}, {"gelu (tanh)", ACT_GELU_TANH}};
  for (int a = 0; a < 2; a++) {
    double tf[MAX_REPS], tb[MAX_REPS];
    for (int r = -WARMUP; r < reps; r++) {
      double t0 = now();
      act_kernel(acts[a].kind, x, y, n);
      double t1 = now();
      act_grad_kernel(acts[a].kind, x, dy, y, n);
      double t2 = now();
      if (r >= 0) tf[r] = t1 - t0, tb[r] = t2 - t1;
    }
    printf("%-12s value %6.3f ns  derivative %6.3f ns\n", acts[a].name, median(tf, reps) / (double)n * 1e9,
           median(tb, reps) / (double)n * 1e9);
  }
  free(x), free(dy), free(y);
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 20;
  if (reps < 1 || reps > MAX_REPS) {
    fprintf(stderr, "bench_core: reps must be in 1..%d\n", MAX_REPS);
    return 2;
  }
  dw_describe_machine(stdout);
  printf("bench_core: OMP threads %d, %d reps (median) after %d warm-up\n\n", omp_get_max_threads(), reps, WARMUP);
  printf("linear: ours = dw_linear_* (fwd with bias; bwd = dX + dW + db, accumulating),\n"
         "        raw  = dnnl_sgemm 'N','N' of the same GEMM shapes (bwd: the two GEMMs), no bias/accumulate\n");
  printf("%-9s %5s %5s %5s   %8s %8s   %8s %8s   %7s\n", "pass", "M", "N", "K", "ours ms", "GFLOP/s", "raw ms",
         "GFLOP/s", "ours/raw");
  int M = 1024; /* B*T = 8 x 128 */
  double t768 = bench_linear(M, 768, 768, reps);
  double tup = bench_linear(M, 3072, 768, reps);
  double tdown = bench_linear(M, 768, 3072, reps);
  double t_layer_linear = 4 * t768 + tup + tdown; /* Q, K, V, output projection, FFN up and down */

  /* The default GO model (6 x 256, F 1024) serving one input of 38 tokens (the test split's median length):
   * the GEMM time alone bounds epee-infer's full-depth batch-1 latency from below. */
  const int sM = 38, sD = 256, sF = 1024, sL = 6;
  printf("\nserving at batch 1 (ours = packed weights, as the engine runs them), default GO model, %d tokens:\n", sM);
  double raw_layer, ours_layer = bench_serving_layer(sM, sD, sF, reps, &raw_layer);
  double sflops = 2.0 * sM * sD * (4.0 * sD + 2.0 * sF) * sL;
  printf("GEMMs of all %d layers: ours %.3f ms (%.1f GFLOP/s), raw %.3f ms (%.1f GFLOP/s)\n\n", sL,
         sL * ours_layer * 1e3, sflops / (sL * ours_layer) * 1e-9, sL * raw_layer * 1e3,
         sflops / (sL * raw_layer) * 1e-9);

  int B = 8, T = 128, H = 12, hd = 64;
  double f = 4.0 * B * T * T * H * hd;
  printf("\nattention: B=%d T=%d heads=%d x %d, padding mask; forward %.0f MFLOP (4 B T^2 D), backward 2x\n", B, T, H,
         hd, f * 1e-6);
  printf("%-34s %8s %8s   %8s %8s\n", "case", "fwd ms", "GFLOP/s", "bwd ms", "GFLOP/s");
  struct {
    const char *name;
    float p;
    int grad;
  } cases[] = {{"inference (no grad)", 0.0f, 0}, {"training, no dropout", 0.0f, 1}, {"training, dropout 0.1", 0.1f, 1}};
  attn_times train = {0};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    attn_times t = bench_attention(B, T, H, hd, cases[i].p, cases[i].grad, reps);
    if (cases[i].grad)
      printf("%-34s %8.3f %8.1f   %8.3f %8.1f\n", cases[i].name, t.fwd * 1e3, f / t.fwd * 1e-9, t.bwd * 1e3,
             2 * f / t.bwd * 1e-9);
    else
      printf("%-34s %8.3f %8.1f   %8s %8s\n", cases[i].name, t.fwd * 1e3, f / t.fwd * 1e-9, "-", "-");
    if (cases[i].p > 0.0f) train = t;
  }
  printf("\none BERT-base layer at B*T=%d, training with dropout: linears fwd+bwd %.1f ms, attention fwd+bwd %.1f ms "
         "(%.1f%% of the two)\n",
         M, t_layer_linear * 1e3, (train.fwd + train.bwd) * 1e3,
         100.0 * (train.fwd + train.bwd) / (t_layer_linear + train.fwd + train.bwd));

  printf("\nfused linear epilogues: op_linear_ex against op_linear + op_gelu / op_dropout + op_add, ms (median)\n");
  printf("%-42s %5s %5s %5s   %7s %7s   %9s %7s   %6s\n", "layer", "M", "N", "K", "cmp fwd", "bwd", "fused fwd", "bwd",
         "speed");
  for (int train = 1; train >= 0; train--) {
    const char *mode = train ? "training" : "inference";
    char name[64];
    /* BERT-base (B*T 1024, D 768, F 3072) and the default config (B*T 2048, D 256, F 1024); inference at batch 1 */
    const int shapes_[2][3] = {{1024, 768, 3072}, {2048, 256, 1024}};
    for (int s = 0; s < 2; s++) {
      int Mi = train ? shapes_[s][0] : 128 / (s + 1), D = shapes_[s][1], F = shapes_[s][2];
      snprintf(name, sizeof name, "FFN up + GELU, %s", mode);
      bench_epilogue(name, Mi, F, D, 1, 0.0f, train, reps);
      snprintf(name, sizeof name, "FFN down + dropout + residual, %s", mode);
      bench_epilogue(name, Mi, D, F, 0, train ? 0.1f : 0.0f, train, reps);
    }
  }
  bench_activations(reps);
  dw_shutdown();
  return 0;
}
