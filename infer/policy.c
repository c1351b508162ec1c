#include "infer/policy.h"

#include <math.h>
#include <string.h>

static const char *const policy_names[EPEE_POLICY_KINDS] = {"none", "entropy", "patience", "epee", "pcee"};

void epee_exit_state_init(epee_exit_state *s) {
  s->counter = 0;
  s->prev_label = -1;
}

int epee_argmax(const float *z, int C) {
  int best = 0;
  for (int k = 1; k < C; k++)
    if (z[k] > z[best]) best = k;
  return best;
}

/* H = log S - sum_k e_k (z_k - m) / S with m = max z, e_k = exp(z_k - m), S = sum e_k: the entropy of softmax(z)
 * without forming log p_k, so tiny probabilities cost no precision and huge logits cannot overflow. */
float epee_normalized_entropy(const float *z, int C) {
  EPEE_CHECK(C >= 2, "entropy needs at least 2 classes");
  double m = z[epee_argmax(z, C)];
  double S = 0, Sz = 0;
  for (int k = 0; k < C; k++) {
    double d = (double)z[k] - m;
    double ek = exp(d);
    if (ek == 0) continue; /* z_k = -inf or far below the max: p_k log p_k -> 0 */
    S += ek;
    Sz += ek * d;
  }
  double H = (log(S) - Sz / S) / log((double)C);
  if (H < 0) H = 0; /* rounding only: the true value lies in [0,1] */
  if (H > 1) H = 1;
  return (float)H;
}

void epee_scale_logits(const float *z, int C, float T, float *out) {
  for (int k = 0; k < C; k++) out[k] = z[k] / T;
}

void epee_softmax(const float *z, int C, float *probs) {
  float m = z[epee_argmax(z, C)];
  double S = 0;
  for (int k = 0; k < C; k++) {
    probs[k] = expf(z[k] - m);
    S += probs[k];
  }
  for (int k = 0; k < C; k++) probs[k] = (float)(probs[k] / S);
}

int epee_policy_step(const epee_policy *p, epee_exit_state *s, const float *z, int C, int layer, int L, float *entropy,
                     int *label) {
  float H = epee_normalized_entropy(z, C);
  int y = epee_argmax(z, C);
  if (entropy) *entropy = H;
  if (label) *label = y;
  return epee_policy_decide(p, s, H, y, layer, L);
}

int epee_policy_run(const epee_policy *p, const float *logits, int L, int C, int *label) {
  EPEE_CHECK(L >= 1, "a model has at least one exit");
  epee_exit_state s;
  epee_exit_state_init(&s);
  for (int i = 0; i < L; i++)
    if (epee_policy_step(p, &s, logits + (size_t)i * C, C, i, L, NULL, label)) return i;
  epee_fatal("unreachable: the last layer always exits");
}

const char *epee_policy_name(epee_policy_kind k) {
  return (unsigned)k < EPEE_POLICY_KINDS ? policy_names[k] : "?";
}

int epee_policy_parse(const char *name, epee_policy_kind *k) {
  for (int i = 0; i < EPEE_POLICY_KINDS; i++)
    if (strcmp(name, policy_names[i]) == 0) {
      *k = (epee_policy_kind)i;
      return 0;
    }
  return -1;
}

int epee_policy_validate(const epee_policy *p, const char *where, epee_err *e) {
  if ((unsigned)p->kind >= EPEE_POLICY_KINDS)
    return epee_errf(e, "%s: unknown policy kind %d (expected none, entropy, patience, epee or pcee)", where,
                     (int)p->kind);
  int uses_tau = p->kind == EPEE_POLICY_ENTROPY || p->kind == EPEE_POLICY_EPEE || p->kind == EPEE_POLICY_PCEE;
  int uses_patience = p->kind == EPEE_POLICY_PATIENCE || p->kind == EPEE_POLICY_EPEE || p->kind == EPEE_POLICY_PCEE;
  if (uses_tau && !(isfinite(p->tau) && p->tau >= 0))
    return epee_errf(e, "%s: policy %s: tau %g, expected a finite number >= 0", where, policy_names[p->kind],
                     (double)p->tau);
  if (uses_patience && p->patience < 1)
    return epee_errf(e, "%s: policy %s: patience %d, expected an integer >= 1", where, policy_names[p->kind],
                     p->patience);
  return 0;
}
