#include "train/calibrate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/metrics.h"
#include "train/svg_plot.h"

#define SLACK 1e-9 /* rounding slack for the `within` and `layer_budget` boundaries */

static int uses_tau(epee_policy_kind k) {
  return k == EPEE_POLICY_ENTROPY || k == EPEE_POLICY_EPEE || k == EPEE_POLICY_PCEE;
}
static int uses_patience(epee_policy_kind k) {
  return k == EPEE_POLICY_PATIENCE || k == EPEE_POLICY_EPEE || k == EPEE_POLICY_PCEE;
}

/* Per-(sample, exit) entropy and argmax, computed once: every grid point reuses them. */
typedef struct {
  const int *gold;
  float *H;   /* [N, L] */
  int *label; /* [N, L] */
  int *pred;  /* [N] scratch: the answer of the point being evaluated */
  int N, L, C;
} sim;

/* Simulates policy p on every sample: accuracy, macro-F1 and mean number of layers run. */
static calib_point simulate(sim *s, epee_policy p) {
  long layers = 0;
  for (int n = 0; n < s->N; n++) {
    const float *H = s->H + (size_t)n * s->L;
    const int *y = s->label + (size_t)n * s->L;
    epee_exit_state st;
    epee_exit_state_init(&st);
    int i = 0;
    while (!epee_policy_decide(&p, &st, H[i], y[i], i, s->L)) i++;
    s->pred[n] = y[i];
    layers += i + 1;
  }
  calib_point pt = {.pol = p};
  pt.acc = metric_accuracy(s->gold, s->pred, s->N);
  pt.f1 = metric_macro_f1(s->gold, s->pred, s->N, s->C);
  pt.mean_layers = (double)layers / s->N;
  pt.speedup = s->L / pt.mean_layers;
  return pt;
}

/* 1 if a is preferred to b: first by speed-up (speed_first) or accuracy, then by the other, then the more
 * conservative setting (smaller tau, then larger patience). */
static int preferred(const calib_point *a, const calib_point *b, int speed_first) {
  double a1 = speed_first ? a->speedup : a->acc, b1 = speed_first ? b->speedup : b->acc;
  double a2 = speed_first ? a->acc : a->speedup, b2 = speed_first ? b->acc : b->speedup;
  if (a1 != b1) return a1 > b1;
  if (a2 != b2) return a2 > b2;
  if (a->pol.tau != b->pol.tau) return a->pol.tau < b->pol.tau;
  return a->pol.patience > b->pol.patience;
}

/* Index of the best point in [lo, hi) under rule g, or under the fallback when no point qualifies. */
static int choose(const calib_point *pts, int lo, int hi, const calib_grid *g, double full_acc) {
  int best = -1, any = -1;
  int speed_first = g->rule == CALIB_RULE_FASTEST_WITHIN;
  for (int i = lo; i < hi; i++) {
    int ok = g->rule == CALIB_RULE_MAX_ACCURACY ||
             (g->rule == CALIB_RULE_FASTEST_WITHIN && pts[i].acc >= full_acc - g->within - SLACK) ||
             (g->rule == CALIB_RULE_LAYER_BUDGET && pts[i].mean_layers <= g->layer_budget + SLACK);
    /* fallbacks: fastest_within -> most accurate; layer_budget -> fastest */
    if (any < 0 || preferred(&pts[i], &pts[any], !speed_first)) any = i;
    if (ok && (best < 0 || preferred(&pts[i], &pts[best], speed_first))) best = i;
  }
  return best >= 0 ? best : any;
}

static int check_grid(const calib_grid *g, int N, int L, int C, epee_err *e) {
  if (N < 1 || L < 1 || C < 2)
    return epee_errf(e, "calibrate: need N >= 1 samples, L >= 1 exits and C >= 2 classes (got N=%d, L=%d, C=%d)", N,
                     L, C);
  if (g->n_kinds < 1) return epee_errf(e, "calibrate: policies: expected at least one policy");
  if (g->n_taus < 0 || g->n_pats < 0) return epee_errf(e, "calibrate: negative tau or patience list length");
  int seen[EPEE_POLICY_KINDS] = {0};
  for (int k = 0; k < g->n_kinds; k++) {
    if ((unsigned)g->kinds[k] >= EPEE_POLICY_KINDS)
      return epee_errf(e, "calibrate: policies: unknown kind %d", (int)g->kinds[k]);
    if (seen[g->kinds[k]]++) return epee_errf(e, "calibrate: policies: %s listed twice", epee_policy_name(g->kinds[k]));
    if (uses_tau(g->kinds[k]) && g->n_taus < 1)
      return epee_errf(e, "calibrate: tau: policy %s needs at least one threshold", epee_policy_name(g->kinds[k]));
    if (uses_patience(g->kinds[k]) && g->n_pats < 1 && L < 2)
      return epee_errf(e, "calibrate: patience: empty list means 1..L-1, which is empty for L=1; give values");
  }
  for (int i = 0; i < g->n_taus; i++)
    if (!(isfinite(g->taus[i]) && g->taus[i] >= 0))
      return epee_errf(e, "calibrate: tau[%d] = %g, expected a finite number >= 0", i, (double)g->taus[i]);
  for (int i = 0; i < g->n_pats; i++)
    if (g->pats[i] < 1) return epee_errf(e, "calibrate: patience[%d] = %d, expected an integer >= 1", i, g->pats[i]);
  if ((unsigned)g->rule > CALIB_RULE_LAYER_BUDGET)
    return epee_errf(e, "calibrate: rule: unknown value %d", (int)g->rule);
  if (!isfinite(g->within) || !isfinite(g->layer_budget))
    return epee_errf(e, "calibrate: within and layer_budget must be finite numbers");
  return 0;
}

int calib_run(const float *logits, const int *gold, int N, int L, int C, const calib_grid *g, calib_result *out,
              epee_err *e) {
  memset(out, 0, sizeof *out);
  for (int k = 0; k < EPEE_POLICY_KINDS; k++) out->chosen[k] = -1;
  if (check_grid(g, N, L, C, e)) return -1;
  for (int n = 0; n < N; n++)
    if (gold[n] < 0 || gold[n] >= C)
      return epee_errf(e, "calibrate: gold label of dev sample %d is %d, expected 0..%d", n, gold[n], C - 1);

  int n_pats = g->n_pats ? g->n_pats : L - 1;
  int *pats = epee_malloc(sizeof(int) * (size_t)(n_pats > 0 ? n_pats : 1));
  for (int i = 0; i < n_pats; i++) pats[i] = g->n_pats ? g->pats[i] : i + 1;

  sim s = {.gold = gold, .N = N, .L = L, .C = C};
  s.H = epee_malloc(sizeof(float) * (size_t)N * L);
  s.label = epee_malloc(sizeof(int) * (size_t)N * L);
  s.pred = epee_malloc(sizeof(int) * (size_t)N);
  for (size_t r = 0; r < (size_t)N * L; r++) {
    s.H[r] = epee_normalized_entropy(logits + r * C, C);
    s.label[r] = epee_argmax(logits + r * C, C);
  }
  for (int n = 0; n < N; n++) s.pred[n] = s.label[(size_t)n * L + L - 1];
  out->full_acc = metric_accuracy(gold, s.pred, N);
  out->full_f1 = metric_macro_f1(gold, s.pred, N, C);

  int cap = 0;
  for (int k = 0; k < g->n_kinds; k++)
    cap += (uses_tau(g->kinds[k]) ? g->n_taus : 1) * (uses_patience(g->kinds[k]) ? n_pats : 1);
  out->points = epee_malloc(sizeof(calib_point) * (size_t)cap);
  for (int k = 0; k < g->n_kinds; k++) {
    epee_policy_kind kind = g->kinds[k];
    int first = out->n_points;
    int nt = uses_tau(kind) ? g->n_taus : 1, np = uses_patience(kind) ? n_pats : 1;
    for (int t = 0; t < nt; t++)
      for (int q = 0; q < np; q++) {
        epee_policy p = {kind, uses_tau(kind) ? g->taus[t] : 0.0f, uses_patience(kind) ? pats[q] : 0};
        out->points[out->n_points++] = simulate(&s, p);
      }
    out->chosen[kind] = choose(out->points, first, out->n_points, g, out->full_acc);
  }
  free(pats), free(s.H), free(s.label), free(s.pred);
  return 0;
}

void calib_result_free(calib_result *r) {
  free(r->points);
  r->points = NULL;
  r->n_points = 0;
}

/* Opens path.tmp for writing; the caller finishes with close_rename, so readers never see a partial file. */
static FILE *open_tmp(const char *path, char *tmp, size_t n, epee_err *e) {
  if ((size_t)snprintf(tmp, n, "%s.tmp", path) >= n) {
    epee_errf(e, "%s: path too long", path);
    return NULL;
  }
  FILE *f = fopen(tmp, "w");
  if (!f) epee_errf(e, "%s: cannot open for writing", tmp);
  return f;
}

static int close_rename(FILE *f, const char *tmp, const char *path, epee_err *e) {
  int bad = ferror(f);
  if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
    remove(tmp);
    return epee_errf(e, "%s: write failed", path);
  }
  return 0;
}

static int is_chosen(const calib_result *r, int i) {
  int k = r->points[i].pol.kind;
  return (unsigned)k < EPEE_POLICY_KINDS && r->chosen[k] == i;
}

int calib_write_csv(const calib_result *r, const char *path, epee_err *e) {
  char tmp[4096];
  FILE *f = open_tmp(path, tmp, sizeof tmp, e);
  if (!f) return -1;
  fprintf(f, "policy,tau,patience,accuracy,macro_f1,mean_exit_layer,layer_speedup,chosen\n");
  for (int i = 0; i < r->n_points; i++) {
    const calib_point *p = &r->points[i];
    fprintf(f, "%s,", epee_policy_name(p->pol.kind));
    if (uses_tau(p->pol.kind)) fprintf(f, "%g", (double)p->pol.tau);
    fputc(',', f);
    if (uses_patience(p->pol.kind)) fprintf(f, "%d", p->pol.patience);
    fprintf(f, ",%.6f,%.6f,%.4f,%.4f,%d\n", p->acc, p->f1, p->mean_layers, p->speedup, is_chosen(r, i));
  }
  return close_rename(f, tmp, path, e);
}

static int by_speed_desc(const void *pa, const void *pb) {
  const calib_point *a = *(const calib_point *const *)pa, *b = *(const calib_point *const *)pb;
  if (a->speedup != b->speedup) return a->speedup < b->speedup ? 1 : -1;
  return (a->acc < b->acc) - (a->acc > b->acc);
}

int calib_write_svg(const calib_result *r, int L, const char *title, const char *path, epee_err *e) {
  int n = r->n_points;
  double *x = epee_malloc(sizeof(double) * (size_t)(4 * n + 1)), *y = x + n, *lx = y + n, *ly = lx + n;
  const calib_point **order = epee_malloc(sizeof(calib_point *) * (size_t)(n + 1));
  svg_series series[EPEE_POLICY_KINDS];
  int ns = 0, used = 0;
  /* one series per policy kind present, in kind order; points of a kind are contiguous in grid order */
  for (int k = 0; k < EPEE_POLICY_KINDS; k++) {
    if (r->chosen[k] < 0) continue;
    int lo = 0;
    while (r->points[lo].pol.kind != (epee_policy_kind)k) lo++;
    int hi = lo;
    while (hi < n && r->points[hi].pol.kind == (epee_policy_kind)k) hi++;
    svg_series *s = &series[ns++];
    *s = (svg_series){.name = epee_policy_name(k), .x = x + lo, .y = y + lo, .n = hi - lo, .ring = r->chosen[k] - lo};
    for (int i = lo; i < hi; i++)
      x[i] = r->points[i].speedup, y[i] = 100 * r->points[i].acc, order[i - lo] = &r->points[i];
    /* Pareto front: scanning from fastest to slowest, keep each point more accurate than all faster ones */
    qsort(order, (size_t)(hi - lo), sizeof *order, by_speed_desc);
    int m = 0;
    double best = -INFINITY;
    for (int i = 0; i < hi - lo; i++)
      if (order[i]->acc > best) {
        best = order[i]->acc;
        lx[used + m] = order[i]->speedup, ly[used + m] = 100 * order[i]->acc, m++;
      }
    s->lx = lx + used, s->ly = ly + used, s->ln = m;
    used += m;
  }
  char xlabel[128], hlabel[96];
  snprintf(xlabel, sizeof xlabel, "layer speed-up (%d / mean exit layer)", L);
  snprintf(hlabel, sizeof hlabel, "full depth (%d layers): %.2f%%", L, 100 * r->full_acc);
  svg_plot_spec spec = {.title = title, .xlabel = xlabel, .ylabel = "accuracy (%)", .has_hline = 1,
                        .hline = 100 * r->full_acc, .hline_label = hlabel, .ring_label = "chosen setting"};
  char tmp[4096];
  int rc = -1;
  FILE *f = open_tmp(path, tmp, sizeof tmp, e);
  if (f) {
    svg_plot_write(f, &spec, series, ns);
    rc = close_rename(f, tmp, path, e);
  }
  free(x), free(order);
  return rc;
}
