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
 * Selection rules (per policy kind, over that kind's points; "full" = accuracy of the last exit on every sample):
 *   fastest_within  highest speed-up among points with acc >= full - within (within: an absolute fraction,
 *                   0.005 = 0.5 points); ties -> higher accuracy. If no point qualifies: the most accurate.
 *   max_accuracy    highest accuracy; ties -> higher speed-up.
 *   layer_budget    highest accuracy among points with mean exit layer <= layer_budget; ties -> higher speed-up.
 *                   If no point qualifies: the fastest (ties -> higher accuracy).
 *   Remaining ties -> the more conservative setting: smaller tau, then larger p. The comparisons with `within`
 *   and `layer_budget` allow 1e-9 of slack so that a boundary value counts despite rounding. */
#ifndef EPEE_CALIBRATE_H
#define EPEE_CALIBRATE_H

#include "core/error.h"
#include "infer/policy.h"

/* Same order and values as cfg_rule in train/config.h. */
typedef enum { CALIB_RULE_FASTEST_WITHIN, CALIB_RULE_MAX_ACCURACY, CALIB_RULE_LAYER_BUDGET } calib_rule;

typedef struct {
  epee_policy pol; /* unused parameters are 0 (tau for none/patience, patience for none/entropy) */
  double acc, f1, mean_layers, speedup;
} calib_point;

typedef struct {
  calib_point *points;
  int n_points;
  int chosen[EPEE_POLICY_KINDS]; /* index into points per policy kind; -1 if the kind is not in the grid */
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
} calib_grid;

/* logits [N, L, C] row-major (sample, exit, class), gold [N] in [0, C). Fills *out (free with calib_result_free;
 * *out is zeroed first, so freeing after a failure is safe). Bad grid or labels: -1 with one line in e. */
int calib_run(const float *logits, const int *gold, int N, int L, int C, const calib_grid *g, calib_result *out,
              epee_err *e);

/* calibration.csv: header policy,tau,patience,accuracy,macro_f1,mean_exit_layer,layer_speedup,chosen; one row
 * per point in grid order; a parameter the policy does not use is left empty; chosen is 1 or 0. Written to
 * path.tmp then renamed. */
int calib_write_csv(const calib_result *r, const char *path, epee_err *e);

/* calibration.svg: accuracy (%) against layer speed-up, one colour per policy: every point as a dot, the
 * policy's Pareto front (best accuracy at each speed-up) as a polyline, the chosen point ringed, full-depth
 * accuracy as a dashed line. L is the number of layers (for the axis label). Written to path.tmp, renamed. */
int calib_write_svg(const calib_result *r, int L, const char *title, const char *path, epee_err *e);

void calib_result_free(calib_result *r);

#endif
