/* epee-infer: serve a model file with batched early exit; see usage(). */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dnnl_wrap.h"
#include "core/json.h"
#include "core/progress.h"
#include "data/dataset.h"
#include "data/utf8.h"
#include "infer/engine.h"
#include "infer/epee.h"
#include "infer/metrics.h"
#include "infer/model_file.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: epee-infer MODEL.h5 [--input FILE.tsv|FILE.jsonl|-|FILE.npz|DIR|IMAGE.png ...] [options]\n"
          "Classifies every input of FILE with the model's early-exit engine and writes one JSON line per input,\n"
          "in input order: {\"id\": ..., \"label\": ..., \"confidence\": ..., \"exit_layer\": ..., \"ms\": ...} (id: the\n"
          "--id-column value, else the input's line number; ms: from the start of its batch until its answer was\n"
          "ready; image models give \"file\" instead of \"id\"). Without --input it describes the model.\n"
          "  --input FILE|-        text models: TSV with a header line, or JSON Lines (.jsonl/.json/.ndjson); '-'\n"
          "                        reads stdin (JSON Lines if it starts with '{', else TSV)\n"
          "  --input FILE.npz      image models: a MedMNIST-layout .npz, the split of --split (gold labels)\n"
          "  --input DIR           image models: a folder of class subfolders of PNGs (ImageFolder; gold labels)\n"
          "  --input IMAGE.png     image models: PNG files, unlabelled (repeat --input for more)\n"
          "  --split S             the .npz split: train, val or test (default test)\n"
          "  --text-column C       the text column or key (default text)\n"
          "  --text-b-column C     second segment of text pairs (default none)\n"
          "  --id-column C         the id each prediction carries (default: the line number in FILE)\n"
          "  --all-probs           add \"probs\": every class's probability, by label\n"
          "  --label-column C      gold labels (default label, used when present): then accuracy, macro-F1,\n"
          "                        mean exit layer, layer speed-up and the wall-clock speed-up against policy\n"
          "                        none (both timed on the same inputs in this run) are reported\n"
          "  --policy P            none|entropy|patience|epee|pcee (default: the one calibrated on dev, in the file)\n"
          "  --tau T               entropy threshold in [0, 1] (default: the file's)\n"
          "  --patience N          patience in layers, >= 1 (default: the file's)\n"
          "  --batch B             inputs per batch, length-sorted, each padded to its own longest (default 64)\n"
          "  --output FILE         predictions to FILE (written to a temp file, then renamed) instead of stdout\n"
          "  --tokenize            print, per input, the ids the model sees ({\"ids\": [...]}, specials included,\n"
          "                        truncated to the model's max length) instead of classifying\n"
          "  --bench               also latency p50/p90/p99 at batch 1 and throughput at batch B, full depth and\n"
          "                        early exit, with the tokenisation time measured apart\n"
          "  --threads N           OpenMP threads for the kernels (default: OMP_NUM_THREADS or all cores)\n"
          "  --help, --version     this text; the version\n"
          "The report goes to stdout when predictions go to --output, else to stderr. Exit status: 0 ok,\n"
          "1 bad model or input file, 2 bad command line.\n");
}

typedef struct {
  const char **inputs; /* every --input (several only for PNG files) */
  int n_inputs;
  const char *split;
  const char *model, *input, *text_col, *text_b_col, *label_col, *id_col, *output, *policy;
  int label_col_given, batch, bench, tokenize, threads, all_probs;
  int has_tau, has_patience, patience;
  float tau;
} options;

/* ---- command line ------------------------------------------------------------------------------------- */

static int bad_value(const char *opt, const char *v, const char *expected) {
  fprintf(stderr, "epee-infer: %s must be %s, got '%s' (see --help)\n", opt, expected, v);
  return -1;
}

static int parse_int(const char *opt, const char *v, long lo, long hi, int *out) {
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  char what[96];
  snprintf(what, sizeof what, "in [%ld, %ld] (an integer)", lo, hi);
  if (end == v || *end || errno || x < lo || x > hi) return bad_value(opt, v, what);
  *out = (int)x;
  return 0;
}

static int parse_args(int argc, char **argv, options *o) {
  *o = (options){.text_col = "text", .label_col = "label", .batch = 64, .split = "test"};
  o->inputs = epee_malloc(sizeof(char *) * (size_t)argc);
  static const char *valued[] = {"--input",  "--split", "--text-column", "--text-b-column", "--label-column",
                                 "--id-column", "--output", "--policy", "--tau", "--patience", "--batch", "--threads"};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      exit(0);
    }
    if (!strcmp(a, "--version")) {
      printf("epee-infer %s\n", epee_version());
      exit(0);
    }
    if (!strcmp(a, "--bench") || !strcmp(a, "--tokenize") || !strcmp(a, "--all-probs")) {
      *(a[2] == 'b' ? &o->bench : a[2] == 't' ? &o->tokenize : &o->all_probs) = 1;
      continue;
    }
    if (a[0] != '-' || !a[1]) { /* a positional argument ("-" alone is not an option) */
      if (o->model) {
        fprintf(stderr, "epee-infer: unexpected argument '%s' (one MODEL.h5; see --help)\n", a);
        return -1;
      }
      o->model = a;
      continue;
    }
    char name[64];
    const char *eq = strchr(a, '=');
    size_t nl = eq ? (size_t)(eq - a) : strlen(a);
    snprintf(name, sizeof name, "%.*s", (int)(nl < sizeof name ? nl : sizeof name - 1), a);
    int known = 0;
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) known |= !strcmp(name, valued[k]);
    if (!known) {
      fprintf(stderr, "epee-infer: unknown or incomplete option '%s' (see --help)\n", a);
      return -1;
    }
    if (eq)
      v = eq + 1;
    else if (i + 1 < argc)
      v = argv[++i];
    else {
      fprintf(stderr, "epee-infer: %s needs a value (see --help)\n", name);
      return -1;
    }
    if (!strcmp(name, "--input")) o->input = o->inputs[o->n_inputs++] = v;
    else if (!strcmp(name, "--split")) {
      if (strcmp(v, "train") && strcmp(v, "val") && strcmp(v, "test")) return bad_value(name, v, "train, val or test");
      o->split = v;
    }
    else if (!strcmp(name, "--text-column")) o->text_col = v;
    else if (!strcmp(name, "--text-b-column")) o->text_b_col = v;
    else if (!strcmp(name, "--label-column")) o->label_col = v, o->label_col_given = 1;
    else if (!strcmp(name, "--id-column")) o->id_col = v;
    else if (!strcmp(name, "--output")) o->output = v;
    else if (!strcmp(name, "--policy")) {
      epee_policy_kind k;
      if (epee_policy_parse(v, &k)) return bad_value(name, v, "one of none, entropy, patience, epee, pcee");
      o->policy = v;
    } else if (!strcmp(name, "--tau")) {
      char *end;
      double x = strtod(v, &end);
      if (end == v || *end || !(x >= 0 && x <= 1)) return bad_value(name, v, "in [0, 1] (a number)");
      o->tau = (float)x, o->has_tau = 1;
    } else if (!strcmp(name, "--patience")) {
      if (parse_int(name, v, 1, 1 << 20, &o->patience)) return -1;
      o->has_patience = 1;
    } else if (!strcmp(name, "--batch")) {
      if (parse_int(name, v, 1, 4096, &o->batch)) return -1;
    } else if (parse_int(name, v, 1, 1024, &o->threads)) /* --threads */
      return -1;
  }
  if (!o->model) {
    fprintf(stderr, "epee-infer: no model file given\n");
    usage(stderr);
    return -1;
  }
  if ((o->output || o->tokenize) && !o->input) {
    fprintf(stderr, "epee-infer: %s needs --input\n", o->output ? "--output" : "--tokenize");
    return -1;
  }
  return 0;
}

/* ---- input from stdin ---------------------------------------------------------------------------------- */

/* The readers take a path and pick the format by extension: stdin goes to a private temp file named
 * by its first character ('{': JSON Lines). tmp_dir gets the directory to remove afterwards. */
static int stdin_to_file(char *path, size_t len, char *tmp_dir, size_t dlen, epee_err *e) {
  const char *base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(tmp_dir, dlen, "%s/epee-infer-XXXXXX", base);
  if (!mkdtemp(tmp_dir)) {
    tmp_dir[0] = '\0';
    return epee_errf(e, "<stdin>: cannot create a temp directory under %s: %s", base, strerror(errno));
  }
  char buf[1 << 16];
  size_t k = fread(buf, 1, sizeof buf, stdin);
  size_t s = 0;
  while (s < k && (buf[s] == ' ' || buf[s] == '\t' || buf[s] == '\r' || buf[s] == '\n')) s++;
  snprintf(path, len, "%s/stdin.%s", tmp_dir, s < k && buf[s] == '{' ? "jsonl" : "tsv");
  FILE *f = fopen(path, "wb");
  if (!f) return epee_errf(e, "%s: cannot write: %s", path, strerror(errno));
  int ok = 1;
  for (; k > 0; k = fread(buf, 1, sizeof buf, stdin)) ok &= fwrite(buf, 1, k, f) == k;
  ok &= !ferror(stdin);
  ok &= fclose(f) == 0;
  return ok ? 0 : epee_errf(e, "<stdin>: reading or copying to %s failed", path);
}

/* messages name "<stdin>", not the temp file */
static void rename_in_msg(epee_err *e, const char *tmp_path) {
  size_t n = strlen(tmp_path);
  if (strncmp(e->msg, tmp_path, n) != 0) return;
  char rest[EPEE_ERR_LEN];
  snprintf(rest, sizeof rest, "%s", e->msg + n);
  snprintf(e->msg, sizeof e->msg, "<stdin>%.1000s", rest);
}

/* ---- output -------------------------------------------------------------------------------------------- */

/* Output goes to path, or stdout when path is NULL. A regular file (or a new one) is written to
 * "<path>.tmp.<pid>" and renamed by close_output, so a reader never sees half a file; anything else (a pipe,
 * /dev/null) is written directly. */
typedef struct {
  FILE *f;
  const char *path;
  char tmp[4200];
} output;

static int open_output(output *o, const char *path, epee_err *e) {
  struct stat st;
  *o = (output){.f = stdout, .path = path};
  if (!path) return 0;
  int direct = stat(path, &st) == 0 && !S_ISREG(st.st_mode);
  if (!direct) snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld", path, (long)getpid());
  if (!(o->f = fopen(direct ? path : o->tmp, "w")))
    return epee_errf(e, "--output %s: cannot write: %s", direct ? path : o->tmp, strerror(errno));
  return 0;
}

static int close_output(output *o, epee_err *e) {
  int ok = fflush(o->f) == 0 && !ferror(o->f);
  if (o->f != stdout) ok &= fclose(o->f) == 0;
  if (o->tmp[0]) {
    if (ok && rename(o->tmp, o->path) != 0) ok = 0;
    if (!ok) remove(o->tmp);
  }
  return ok ? 0 : epee_errf(e, "--output %s: writing failed (disk full?)", o->path ? o->path : "stdout");
}

/* One line per input, input order: its id (the id column's value, else its line number) or image file. */
static int write_predictions(const char *path, const model_meta *meta, const ds_raw *raw, char *const *files,
                             int all_probs, int N, const int *pred, const int *layers, const float *probs,
                             const float *ms, epee_err *e) {
  output out;
  if (open_output(&out, path, e)) return -1;
  int C = meta->n_labels;
  for (int i = 0; i < N; i++) {
    json_t *o = json_object();
    if (files) { /* a file name need not be UTF-8; JSON text must be */
      char *name = utf8_repair(files[i]);
      json_object_set_new(o, "file", json_string(name));
      free(name);
    } else {
      json_object_set_new(o, "id", raw->ids ? json_string(raw->ids[i]) : json_integer(raw->lines[i]));
    }
    json_object_set_new(o, "label", json_string(meta->labels[pred[i]]));
    json_object_set_new(o, "confidence", json_num(probs[(size_t)i * C + pred[i]], 6));
    json_object_set_new(o, "exit_layer", json_integer(layers[i]));
    json_object_set_new(o, "ms", json_num(ms[i], 3));
    if (all_probs) {
      json_t *p = json_object();
      for (int c = 0; c < C; c++) json_object_set_new(p, meta->labels[c], json_num(probs[(size_t)i * C + c], 6));
      json_object_set_new(o, "probs", p);
    }
    json_put_line(out.f, o);
  }
  return close_output(&out, e);
}

/* --tokenize: {"ids": [...]} per input, input order. */
static int write_ids(const char *path, const ds_encoded *d, epee_err *e) {
  output out;
  if (open_output(&out, path, e)) return -1;
  for (int i = 0; i < d->n; i++) {
    json_t *a = json_array();
    for (int t = 0; t < d->len[i]; t++) json_array_append_new(a, json_integer(d->ids[d->offset[i] + t]));
    json_put_line(out.f, json_pack("{s:o}", "ids", a));
  }
  return close_output(&out, e);
}

/* ---- measurements -------------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* nearest-rank percentile q in (0, 100] of sorted x[n] */
static double percentile(const double *x, int n, double q) {
  int k = (int)ceil(q / 100.0 * n) - 1;
  return x[k < 0 ? 0 : k];
}

static double mean_int(const int *x, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += x[i];
  return n ? s / n : 0;
}

/* Full depth (pass 0) against policy pol (pass 1) on the same inputs, interleaved batch by batch
 * (engine_run_dataset); the first n inputs of d at batch B. */
static void time_pair(engine *g, const ds_encoded *d, int n, int B, int sweeps, const epee_policy *pol,
                      engine_pass pass[2]) {
  ds_encoded sub = *d;
  sub.n = n;
  pass[0].policy = (epee_policy){EPEE_POLICY_NONE, 0, 0};
  pass[1].policy = *pol;
  engine_run_dataset(g, &sub, B, sweeps, pass, 2);
}

/* Batch-1 latency in ms over the first n inputs, full depth and policy pol: stat_none/stat_pol[4] = p50, p90,
 * p99, mean (the mean's ratio is the batch-1 wall-clock speed-up). */
static void latency(engine *g, const ds_encoded *d, int n, const epee_policy *pol, double *stat_none,
                    double *stat_pol) {
  engine_pass pass[2] = {{.call_seconds = epee_malloc(sizeof(double) * (size_t)n)},
                         {.call_seconds = epee_malloc(sizeof(double) * (size_t)n)}};
  time_pair(g, d, n, 1, ENGINE_TIMING_SWEEPS, pol, pass);
  for (int k = 0; k < 2; k++) {
    double *t = pass[k].call_seconds, *out = k ? stat_pol : stat_none;
    for (int i = 0; i < n; i++) t[i] *= 1e3;
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    out[0] = percentile(t, n, 50), out[1] = percentile(t, n, 90), out[2] = percentile(t, n, 99);
    out[3] = 1e3 * pass[k].seconds / n;
    free(t);
  }
}

/* ---- main ---------------------------------------------------------------------------------------------- */

static void describe(FILE *f, const char *path, const model *m, const model_meta *meta, const epee_policy *p) {
  const model_config *k = &m->cfg;
  fprintf(f, "model %s: %s, %d layers, hidden %d, ", path, m->arch->name, m->n_layers, m->hidden);
  if (meta->tok)
    fprintf(f, "%s tokenizer, max length %d", meta->tok->kind->name, meta->max_length);
  else
    fprintf(f, "%dx%d %s images in %d patches", k->image_size, k->image_size, k->channels == 1 ? "grey" : "RGB",
            model_max_tokens(m) - 1);
  fprintf(f, ", %d labels (", meta->n_labels);
  for (int i = 0; i < meta->n_labels; i++) fprintf(f, "%s%s", i ? ", " : "", meta->labels[i]);
  fprintf(f, "); policy %s (tau %g, patience %d)\n", epee_policy_name(p->kind), (double)p->tau, p->patience);
}

/* Image input: a .npz split, a class folder or PNG files, each image checked against the model (channels,
 * size; resized only if the model file says so); gold labels must be classes of the model. */
static int load_images(const options *o, const model *m, const model_meta *meta, ds_encoded *enc, epee_err *e) {
  img_opts io = {.channels = m->cfg.channels, .size = m->cfg.image_size, .resize = meta->resize};
  img_set im = {0};
  const char *in = o->inputs[0];
  ds_format f = o->n_inputs == 1 ? ds_format_of(in) : DS_PNG;
  int rc;
  if (f == DS_NPZ)
    rc = img_read_npz(in, o->split, &io, &im, e);
  else if (f == DS_IMAGE_FOLDER)
    rc = img_read_png_folder(in, meta->labels, meta->n_labels, &io, &im, e);
  else
    rc = img_read_png_files((char *const *)o->inputs, o->n_inputs, &io, &im, e);
  for (int i = 0; rc == 0 && i < im.n; i++)
    if (im.labels[i] >= meta->n_labels)
      rc = epee_errf(e, "%s: label %d outside the model's %d classes", im.names[i], im.labels[i], meta->n_labels);
  if (rc == 0) ds_from_images(&im, model_max_tokens(m), &meta->norm, enc);
  img_set_free(&im);
  return rc;
}

/* Image files (or folders) given to a text model are refused by name instead of reading PNG bytes as TSV. */
static int is_image_input(const char *path) { return ds_format_of(path) >= DS_NPZ; }

int main(int argc, char **argv) {
  options o;
  if (parse_args(argc, argv, &o)) {
    free(o.inputs);
    return 2;
  }
  if (o.threads) omp_set_num_threads(o.threads);
  epee_err e = {{0}};
  model m = {0};
  model_meta meta = {0};
  ds_raw raw = {0};
  ds_encoded enc = {0};
  engine g = {0};
  int *pred = NULL, *lay = NULL, *pred0 = NULL, rc = 1;
  float *probs = NULL, *ms = NULL;
  char stdin_path[4200] = "", tmp_dir[4096] = "";
  FILE *rep = o.output ? stdout : stderr;
  if (model_file_read(o.model, &m, &meta, &e)) goto done;
  epee_policy pol = meta.policy;
  if (o.policy) epee_policy_parse(o.policy, &pol.kind);
  if (o.has_tau) pol.tau = o.tau;
  if (o.has_patience) pol.patience = o.patience;
  if (epee_policy_validate(&pol, "--policy/--tau/--patience", &e)) goto done;
  if (!o.input) {
    describe(stdout, o.model, &m, &meta, &pol);
    printf("metrics: %s\n", meta.metrics_json);
    rc = 0;
    goto done;
  }
  int images = m.arch->input == MODEL_INPUT_IMAGE;
  if (images && (o.tokenize || !strcmp(o.input, "-") || o.text_b_col || o.label_col_given || o.id_col ||
                 (o.n_inputs == 1 && !is_image_input(o.input)))) {
    epee_errf(&e, "%s: %s is an image model: --input takes a .npz, a folder of class subfolders or PNG files "
                  "(no --tokenize, stdin or text columns)", o.model, m.arch->name);
    goto done;
  }
  if (!images && (o.n_inputs > 1 || is_image_input(o.input))) {
    epee_errf(&e, "--input %s: %s is a text model (%s): it reads one TSV or JSON Lines file, not images", o.input,
              o.model, m.arch->name);
    goto done;
  }
  const char *input = o.input;
  if (!strcmp(input, "-")) {
    if (stdin_to_file(stdin_path, sizeof stdin_path, tmp_dir, sizeof tmp_dir, &e)) goto done;
    input = stdin_path;
  }
  if (o.text_b_col && !model_takes_pairs(&m)) {
    epee_errf(&e, "--text-b-column %s: %s takes no text pairs (token types %d)", o.text_b_col, o.model,
              model_type_vocab(&m));
    goto done;
  }
  ds_columns cols = {.text_col = o.text_col, .text_b_col = o.text_b_col, .label_col = o.label_col,
                     .allow_missing_label = !o.label_col_given, .id_col = o.id_col};
  double t0 = now_seconds(); /* times tokenising, or reading and decoding the images */
  if (images) {
    if (load_images(&o, &m, &meta, &enc, &e)) goto done;
  } else {
    if (ds_read(input, &cols, meta.labels, meta.n_labels, &raw, &e)) goto done;
    t0 = now_seconds();
    if (ds_encode(&raw, meta.tok, meta.max_length, &enc, &e)) goto done;
  }
  double t_tok = now_seconds() - t0;
  if (o.tokenize) {
    rc = write_ids(o.output, &enc, &e) ? 1 : 0;
    goto done;
  }
  int N = enc.n, C = meta.n_labels, L = m.n_layers, B = o.batch < N ? o.batch : N, gold = enc.labels[0] >= 0;
  if (engine_init(&g, &m, B, enc.max_len, &e)) goto done;
  pred = epee_malloc(sizeof(int) * (size_t)N), lay = epee_malloc(sizeof(int) * (size_t)N);
  pred0 = epee_malloc(sizeof(int) * (size_t)N);
  probs = epee_malloc(sizeof(float) * (size_t)N * C);
  ms = epee_malloc(sizeof(float) * (size_t)N);
  describe(rep, o.model, &m, &meta, &pol); /* only now: a failure above leaves exactly one line on stderr */
  if (images)
    fprintf(rep, "input %s%s: %d images, read and decoded in %.3f s (%.1f us per image)\n", o.input,
            o.n_inputs > 1 ? " ..." : "", N, t_tok, 1e6 * t_tok / N);
  else
    fprintf(rep, "input %s: %d inputs (%d truncated to %d tokens), tokenised in %.3f s (%.1f us per input)\n",
            o.input, N, enc.n_truncated, meta.max_length, t_tok, 1e6 * t_tok / N);

  /* The first pass also warms up every shape full depth uses (each batch's first layer has all its rows),
   * so the timed passes below compare warm engines. */
  double t_pol = engine_classify_dataset(&g, &enc, B, &pol, pred, lay, probs, ms);
  double mean_layer = mean_int(lay, N);
  /* With gold labels or --bench: full depth against the policy on the same inputs, interleaved (and best of
   * three sweeps for --bench). The policy's answers are deterministic (kept from above); its times are taken
   * again, warm. */
  engine_pass tp[2] = {{.label = pred0}, {.ms = ms}};
  if (gold || o.bench) time_pair(&g, &enc, N, B, o.bench ? ENGINE_TIMING_SWEEPS : 1, &pol, tp);
  if (gold) {
    double t_none = tp[0].seconds;
    t_pol = tp[1].seconds;
    fprintf(rep, "policy %-8s accuracy %.4f  macro-F1 %.4f  mean exit layer %.2f / %d  layer speed-up %.2fx  %.3f s\n",
            epee_policy_name(pol.kind), metric_accuracy(enc.labels, pred, N), metric_macro_f1(enc.labels, pred, N, C),
            mean_layer, L, L / mean_layer, t_pol);
    fprintf(rep,
            "policy none     accuracy %.4f  macro-F1 %.4f  mean exit layer %.2f / %d  layer speed-up 1.00x  %.3f s\n",
            metric_accuracy(enc.labels, pred0, N), metric_macro_f1(enc.labels, pred0, N, C), (double)L, L, t_none);
    fprintf(rep, "wall-clock speed-up %.2fx against policy none (batch %d, same inputs, this run)\n", t_none / t_pol,
            B);
  } else {
    fprintf(rep, "policy %-8s mean exit layer %.2f / %d  layer speed-up %.2fx  %.3f s at batch %d (%.1f inputs/s)\n",
            epee_policy_name(pol.kind), mean_layer, L, L / mean_layer, t_pol, B, N / t_pol);
  }
  if (write_predictions(o.output, &meta, &raw, images ? enc.images->names : NULL, o.all_probs, N, pred, lay, probs, ms,
                        &e))
    goto done;

  if (o.bench) {
    int n1 = N < 1000 ? N : 1000;
    double pn[4], pp[4];
    latency(&g, &enc, n1, &pol, pn, pp);
    double tn = tp[0].seconds, tpol = tp[1].seconds;
    fprintf(rep, "\nbench: %d threads; latency at batch 1 over the first %d inputs, throughput at batch %d over %d\n",
            omp_get_max_threads(), n1, B, N);
    fprintf(rep, "%-20s %9s %9s %9s %9s %12s %10s\n", "", "p50 ms", "p90 ms", "p99 ms", "mean ms", "inputs/s",
            "mean exit");
    fprintf(rep, "%-20s %9.3f %9.3f %9.3f %9.3f %12.1f %10.2f\n", "full depth (none)", pn[0], pn[1], pn[2], pn[3],
            N / tn, (double)L);
    char name[32];
    snprintf(name, sizeof name, "early exit (%s)", epee_policy_name(pol.kind));
    fprintf(rep, "%-20s %9.3f %9.3f %9.3f %9.3f %12.1f %10.2f\n", name, pp[0], pp[1], pp[2], pp[3], N / tpol,
            mean_layer);
    fprintf(rep, "%-20s %8.2fx %8.2fx %8.2fx %8.2fx %11.2fx %9.2fx\n", "speed-up", pn[0] / pp[0], pn[1] / pp[1],
            pn[2] / pp[2], pn[3] / pp[3], tn / tpol, L / mean_layer);
    if (images)
      fprintf(rep, "reading + decoding images (not included above): %.1f us per image, %.0f images/s\n",
              1e6 * t_tok / N, N / t_tok);
    else
      fprintf(rep, "tokenisation (%s, not included above): %.1f us per input, %.0f inputs/s\n", meta.tok->kind->name,
              1e6 * t_tok / N, N / t_tok);
  }
  rc = 0;
done:
  if (rc) {
    if (stdin_path[0]) rename_in_msg(&e, stdin_path);
    fprintf(stderr, "epee-infer: %s\n", e.msg);
  }
  if (stdin_path[0]) remove(stdin_path);
  if (tmp_dir[0]) rmdir(tmp_dir);
  free(pred), free(lay), free(pred0), free(probs), free(ms);
  engine_free(&g);
  ds_encoded_free(&enc);
  ds_raw_free(&raw);
  model_free(&m);
  model_meta_free(&meta);
  free(o.inputs);
  dw_shutdown();
  return rc;
}
