/* epee-infer: serve a model file with batched early exit. See --help. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dnnl_wrap.h"
#include "core/progress.h"
#include "data/dataset.h"
#include "infer/engine.h"
#include "infer/metrics.h"
#include "infer/model_file.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: epee-infer MODEL.h5 [options]\n"
          "  --input FILE|-        TSV (header line) or JSONL (.jsonl) with a text column; '-' reads TSV from stdin\n"
          "  --text-column C       default text;  --text-b-column C: second segment (default none)\n"
          "  --label-column C      default label; when present, accuracy / macro-F1 / speed-up are printed\n"
          "  --policy P            none|entropy|patience|epee|pcee (default: the calibrated one in the file)\n"
          "  --tau T --patience N  override the policy's parameters\n"
          "  --batch B             batch size (default 64)\n"
          "  --output FILE         predictions as JSON Lines (default stdout when no gold labels, else none)\n"
          "  --bench               latency p50/p90/p99 at batch 1 and throughput at batch B, full depth and early exit\n"
          "  --threads N           OpenMP threads (default 2)\n");
}

typedef struct {
  const char *model, *input, *text_col, *text_b_col, *label_col, *output, *policy;
  double tau;
  int patience, batch, bench, threads;
} options;

static int parse_args(int argc, char **argv, options *o) {
  *o = (options){.text_col = "text", .label_col = "label", .tau = -1, .patience = -1, .batch = 64, .threads = 2};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (strcmp(a, name) == 0 && (v || (fprintf(stderr, "epee-infer: %s needs a value\n", name), 0)))
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      exit(0);
    } else if (!strcmp(a, "--bench")) {
      o->bench = 1;
    } else if (OPT("--input")) o->input = v, i++;
    else if (OPT("--text-column")) o->text_col = v, i++;
    else if (OPT("--text-b-column")) o->text_b_col = v, i++;
    else if (OPT("--label-column")) o->label_col = v, i++;
    else if (OPT("--output")) o->output = v, i++;
    else if (OPT("--policy")) o->policy = v, i++;
    else if (OPT("--tau")) o->tau = atof(v), i++;
    else if (OPT("--patience")) o->patience = atoi(v), i++;
    else if (OPT("--batch")) o->batch = atoi(v), i++;
    else if (OPT("--threads")) o->threads = atoi(v), i++;
    else if (a[0] != '-' && !o->model) o->model = a;
    else {
      fprintf(stderr, "epee-infer: unknown or incomplete option '%s' (see --help)\n", a);
      return -1;
    }
#undef OPT
  }
  if (!o->model) {
    usage(stderr);
    return -1;
  }
  if (o->batch < 1 || o->batch > 4096 || o->threads < 1 || o->threads > 256) {
    fprintf(stderr, "epee-infer: --batch must be in [1, 4096] and --threads in [1, 256]\n");
    return -1;
  }
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* per-example latency at batch 1 over the first n examples: p50, p90, p99 in ms */
static void latency(engine *g, const ds_encoded *d, int n, const epee_policy *p, double *pct) {
  double *t = epee_malloc(sizeof(double) * (size_t)n);
  int32_t *ids = epee_malloc(sizeof(int32_t) * (size_t)d->max_len), *ty = epee_malloc(sizeof(int32_t) * (size_t)d->max_len);
  float *mask = epee_malloc(sizeof(float) * (size_t)d->max_len);
  for (int i = 0; i < n; i++) {
    ds_batch b = {.idx = &i, .n = 1, .max_len = d->len[i]};
    ds_fill_batch(d, &b, ids, ty, mask, NULL);
    model_batch mb = {.B = 1, .T = d->len[i], .ids = ids, .type_ids = ty, .mask = mask};
    int lab, lay;
    double t0 = now_seconds();
    engine_classify(g, &mb, p, &lab, &lay, NULL);
    t[i] = 1e3 * (now_seconds() - t0);
  }
  qsort(t, (size_t)n, sizeof(double), cmp_double);
  pct[0] = t[n / 2], pct[1] = t[(int)(0.9 * (n - 1))], pct[2] = t[(int)(0.99 * (n - 1))];
  free(t), free(ids), free(ty), free(mask);
}

static int write_predictions(const char *path, const ds_encoded *d, const model_meta *meta, const int *pred,
                             const int *layers, const float *probs, epee_err *e) {
  char tmp[4200];
  FILE *f = stdout;
  if (path) {
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (!(f = fopen(tmp, "w"))) return epee_errf(e, "%s: cannot write", tmp);
  }
  int C = meta->n_labels;
  for (int i = 0; i < d->n; i++)
    fprintf(f, "{\"label\":\"%s\",\"confidence\":%.6f,\"exit_layer\":%d}\n", meta->labels[pred[i]],
            probs[(size_t)i * C + pred[i]], layers[i]);
  if (path && (fclose(f) != 0 || rename(tmp, path) != 0)) {
    remove(tmp);
    return epee_errf(e, "%s: cannot write", path);
  }
  return 0;
}

int main(int argc, char **argv) {
  options o;
  if (parse_args(argc, argv, &o)) return 2;
  omp_set_num_threads(o.threads);
  epee_err e = {{0}};
  model m = {0};
  model_meta meta = {0};
  wp_tokenizer *tok = NULL;
  ds_raw raw = {0};
  ds_encoded enc = {0};
  engine g = {0};
  int rc = 1;
  char stdin_path[64] = "";
  if (model_file_read(o.model, &m, &meta, &e)) goto fail;
  epee_policy pol = meta.policy;
  if (o.policy && epee_policy_parse(o.policy, &pol.kind)) {
    epee_errf(&e, "--policy '%s': expected none, entropy, patience, epee or pcee", o.policy);
    goto fail;
  }
  if (o.tau >= 0) pol.tau = (float)o.tau;
  if (o.patience >= 0) pol.patience = o.patience;
  if (epee_policy_validate(&pol, "--policy", &e)) goto fail;
  printf("model %s: %s, %d layers, %d labels; policy %s (tau %g, patience %d)\n", o.model, meta.arch, m.n_layers,
         meta.n_labels, epee_policy_name(pol.kind), pol.tau, pol.patience);
  if (!o.input) {
    rc = 0;
    goto done;
  }
  const char *input = o.input;
  if (!strcmp(input, "-")) { /* stdin -> a temp TSV, so the reader reports file:line as usual */
    snprintf(stdin_path, sizeof stdin_path, "/tmp/epee-infer-stdin-%ld.tsv", (long)getpid());
    FILE *f = fopen(stdin_path, "w");
    if (!f) {
      epee_errf(&e, "%s: cannot write", stdin_path);
      goto fail;
    }
    char buf[1 << 16];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, k, f);
    fclose(f);
    input = stdin_path;
  }
  size_t total = 0;
  for (int i = 0; i < meta.n_vocab; i++) total += strlen(meta.vocab[i]) + 1;
  char *vb = epee_malloc(total + 1), *p = vb;
  for (int i = 0; i < meta.n_vocab; i++) p += sprintf(p, "%s\n", meta.vocab[i]);
  tok = wp_load_buffer(vb, total, &e);
  free(vb);
  if (!tok) goto fail;
  ds_columns cols = {.text_col = o.text_col, .text_b_col = o.text_b_col, .label_col = o.label_col,
                     .allow_missing_label = 1};
  double t0 = now_seconds();
  if (ds_read(input, &cols, meta.labels, meta.n_labels, &raw, &e) || ds_encode(&raw, tok, meta.max_length, &enc, &e))
    goto fail;
  double t_tok = now_seconds() - t0;
  if (enc.n == 0) {
    epee_errf(&e, "%s: no examples", o.input);
    goto fail;
  }
  int gold = enc.labels[0] >= 0;
  if (engine_init(&g, &m, o.batch, enc.max_len, &e)) goto fail;
  int N = enc.n, C = meta.n_labels, L = m.n_layers;
  int *pred = epee_malloc(sizeof(int) * (size_t)N), *lay = epee_malloc(sizeof(int) * (size_t)N);
  int *pred0 = epee_malloc(sizeof(int) * (size_t)N), *lay0 = epee_malloc(sizeof(int) * (size_t)N);
  float *probs = epee_malloc(sizeof(float) * (size_t)N * C);
  epee_policy none = {EPEE_POLICY_NONE, 0, 0};
  double t_pol = engine_classify_dataset(&g, &enc, o.batch, &pol, pred, lay, probs);
  printf("%d inputs (%d truncated to %d tokens): tokenised in %.3f s, classified in %.3f s at batch %d "
         "(%.1f inputs/s)\n", N, enc.n_truncated, meta.max_length, t_tok, t_pol, o.batch, N / t_pol);
  if (gold) {
    double t_none = engine_classify_dataset(&g, &enc, o.batch, &none, pred0, lay0, NULL);
    double s = 0;
    for (int i = 0; i < N; i++) s += lay[i];
    printf("accuracy %.4f  macro-F1 %.4f  mean exit layer %.2f / %d  layer speed-up %.2fx  wall-clock speed-up "
           "%.2fx (vs policy none: accuracy %.4f, %.3f s)\n",
           metric_accuracy(enc.labels, pred, N), metric_macro_f1(enc.labels, pred, N, C), s / N, L, L * N / s,
           t_none / t_pol, metric_accuracy(enc.labels, pred0, N), t_none);
  }
  if ((o.output || !gold) && write_predictions(o.output, &enc, &meta, pred, lay, probs, &e)) goto fail_free;
  if (o.bench) {
    int n1 = N < 1000 ? N : 1000;
    double pn[3], pp[3];
    latency(&g, &enc, n1, &none, pn);
    latency(&g, &enc, n1, &pol, pp);
    double tn = engine_classify_dataset(&g, &enc, o.batch, &none, pred0, lay0, NULL);
    double tp = engine_classify_dataset(&g, &enc, o.batch, &pol, pred0, lay0, NULL);
    printf("\nbench (%d threads)      | p50 ms | p90 ms | p99 ms | batch-1 n | throughput at batch %d (inputs/s)\n",
           o.threads, o.batch);
    printf("full depth (none)       | %6.2f | %6.2f | %6.2f | %9d | %.1f\n", pn[0], pn[1], pn[2], n1, N / tn);
    printf("early exit (%-8s)    | %6.2f | %6.2f | %6.2f | %9d | %.1f\n", epee_policy_name(pol.kind), pp[0], pp[1],
           pp[2], n1, N / tp);
    printf("speed-up                | %6.2fx |        |        |           | %.2fx\n", pn[0] / pp[0], tn / tp);
    printf("tokenisation: %.1f us per input (not included above)\n", 1e6 * t_tok / N);
  }
  rc = 0;
fail_free:
  free(pred), free(lay), free(pred0), free(lay0), free(probs);
  if (rc) goto fail;
  goto done;
fail:
  fprintf(stderr, "epee-infer: %s\n", e.msg);
  rc = 1;
done:
  if (stdin_path[0]) remove(stdin_path);
  engine_free(&g);
  ds_encoded_free(&enc);
  ds_raw_free(&raw);
  wp_free(tok);
  if (m.impl) model_free(&m);
  model_meta_free(&meta);
  dw_shutdown();
  return rc;
}
