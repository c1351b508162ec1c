/* Calibration by simulation: exits are deterministic, so the dev set is run once through every layer and each
 * (policy, tau, patience) grid point is evaluated on the stored logits [N, L, C] with the serving engine's own
 * decision code (infer/policy.h). One setting per policy is then chosen by a rule; the whole trade-off table is
 * written as CSV and plotted as SVG.
 *
 * Grid points, in this order for each kind of the grid (kinds in the order given):
 *   none: one point; entropy: each tau; patience: each p; epee and pcee: each tau (outer) x each p (inner).
 * Empty patience list = 1..L-1. Per point: accuracy, macro-F1, mean exit layer (number of layers run, 1..L,
 * averaged) and layer speed-up L / mean exit layer.
 *
 * Per point also: the fraction of samples whose answer differs from the last exit's (disagreement), the fraction
 * answered wrong where the last exit is right (harm), and the largest drop of one class's recall against the last
 * exit (classes with samples only).
 *
 * Selection rules (per policy kind, over that kind's points; "full" = the last exit on every sample; "metric" =
 * accuracy or macro-F1, calib_grid.metric):
 *   fastest_within  highest speed-up among points with metric >= full - within (within: an absolute fraction,
 *                   0.005 = 0.5 points) and no class recall dropping by more than max_recall_drop; ties -> higher
 *                   metric. If no point qualifies: the best metric.
 *   max_accuracy    best metric; ties -> higher speed-up.
 *   layer_budget    best metric among points with mean exit layer <= layer_budget; ties -> higher speed-up.
 *                   If no point qualifies: the fastest (ties -> better metric).
 *   risk            Learn-then-Test (Angelopoulos et al. 2021): the fastest point certified to have risk <= epsilon
 *                   with probability >= 1 - delta over the draw of the calibration set (below); ties -> better
 *                   metric. If none is certified: the `none` point (full depth), and risk_fallback[kind] = 1.
 *   Remaining ties -> the more conservative setting: smaller tau, then larger p. The comparisons with `within`,
 *   `max_recall_drop` and `layer_budget` allow 1e-9 of slack so that a boundary value counts despite rounding.
 *
 * The risk rule. Loss per sample, 0 or 1: disagreement (answer != last exit's answer) or, for the accuracy-drop
 * form, harm (answer wrong, last exit right; its mean bounds acc(full) - acc(point) from above). H0 for a point:
 * risk > epsilon; p-value = P(Binomial(n, epsilon) <= losses on the n samples), exact, valid for i.i.d. samples.
 * Fixed-sequence testing along fixed chains ordered from the most conservative setting to the fastest, in an
 * order that does not look at the data: entropy one chain, tau ascending; patience one chain, p descending;
 * epee and pcee one chain per p, tau ascending, and delta split evenly over the chains (Bonferroni). Along a
 * chain every point with p-value <= delta / chains is certified until the first that is not. Every certified
 * point then has risk <= epsilon simultaneously with probability >= 1 - delta, so choosing among them by speed
 * keeps the guarantee. `none` is never tested: its risk is 0 by definition. */
#ifndef EPEE_CALIBRATE_H
#define EPEE_CALIBRATE_H

#include "core/error.h"
#include "infer/metrics.h"
#include "infer/policy.h"

/* Same order and values as cfg_rule, cfg_metric and cfg_risk in train/config.h. */
typedef enum {
  CALIB_RULE_FASTEST_WITHIN,
  CALIB_RULE_MAX_ACCURACY,
  CALIB_RULE_LAYER_BUDGET,
  CALIB_RULE_RISK
} calib_rule;
typedef enum { CALIB_METRIC_ACCURACY, CALIB_METRIC_MACRO_F1 } calib_metric;
typedef enum { CALIB_RISK_DISAGREEMENT, CALIB_RISK_ACCURACY_DROP } calib_risk;

typedef struct {
  epee_policy pol; /* unused parameters are 0 (tau for none/patience, patience for none/entropy) */
  double acc, f1, mean_layers, speedup;
  double disagree, harm, recall_drop; /* fractions of the samples; recall_drop: max over classes */
  double p_value;                     /* the risk rule's, once it ran; NAN before and for none */
  int certified;                      /* 1 if the risk rule certified it (risk <= epsilon) */
} calib_point;

typedef struct {
  calib_point *points;
  int n_points, n;               /* n: samples */
  int chosen[EPEE_POLICY_KINDS]; /* index into points per policy kind; -1 if the kind is not in the grid */
  int risk_fallback[EPEE_POLICY_KINDS]; /* risk rule: 1 if nothing of the kind was certified (chosen = none) */
  int risk_chains[EPEE_POLICY_KINDS];   /* risk rule: chains of the kind, each tested at delta / chains */
  double full_acc, full_f1;      /* the last exit on every sample */
} calib_result;

typedef struct {
  const epee_policy_kind *kinds; /* each kind at most once */
  int n_kinds;
  const float *taus; /* finite, >= 0; needed (n_taus >= 1) if entropy, epee or pcee is in kinds */
  int n_taus;
  const int *pats;   /* each >= 1; n_pats = 0 means 1..L-1 */
  int n_pats;
  calib_rule rule;
  double within;       /* fastest_within: allowed accuracy drop, absolute fraction */
  double layer_budget; /* layer_budget: maximum mean exit layer (1-based count of layers run) */
  calib_metric metric;   /* what fastest_within, max_accuracy and layer_budget compare */
  double max_recall_drop; /* fastest_within: largest allowed drop of any class's recall; >= 1 = no floor */
  calib_risk risk;       /* risk rule: the loss */
  double epsilon, delta; /* risk rule: risk <= epsilon with probability >= 1 - delta; both in (0, 1) */
} calib_grid;

/* logits [N, L, C] row-major (sample, exit, class), gold [N] in [0, C). Fills *out (free with calib_result_free;
 * *out is zeroed first, so freeing after a failure is safe). Bad grid or labels: -1 with one line in e. */
int calib_run(const float *logits, const int *gold, int N, int L, int C, const calib_grid *g, calib_result *out,
              epee_err *e);

/* Chooses again under another rule (g's kinds must be those of the run), without simulating again: sets chosen,
 * risk_fallback, risk_chains and, for the risk rule, every point's p_value and certified. -1 with one line in e
 * for a bad rule or parameter. */
int calib_choose(calib_result *r, const calib_grid *g, epee_err *e);

/* One policy on a set (test logits, a re-split): every field of a calib_point. Same inputs as calib_run. */
calib_point calib_eval(const float *logits, const int *gold, int N, int L, int C, const epee_policy *p);

/* The risk of a point under the loss of the risk rule. */
double calib_point_risk(const calib_point *p, calib_risk risk);

/* P(X <= k) for X ~ Binomial(n, p), exact (log space); k < 0 gives 0, k >= n gives 1. */
double calib_binom_cdf(int k, int n, double p);

/* The fewest samples with which a point with no loss at all passes the test at level delta: the smallest n
 * with (1 - epsilon)^n <= delta. */
int calib_risk_min_n(double epsilon, double delta);

/* count thresholds evenly spaced in log scale from `from` to `to` (0 < from < to, count >= 2), both ends
 * included exactly. */
void calib_log_range(double from, double to, int count, float *out);

/* Temperature scaling (Guo et al. 2017), per exit: T[l] minimises the negative log-likelihood of the gold labels
 * under softmax(z / T) over the N samples of logits [N, L, C]; found by bisection on the derivative of this
 * convex function of 1 / T, within [CALIB_T_MIN, CALIB_T_MAX] (separable data would push T to 0). */
#define CALIB_T_MIN 0.05
#define CALIB_T_MAX 20.0
void calib_fit_temperature(const float *logits, const int *gold, int N, int L, int C, float *T);

/* logits [N, L, C] -> out (may alias), each exit's logits divided by its temperature T[l] (epee_scale_logits,
 * the engine's own operation). */
void calib_apply_temperature(const float *logits, int N, int L, int C, const float *T, float *out);

/* calibration.csv: header policy,tau,patience,accuracy,macro_f1,mean_exit_layer,layer_speedup,disagreement,
 * harm,max_recall_drop,risk_p_value,risk_certified,chosen; one row per point in grid order; a parameter the
 * policy does not use is left empty, and so is a p-value never computed; chosen and certified are 1 or 0.
 * Written to path.tmp then renamed. */
int calib_write_csv(const calib_result *r, const char *path, epee_err *e);

/* calibration.svg: accuracy (%) against layer speed-up, one colour per policy: every point as a dot, the
 * policy's Pareto front (best accuracy at each speed-up) as a polyline, the chosen point ringed, full-depth
 * accuracy as a dashed line. L is the number of layers (for the axis label). Written to path.tmp, renamed. */
int calib_write_svg(const calib_result *r, int L, const char *title, const char *path, epee_err *e);

/* Reliability diagram: per series, accuracy against mean confidence of each non-empty bin (METRIC_ECE_BINS
 * equal-width bins), with the diagonal of perfect calibration; names[i] gets " (ECE x%)". Temp file + rename. */
int calib_write_reliability_svg(const metric_reliability *rel, const char *const *names, int n_series,
                                const char *title, const char *path, epee_err *e);

void calib_result_free(calib_result *r);

#endif
