#include "train/calibrate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
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
  int *count; /* [3C]: per class its samples, the last exit's correct answers, and scratch */
  int N, L, C;
} sim;

static void sim_init(sim *s, const float *logits, const int *gold, int N, int L, int C) {
  *s = (sim){.gold = gold, .N = N, .L = L, .C = C};
  s->H = epee_malloc(sizeof(float) * (size_t)N * L);
  s->label = epee_malloc(sizeof(int) * (size_t)N * L);
  s->pred = epee_malloc(sizeof(int) * (size_t)N);
  s->count = epee_calloc((size_t)3 * C, sizeof(int));
  for (size_t r = 0; r < (size_t)N * L; r++) {
    s->H[r] = epee_normalized_entropy(logits + r * C, C);
    s->label[r] = epee_argmax(logits + r * C, C);
  }
  for (int n = 0; n < N; n++) {
    s->count[gold[n]]++;
    s->count[C + gold[n]] += s->label[(size_t)n * L + L - 1] == gold[n];
  }
}

static void sim_free(sim *s) { free(s->H), free(s->label), free(s->pred), free(s->count); }

/* Simulates policy p on every sample: every field of a calib_point but the risk rule's. */
static calib_point simulate(sim *s, epee_policy p) {
  long layers = 0, disagree = 0, harm = 0;
  int C = s->C, *ok = s->count + 2 * C;
  memset(ok, 0, sizeof(int) * (size_t)C);
  for (int n = 0; n < s->N; n++) {
    const float *H = s->H + (size_t)n * s->L;
    const int *y = s->label + (size_t)n * s->L;
    epee_exit_state st;
    epee_exit_state_init(&st);
    int i = 0;
    while (!epee_policy_decide(&p, &st, H[i], y[i], i, s->L)) i++;
    int full = y[s->L - 1], g = s->gold[n];
    s->pred[n] = y[i];
    layers += i + 1;
    disagree += y[i] != full;
    harm += y[i] != g && full == g;
    ok[g] += y[i] == g;
  }
  calib_point pt = {.pol = p, .p_value = NAN};
  pt.acc = metric_accuracy(s->gold, s->pred, s->N);
  pt.f1 = metric_macro_f1(s->gold, s->pred, s->N, s->C);
  pt.mean_layers = (double)layers / s->N;
  pt.speedup = s->L / pt.mean_layers;
  pt.disagree = (double)disagree / s->N;
  pt.harm = (double)harm / s->N;
  for (int c = 0; c < C; c++)
    if (s->count[c]) {
      double drop = (double)(s->count[C + c] - ok[c]) / s->count[c];
      if (drop > pt.recall_drop) pt.recall_drop = drop;
    }
  return pt;
}

calib_point calib_eval(const float *logits, const int *gold, int N, int L, int C, const epee_policy *p) {
  sim s;
  sim_init(&s, logits, gold, N, L, C);
  calib_point pt = simulate(&s, *p);
  sim_free(&s);
  return pt;
}

double calib_point_risk(const calib_point *p, calib_risk risk) {
  return risk == CALIB_RISK_ACCURACY_DROP ? p->harm : p->disagree;
}

static double score(const calib_point *p, calib_metric m) { return m == CALIB_METRIC_MACRO_F1 ? p->f1 : p->acc; }

/* 1 if a is preferred to b: first by speed-up (speed_first) or the metric, then by the other, then the more
 * conservative setting (smaller tau, then larger patience). */
static int preferred(const calib_point *a, const calib_point *b, int speed_first, calib_metric m) {
  double a1 = speed_first ? a->speedup : score(a, m), b1 = speed_first ? b->speedup : score(b, m);
  double a2 = speed_first ? score(a, m) : a->speedup, b2 = speed_first ? score(b, m) : b->speedup;
  if (a1 != b1) return a1 > b1;
  if (a2 != b2) return a2 > b2;
  if (a->pol.tau != b->pol.tau) return a->pol.tau < b->pol.tau;
  return a->pol.patience > b->pol.patience;
}

/* Index of the best point in [lo, hi) under the heuristic rules, or under the fallback when no point qualifies. */
static int choose(const calib_point *pts, int lo, int hi, const calib_grid *g, double full) {
  int best = -1, any = -1;
  int speed_first = g->rule == CALIB_RULE_FASTEST_WITHIN;
  for (int i = lo; i < hi; i++) {
    int ok = g->rule == CALIB_RULE_MAX_ACCURACY ||
             (g->rule == CALIB_RULE_FASTEST_WITHIN && score(&pts[i], g->metric) >= full - g->within - SLACK &&
              pts[i].recall_drop <= g->max_recall_drop + SLACK) ||
             (g->rule == CALIB_RULE_LAYER_BUDGET && pts[i].mean_layers <= g->layer_budget + SLACK);
    /* fallbacks: fastest_within -> best metric; layer_budget -> fastest */
    if (any < 0 || preferred(&pts[i], &pts[any], !speed_first, g->metric)) any = i;
    if (ok && (best < 0 || preferred(&pts[i], &pts[best], speed_first, g->metric))) best = i;
  }
  return best >= 0 ? best : any;
}

/* The chains' order: patience descending (conservative first), then tau ascending; then grid order. */
static int by_chain_order(const void *pa, const void *pb) {
  const calib_point *a = *(const calib_point *const *)pa, *b = *(const calib_point *const *)pb;
  if (a->pol.patience != b->pol.patience) return a->pol.patience > b->pol.patience ? -1 : 1;
  if (a->pol.tau != b->pol.tau) return a->pol.tau < b->pol.tau ? -1 : 1;
  return (a > b) - (a < b);
}

/* Learn-then-Test over the points [lo, hi) of one kind (see calibrate.h): sets p-values and certified, returns
 * the chosen index or -1 if nothing is certified; *chains gets the number of chains. */
static int choose_risk(calib_result *r, int lo, int hi, const calib_grid *g, int *chains) {
  int n = hi - lo;
  calib_point **order = epee_malloc(sizeof(calib_point *) * (size_t)n);
  for (int i = 0; i < n; i++) order[i] = &r->points[lo + i];
  qsort(order, (size_t)n, sizeof *order, by_chain_order);
  epee_policy_kind k = r->points[lo].pol.kind;
  /* only a kind with both parameters has several chains (one per p); entropy and patience have one */
  int split = uses_tau(k) && uses_patience(k);
  *chains = 1;
  for (int i = 1; i < n; i++) *chains += split && order[i]->pol.patience != order[i - 1]->pol.patience;
  double level = g->delta / *chains;
  int alive = 0, best = -1;
  for (int i = 0; i < n; i++) {
    calib_point *p = order[i];
    if (i == 0 || (split && p->pol.patience != order[i - 1]->pol.patience)) alive = 1; /* a new chain */
    int losses = (int)lround(calib_point_risk(p, g->risk) * r->n);
    p->p_value = calib_binom_cdf(losses, r->n, g->epsilon);
    alive = alive && p->p_value <= level;
    p->certified = alive;
    if (alive && (best < 0 || preferred(p, &r->points[best], 1, g->metric))) best = (int)(p - r->points);
  }
  free(order);
  return best;
}

/* [lo, hi) of kind k's points (contiguous in grid order); 0 if the kind is not in the grid. */
static int block(const calib_result *r, epee_policy_kind k, int *lo, int *hi) {
  for (*lo = 0; *lo < r->n_points && r->points[*lo].pol.kind != k; ++*lo) {}
  for (*hi = *lo; *hi < r->n_points && r->points[*hi].pol.kind == k; ++*hi) {}
  return *hi > *lo;
}

static int check_rule(const calib_grid *g, epee_err *e) {
  if ((unsigned)g->rule > CALIB_RULE_RISK) return epee_errf(e, "calibrate: rule: unknown value %d", (int)g->rule);
  if ((unsigned)g->metric > CALIB_METRIC_MACRO_F1)
    return epee_errf(e, "calibrate: metric: unknown value %d", (int)g->metric);
  if ((unsigned)g->risk > CALIB_RISK_ACCURACY_DROP)
    return epee_errf(e, "calibrate: risk: unknown value %d", (int)g->risk);
  if (!isfinite(g->within) || !isfinite(g->layer_budget) || !isfinite(g->max_recall_drop))
    return epee_errf(e, "calibrate: within, max_recall_drop and layer_budget must be finite numbers");
  if (g->rule == CALIB_RULE_RISK && !(g->epsilon > 0 && g->epsilon < 1 && g->delta > 0 && g->delta < 1))
    return epee_errf(e, "calibrate: rule risk needs epsilon and delta in (0, 1), got %g and %g", g->epsilon,
                     g->delta);
  return 0;
}

int calib_choose(calib_result *r, const calib_grid *g, epee_err *e) {
  if (check_rule(g, e)) return -1;
  int none_lo, none_hi, has_none = block(r, EPEE_POLICY_NONE, &none_lo, &none_hi);
  if (g->rule == CALIB_RULE_RISK && !has_none)
    return epee_errf(e, "calibrate: rule risk needs policy none in the grid (full depth is its fallback)");
  double full = g->metric == CALIB_METRIC_MACRO_F1 ? r->full_f1 : r->full_acc;
  for (int k = 0; k < EPEE_POLICY_KINDS; k++) {
    int lo, hi;
    r->chosen[k] = -1;
    r->risk_fallback[k] = r->risk_chains[k] = 0;
    if (!block(r, (epee_policy_kind)k, &lo, &hi)) continue;
    if (g->rule != CALIB_RULE_RISK) {
      r->chosen[k] = choose(r->points, lo, hi, g, full);
    } else if (k == EPEE_POLICY_NONE) {
      r->chosen[k] = lo; /* risk 0: nothing to test */
    } else {
      r->chosen[k] = choose_risk(r, lo, hi, g, &r->risk_chains[k]);
      if (r->chosen[k] < 0) r->chosen[k] = none_lo, r->risk_fallback[k] = 1;
    }
  }
  return 0;
}

double calib_binom_cdf(int k, int n, double p) {
  if (k < 0) return 0;
  if (k >= n || p <= 0) return 1;
  if (p >= 1) return 0;
  /* log of each term C(n, i) p^i (1-p)^(n-i), then a log-sum-exp: no term under- or overflows alone */
  double lp = log(p), lq = log1p(-p), ln = lgamma(n + 1.0), m = -INFINITY, sum = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i <= k; i++) {
      double t = ln - lgamma(i + 1.0) - lgamma(n - i + 1.0) + i * lp + (n - i) * lq;
      if (pass == 0 && t > m) m = t;
      if (pass == 1) sum += exp(t - m);
    }
  double cdf = exp(m) * sum;
  return cdf > 1 ? 1 : cdf;
}

int calib_risk_min_n(double epsilon, double delta) { return (int)ceil(log(delta) / log1p(-epsilon) - 1e-9); }

void calib_log_range(double from, double to, int count, float *out) {
  for (int i = 0; i < count; i++) out[i] = (float)(from * pow(to / from, (double)i / (count - 1)));
  out[0] = (float)from, out[count - 1] = (float)to; /* pow need not land exactly on the ends */
}

/* d/dbeta of the mean NLL of softmax(beta z) at the gold label: mean over samples of E_p[z] - z_gold (increasing
 * in beta: the second derivative is the variance of z under p). */
static double nll_slope(const float *logits, const int *gold, int N, int L, int C, int l, double beta) {
  double sum = 0;
  for (int n = 0; n < N; n++) {
    const float *z = logits + ((size_t)n * L + l) * C;
    double m = z[epee_argmax(z, C)], S = 0, Sz = 0;
    for (int c = 0; c < C; c++) {
      double w = exp(beta * (z[c] - m));
      S += w, Sz += w * z[c];
    }
    sum += Sz / S - z[gold[n]];
  }
  return sum / N;
}

void calib_fit_temperature(const float *logits, const int *gold, int N, int L, int C, float *T) {
  for (int l = 0; l < L; l++) {
    double lo = log(1 / CALIB_T_MAX), hi = log(1 / CALIB_T_MIN); /* bisection on log(1/T) */
    if (nll_slope(logits, gold, N, L, C, l, exp(lo)) >= 0) hi = lo;
    else if (nll_slope(logits, gold, N, L, C, l, exp(hi)) <= 0) lo = hi;
    for (int it = 0; it < 60 && hi - lo > 1e-12; it++) {
      double mid = (lo + hi) / 2;
      if (nll_slope(logits, gold, N, L, C, l, exp(mid)) < 0) lo = mid;
      else hi = mid;
    }
    T[l] = (float)exp(-(lo + hi) / 2);
  }
}

void calib_apply_temperature(const float *logits, int N, int L, int C, const float *T, float *out) {
  for (size_t r = 0; r < (size_t)N * L; r++) epee_scale_logits(logits + r * C, C, T[r % (size_t)L], out + r * C);
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
  return check_rule(g, e);
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

  sim s;
  sim_init(&s, logits, gold, N, L, C);
  for (int n = 0; n < N; n++) s.pred[n] = s.label[(size_t)n * L + L - 1];
  out->n = N;
  out->full_acc = metric_accuracy(gold, s.pred, N);
  out->full_f1 = metric_macro_f1(gold, s.pred, N, C);

  int cap = 0;
  for (int k = 0; k < g->n_kinds; k++)
    cap += (uses_tau(g->kinds[k]) ? g->n_taus : 1) * (uses_patience(g->kinds[k]) ? n_pats : 1);
  out->points = epee_malloc(sizeof(calib_point) * (size_t)cap);
  for (int k = 0; k < g->n_kinds; k++) {
    epee_policy_kind kind = g->kinds[k];
    int nt = uses_tau(kind) ? g->n_taus : 1, np = uses_patience(kind) ? n_pats : 1;
    for (int t = 0; t < nt; t++)
      for (int q = 0; q < np; q++) {
        epee_policy p = {kind, uses_tau(kind) ? g->taus[t] : 0.0f, uses_patience(kind) ? pats[q] : 0};
        out->points[out->n_points++] = simulate(&s, p);
      }
  }
  free(pats);
  sim_free(&s);
  if (calib_choose(out, g, e)) {
    calib_result_free(out);
    return -1;
  }
  return 0;
}

void calib_result_free(calib_result *r) {
  free(r->points);
  r->points = NULL;
  r->n_points = 0;
}

static int is_chosen(const calib_result *r, int i) {
  int k = r->points[i].pol.kind;
  return (unsigned)k < EPEE_POLICY_KINDS && r->chosen[k] == i;
}

int calib_write_csv(const calib_result *r, const char *path, epee_err *e) {
  atomic_file af; /* readers never see a partial file */
  FILE *f = atomic_open(&af, path, e);
  if (!f) return -1;
  fprintf(f, "policy,tau,patience,accuracy,macro_f1,mean_exit_layer,layer_speedup,disagreement,harm,max_recall_drop,"
             "risk_p_value,risk_certified,chosen\n");
  for (int i = 0; i < r->n_points; i++) {
    const calib_point *p = &r->points[i];
    fprintf(f, "%s,", epee_policy_name(p->pol.kind));
    if (uses_tau(p->pol.kind)) fprintf(f, "%g", (double)p->pol.tau);
    fputc(',', f);
    if (uses_patience(p->pol.kind)) fprintf(f, "%d", p->pol.patience);
    fprintf(f, ",%.6f,%.6f,%.4f,%.4f,%.6f,%.6f,%.6f,", p->acc, p->f1, p->mean_layers, p->speedup, p->disagree, p->harm,
            p->recall_drop);
    if (!isnan(p->p_value)) fprintf(f, "%.6g", p->p_value);
    fprintf(f, ",%d,%d\n", p->certified, is_chosen(r, i));
  }
  return atomic_commit(&af, e);
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
    int c = r->chosen[k]; /* the risk rule's fallback is the none point: no ring on this kind */
    *s = (svg_series){.name = epee_policy_name(k), .x = x + lo, .y = y + lo, .n = hi - lo,
                      .ring = c >= lo && c < hi ? c - lo : -1};
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
  atomic_file af;
  int rc = -1;
  if (atomic_open(&af, path, e)) {
    svg_plot_write(af.f, &spec, series, ns);
    rc = atomic_commit(&af, e);
  }
  free(x), free(order);
  return rc;
}

int calib_write_reliability_svg(const metric_reliability *rel, const char *const *names, int n_series,
                                const char *title, const char *path, epee_err *e) {
  double *xy = epee_malloc(sizeof(double) * 2 * METRIC_ECE_BINS * (size_t)(n_series + 1));
  char(*label)[160] = epee_malloc(sizeof *label * (size_t)(n_series + 1));
  svg_series *series = epee_malloc(sizeof(svg_series) * (size_t)(n_series + 1));
  for (int k = 0; k < n_series; k++) {
    double *x = xy + 2 * METRIC_ECE_BINS * k, *y = x + METRIC_ECE_BINS;
    int m = 0;
    for (int b = 0; b < METRIC_ECE_BINS; b++)
      if (rel[k].count[b]) x[m] = 100 * rel[k].conf[b], y[m] = 100 * rel[k].acc[b], m++;
    snprintf(label[k], sizeof label[k], "%s (ECE %.2f%%)", names[k], 100 * rel[k].ece);
    series[k] = (svg_series){.name = label[k], .x = x, .y = y, .n = m, .lx = x, .ly = y, .ln = m, .ring = -1};
  }
  static const double diag[2] = {0, 100};
  series[n_series] = (svg_series){.name = "perfect calibration", .lx = diag, .ly = diag, .ln = 2, .ring = -1};
  svg_plot_spec spec = {.title = title, .xlabel = "confidence (%, mean of the bin)", .ylabel = "accuracy (%)"};
  atomic_file af;
  int rc = -1;
  if (atomic_open(&af, path, e)) {
    svg_plot_write(af.f, &spec, series, n_series + 1);
    rc = atomic_commit(&af, e);
  }
  free(xy), free(label), free(series);
  return rc;
}
