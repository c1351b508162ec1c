/* What the trial folders say, gathered into sweep.csv, sweep.md and sweep.svg, and the best trial by a dev-only
 * rule linked as best_model.h5. Test figures are shown, never used to choose. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "train/svg_plot.h"
#include "train/sweep.h"

const char *const trial_status_names[] = {"pending", "done", "interrupted", "failed", "running"};

int sweep_best_parse(const char *s, sweep_best_rule *r, epee_err *e) {
  if (!strcmp(s, "dev-accuracy")) {
    *r = (sweep_best_rule){SWEEP_BEST_DEV_ACCURACY, 0};
    return 0;
  }
  const char *pre = "fastest-within=";
  if (!strncmp(s, pre, strlen(pre))) {
    const char *v = s + strlen(pre);
    char *end;
    double x = strtod(v, &end);
    if (end != v && *end == '%' && end[1] == 0) x /= 100, end++;
    if (end != v && *end == 0 && x >= 0 && x < 1) {
      *r = (sweep_best_rule){SWEEP_BEST_FASTEST_WITHIN, x};
      return 0;
    }
  }
  return epee_errf(e, "--sweep-best '%s': expected dev-accuracy or fastest-within=X (X a fraction such as 0.005, "
                      "or 0.5%%)", s);
}

/* ---- one trial ------------------------------------------------------------------------------------------- */

static int exists(const char *dir, const char *name) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  struct stat st;
  return stat(path, &st) == 0;
}

static json_t *load(const char *dir, const char *name) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
}

/* The number at a path of object keys; an array step takes its last element. NAN when absent. */
static double num_at(json_t *j, const char *const *path) {
  for (; *path && j; path++) {
    j = json_object_get(j, *path);
    if (json_is_array(j)) j = json_array_get(j, json_array_size(j) - 1);
  }
  return json_is_number(j) ? json_number_value(j) : NAN;
}
#define NUM(j, ...) num_at((j), (const char *const[]){__VA_ARGS__, NULL})

void sweep_trial_read(const char *dir, trial_result *r) {
  memset(r, 0, sizeof *r);
  json_t *st = load(dir, "sweep_status.json");
  const char *status = json_string_value(json_object_get(st, "status"));
  r->seconds = NUM(st, "seconds");
  if (!isfinite(r->seconds)) r->seconds = 0;
  const char *error = json_string_value(json_object_get(st, "error"));
  snprintf(r->error, sizeof r->error, "%s", error ? error : "");
  /* done: the sweep saw the trial's process succeed, or (a run made outside the sweep) its results are there */
  if (status ? !strcmp(status, "done") : exists(dir, "results.json") && exists(dir, "model.h5")) r->status = TRIAL_DONE;
  else if (status && !strcmp(status, "failed")) r->status = TRIAL_FAILED;
  else if (exists(dir, "checkpoint.h5")) r->status = TRIAL_INTERRUPTED;
  else r->status = TRIAL_PENDING;
  json_decref(st);

  json_t *sum = load(dir, "summary.json"), *res = load(dir, "results.json");
  r->dev_acc = NUM(sum, "dev", "accuracy");
  r->dev_f1 = NUM(sum, "dev", "macro_f1");
  r->test_acc = NUM(sum, "test", "accuracy");
  json_t *ep = json_object_get(json_object_get(res, "policies"), "epee");
  r->has_epee = ep != NULL;
  r->tau = NUM(ep, "tau");
  r->patience = (int)NUM(ep, "patience");
  r->epee_dev_acc = NUM(ep, "dev", "accuracy");
  r->mean_exit = NUM(ep, "dev", "mean_exit_layer");
  r->layer_speedup = NUM(ep, "dev", "layer_speedup");
  r->wall_speedup = NUM(ep, "test", "wall_speedup_batch1");
  r->epee_test_acc = NUM(ep, "test", "accuracy");
  json_decref(sum), json_decref(res);
}

int sweep_trial_record(const char *dir, trial_status s, const char *error, double seconds, epee_err *e) {
  json_t *o = json_pack("{s:s, s:s, s:f}", "status", trial_status_names[s], "error", error ? error : "", "seconds",
                        round(seconds * 10) / 10);
  char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
  json_decref(o);
  char path[4200];
  snprintf(path, sizeof path, "%s/sweep_status.json", dir);
  int rc = atomic_write_text(path, text, e);
  free(text);
  return rc;
}

/* ---- choosing ------------------------------------------------------------------------------------------- */

static int usable(const trial_result *r) {
  return r->status == TRIAL_DONE && r->has_epee && isfinite(r->epee_dev_acc);
}

/* By the rule, on dev figures only (the wall-clock speed-up is a timing of inputs, labels unused). */
static int choose(const trial_result *r, int n, const sweep_best_rule *rule) {
  int best = -1;
  for (int t = 0; t < n; t++)
    if (usable(&r[t]) && (best < 0 || r[t].epee_dev_acc > r[best].epee_dev_acc ||
                          (r[t].epee_dev_acc == r[best].epee_dev_acc && r[t].layer_speedup > r[best].layer_speedup)))
      best = t;
  if (best < 0 || rule->kind == SWEEP_BEST_DEV_ACCURACY) return best;
  double floor_acc = r[best].epee_dev_acc - rule->within - 1e-12;
  int fast = best;
  for (int t = 0; t < n; t++)
    if (usable(&r[t]) && r[t].epee_dev_acc >= floor_acc && r[t].wall_speedup > r[fast].wall_speedup) fast = t;
  return fast;
}

/* Trials no other dominates (at least as accurate and as fast, better in one); front[] flags them. */
static void pareto(const trial_result *r, int n, int *front) {
  for (int t = 0; t < n; t++) {
    front[t] = usable(&r[t]) && isfinite(r[t].wall_speedup);
    for (int u = 0; u < n && front[t]; u++)
      if (u != t && usable(&r[u]) && isfinite(r[u].wall_speedup) && r[u].epee_dev_acc >= r[t].epee_dev_acc &&
          r[u].wall_speedup >= r[t].wall_speedup &&
          (r[u].epee_dev_acc > r[t].epee_dev_acc || r[u].wall_speedup > r[t].wall_speedup))
        front[t] = 0;
  }
}

/* ---- the files ------------------------------------------------------------------------------------------- */

static void csv_field(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\n\r")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

/* The value of parameter `key` in a trial ("key=value" in set[]). */
static const char *value_of(const sweep_trial *t, const char *key) {
  size_t n = strlen(key);
  for (int i = 0; i < t->n; i++)
    if (!strncmp(t->set[i], key, n) && t->set[i][n] == '=') return t->set[i] + n + 1;
  return "";
}

/* %.4f, or empty when the figure is missing */
static void fmt(char *buf, size_t n, const char *f, double v) {
  if (isfinite(v)) snprintf(buf, n, f, v);
  else buf[0] = 0;
}

static const char *const columns[] = {
    "status", "seconds", "dev_acc_last", "dev_f1_last", "epee_tau", "epee_patience", "epee_dev_acc",
    "epee_dev_mean_exit", "epee_dev_layer_speedup", "epee_wall_speedup_b1", "test_acc_last", "epee_test_acc", NULL};

/* The row's figures as text, in `columns` order. */
static void row_text(const trial_result *r, char out[][32]) {
  int has = r->has_epee;
  snprintf(out[0], 32, "%s", trial_status_names[r->status]);
  fmt(out[1], 32, "%.1f", r->seconds > 0 ? r->seconds : NAN);
  fmt(out[2], 32, "%.4f", r->dev_acc);
  fmt(out[3], 32, "%.4f", r->dev_f1);
  fmt(out[4], 32, "%.4g", has ? r->tau : NAN);
  fmt(out[5], 32, "%.0f", has ? r->patience : NAN);
  fmt(out[6], 32, "%.4f", r->epee_dev_acc);
  fmt(out[7], 32, "%.2f", r->mean_exit);
  fmt(out[8], 32, "%.2f", r->layer_speedup);
  fmt(out[9], 32, "%.2f", r->wall_speedup);
  fmt(out[10], 32, "%.4f", r->test_acc);
  fmt(out[11], 32, "%.4f", r->epee_test_acc);
}
enum { N_COLUMNS = 12 };

static int write_csv(const sweep_plan *p, const trial_result *r, const char *path, epee_err *e) {
  atomic_file a;
  if (!atomic_open(&a, path, e)) return -1;
  fputs("trial,folder", a.f);
  for (int i = 0; i < p->n_params; i++) fputc(',', a.f), csv_field(a.f, p->params[i].key);
  for (int c = 0; columns[c]; c++) fprintf(a.f, ",%s", columns[c]);
  fputs(",error\n", a.f);
  for (int t = 0; t < p->n_trials; t++) {
    char cells[N_COLUMNS][32];
    row_text(&r[t], cells);
    fprintf(a.f, "%d,", t + 1);
    csv_field(a.f, p->trials[t].name);
    for (int i = 0; i < p->n_params; i++) fputc(',', a.f), csv_field(a.f, value_of(&p->trials[t], p->params[i].key));
    for (int c = 0; c < N_COLUMNS; c++) fputc(',', a.f), csv_field(a.f, cells[c]);
    fputc(',', a.f);
    csv_field(a.f, r[t].error);
    fputc('\n', a.f);
  }
  return atomic_commit(&a, e);
}

static void md_cell(FILE *f, const char *s) {
  fputs(" ", f);
  for (; *s; s++) fputs(*s == '|' ? "\\|" : (char[]){*s, 0}, f);
  fputs(" |", f);
}

static int write_md(const sweep_plan *p, const trial_result *r, const int *front, int best, const sweep_best_rule *rule,
                    const char *path, epee_err *e) {
  atomic_file a;
  if (!atomic_open(&a, path, e)) return -1;
  FILE *f = a.f;
  int done = 0, failed = 0;
  for (int t = 0; t < p->n_trials; t++) done += r[t].status == TRIAL_DONE, failed += r[t].status == TRIAL_FAILED;
  fprintf(f, "# Sweep %s: %d trials (%s), %d done, %d failed\n\n", p->dir, p->n_trials,
          p->method == SWEEP_RANDOM ? "random" : "grid", done, failed);
  fprintf(f, "Base config `%s`", p->config);
  for (int i = 0; i < p->n_fixed; i++) fprintf(f, "%s`%s`", i ? ", " : " with ", p->fixed[i]);
  fprintf(f, ". EPEE = the policy calibrated on dev by the run's rule; its accuracy, mean exit layer and layer "
             "speed-up are on dev; the wall-clock speed-up (batch 1, against the last exit) is timed on the test "
             "inputs (labels unused). Test accuracy is shown, never used to choose. Pareto: no other trial is both "
             "as accurate on dev and as fast.\n\n");
  fprintf(f, "| # |");
  for (int i = 0; i < p->n_params; i++) md_cell(f, p->params[i].key);
  fprintf(f, " status | time (s) | dev acc (last exit) | dev F1 (last exit) | tau | p | EPEE dev acc | mean exit "
             "layer | layer speed-up | wall speed-up | test acc (last exit) | EPEE test acc | Pareto |\n|---|");
  for (int i = 0; i < p->n_params + N_COLUMNS + 1; i++) fputs("---|", f);
  fputc('\n', f);
  for (int t = 0; t < p->n_trials; t++) {
    char cells[N_COLUMNS][32];
    row_text(&r[t], cells);
    fprintf(f, "| %d%s |", t + 1, t == best ? " (best)" : "");
    for (int i = 0; i < p->n_params; i++) md_cell(f, value_of(&p->trials[t], p->params[i].key));
    for (int c = 0; c < N_COLUMNS; c++) md_cell(f, cells[c]);
    md_cell(f, front[t] ? "*" : "");
    fputc('\n', f);
  }
  for (int t = 0; t < p->n_trials; t++)
    if (r[t].status == TRIAL_FAILED) fprintf(f, "\nTrial %d (%s) failed: %s\n", t + 1, p->trials[t].name, r[t].error);
  if (best >= 0) {
    fprintf(f, "\nBest by ");
    if (rule->kind == SWEEP_BEST_DEV_ACCURACY) fprintf(f, "dev accuracy of the calibrated EPEE policy");
    else fprintf(f, "the fastest (wall-clock) within %.4g of the best EPEE dev accuracy", rule->within);
    fprintf(f, ": trial %d, `%s` (best_model.h5).\n", best + 1, p->trials[best].name);
  }
  return atomic_commit(&a, e);
}

static int by_speed(const void *a, const void *b) {
  const double *x = a, *y = b;
  return (x[0] > y[0]) - (x[0] < y[0]);
}

static int write_svg(const sweep_plan *p, const trial_result *r, const int *front, int best, const char *path,
                     epee_err *e) {
  int n = p->n_trials, m = 0, nf = 0, ring = -1;
  double *x = epee_malloc(sizeof(double) * (size_t)n * 4), *y = x + n, *fr = y + n; /* fr: (x, y) pairs */
  const char **labels = epee_malloc(sizeof(char *) * (size_t)n);
  char (*text)[16] = epee_malloc(sizeof(*text) * (size_t)n);
  for (int t = 0; t < n; t++) {
    if (!usable(&r[t]) || !isfinite(r[t].wall_speedup)) continue;
    if (t == best) ring = m;
    snprintf(text[m], sizeof text[m], "#%d", t + 1);
    labels[m] = text[m];
    x[m] = r[t].wall_speedup, y[m] = 100 * r[t].epee_dev_acc;
    m++;
    if (front[t]) fr[2 * nf] = r[t].wall_speedup, fr[2 * nf + 1] = 100 * r[t].epee_dev_acc, nf++;
  }
  qsort(fr, (size_t)nf, 2 * sizeof(double), by_speed);
  double *fx = epee_malloc(sizeof(double) * (size_t)(2 * nf + 1)), *fy = fx + nf;
  for (int i = 0; i < nf; i++) fx[i] = fr[2 * i], fy[i] = fr[2 * i + 1];
  svg_series s[2] = {
      {.name = "trial (#k = row k of sweep.md)", .x = x, .y = y, .n = m, .ring = ring, .labels = labels},
      {.name = "Pareto front", .x = fx, .y = fy, .n = nf, .lx = fx, .ly = fy, .ln = nf, .ring = -1},
  };
  char title[300];
  snprintf(title, sizeof title, "Sweep %.200s: EPEE dev accuracy vs wall-clock speed-up", p->dir);
  svg_plot_spec spec = {.title = title, .xlabel = "wall-clock speed-up, batch 1 (x, against the last exit)",
                        .ylabel = "EPEE dev accuracy (%)", .ring_label = best >= 0 ? "best_model.h5" : NULL};
  atomic_file a;
  int rc = -1;
  if (atomic_open(&a, path, e)) {
    if (svg_plot_write(a.f, &spec, s, 2)) atomic_abort(&a), epee_errf(e, "%s: cannot write", path);
    else rc = atomic_commit(&a, e);
  }
  free(x), free(labels), free(text), free(fx);
  return rc;
}

/* best_model.h5 -> TRIAL/model.h5, relative so the sweep folder can move; replaced atomically. */
static int link_best(const sweep_plan *p, int best, epee_err *e) {
  char link[4200], tmp[4300], target[600];
  snprintf(link, sizeof link, "%s/best_model.h5", p->dir);
  if (best < 0) {
    unlink(link); /* no trial qualifies (yet): no stale choice left behind */
    return 0;
  }
  snprintf(target, sizeof target, "%s/model.h5", p->trials[best].name);
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", link, (long)getpid());
  unlink(tmp);
  if (symlink(target, tmp) || rename(tmp, link)) {
    int err = errno;
    unlink(tmp);
    return epee_errf(e, "%s: cannot link to %s: %s", link, target, strerror(err));
  }
  return 0;
}

int sweep_report(const sweep_plan *p, const sweep_best_rule *rule, const trial_result *r, int *best, epee_err *e) {
  int *front = epee_malloc(sizeof(int) * (size_t)p->n_trials);
  pareto(r, p->n_trials, front);
  *best = choose(r, p->n_trials, rule);
  char path[4200];
  int rc = 0;
  snprintf(path, sizeof path, "%s/sweep.csv", p->dir);
  rc = rc ? rc : write_csv(p, r, path, e);
  snprintf(path, sizeof path, "%s/sweep.md", p->dir);
  rc = rc ? rc : write_md(p, r, front, *best, rule, path, e);
  snprintf(path, sizeof path, "%s/sweep.svg", p->dir);
  rc = rc ? rc : write_svg(p, r, front, *best, path, e);
  rc = rc ? rc : link_best(p, *best, e);
  free(front);
  return rc;
}
