/* Early-exit policies: the ONE implementation of the exit decision, used by the serving engine (streaming, one
 * call per layer per row) and by calibration (simulation over stored logits), so both decide identically.
 *
 * Per exit i (0-based, of L) with logits z_i[C], C >= 2:
 *   H_i = entropy(softmax(z_i)) / ln C            normalised to [0,1] (natural log; uniform logits give 1)
 *   y_i = argmax z_i                              ties -> lowest index
 *   c_i = 0 at i = 0; c_i = c_{i-1} + 1 if y_i == y_{i-1}, else 0   (patience counter, PABEE)
 *   k_i = k_{i-1} + 1 if H_i < tau, else 0; k_{-1} = 0              (low-entropy streak, PCEE-BERT)
 * The sample exits at the first i where its policy fires:
 *   none      never (all layers run)
 *   entropy   H_i < tau                        (DeeBERT-style; can fire at layer 0)
 *   patience  c_i == p                         (PABEE)
 *   epee      H_i < tau  OR  c_i == p          (EPEE)
 *   pcee      k_i == p                         (PCEE-BERT; can fire at layer p-1)
 * If nothing fires, the last exit (L-1) answers; the answer is the exit layer's logits.
 *
 * Patience semantics (as PABEE and the EPEE reference code): c counts AGREEMENTS with the previous exit, so
 * c == p needs p+1 identical predictions in a row and the earliest patience exit is layer index p (0-based),
 * i.e. with p = 1 a sample can leave after the second layer, never after the first. A p >= L never fires. */
#ifndef EPEE_POLICY_H
#define EPEE_POLICY_H

#include "core/error.h"

typedef enum {
  EPEE_POLICY_NONE,
  EPEE_POLICY_ENTROPY,
  EPEE_POLICY_PATIENCE,
  EPEE_POLICY_EPEE,
  EPEE_POLICY_PCEE
} epee_policy_kind;
#define EPEE_POLICY_KINDS 5

/* tau is used by entropy/epee/pcee, patience by patience/epee/pcee; the unused field is ignored. */
typedef struct {
  epee_policy_kind kind;
  float tau;
  int patience;
} epee_policy;

/* Per-sample streaming state: counter is c (or k for pcee); prev_label is y_{i-1}. */
typedef struct {
  int counter;
  int prev_label;
} epee_exit_state;

void epee_exit_state_init(epee_exit_state *s);

/* Normalised entropy H of softmax(z), z[C], C >= 2, computed stably (log-sum-exp, in double); in [0,1].
 * Logits equal to -inf contribute probability 0; NaN logits give NaN (which never passes H < tau). */
float epee_normalized_entropy(const float *z, int C);

/* argmax of z[C]; ties -> lowest index. */
int epee_argmax(const float *z, int C);

/* out[C] = z[C] / T: temperature scaling of one exit's logits (T > 0). The engine and calibration both call this,
 * so a scaled entropy is the same float on both sides. out may alias z. */
void epee_scale_logits(const float *z, int C, float T, float *out);

/* probs[C] = softmax(z[C]), max-subtracted; probs may alias z. */
void epee_softmax(const float *z, int C, float *probs);

/* The decision from precomputed (H_i, y_i) at exit `layer` (0-based, of L): updates s, returns 1 if the sample
 * exits here (always 1 at layer L-1). Layers must be fed in order 0, 1, ... after epee_exit_state_init.
 * Inline because calibration calls it ~10^8 times per grid; the engine reaches it through epee_policy_step. */
static inline int epee_policy_decide(const epee_policy *p, epee_exit_state *s, float entropy, int label, int layer,
                                     int L) {
  EPEE_CHECK(layer >= 0 && layer < L, "exit layer index out of range [0, L)");
  int low = entropy < p->tau;
  if (p->kind == EPEE_POLICY_PCEE)
    s->counter = low ? s->counter + 1 : 0;
  else
    s->counter = (layer > 0 && label == s->prev_label) ? s->counter + 1 : 0;
  s->prev_label = label;
  if (layer == L - 1) return 1;
  switch (p->kind) {
    case EPEE_POLICY_NONE: return 0;
    case EPEE_POLICY_ENTROPY: return low;
    case EPEE_POLICY_PATIENCE: return s->counter == p->patience;
    case EPEE_POLICY_EPEE: return low || s->counter == p->patience;
    case EPEE_POLICY_PCEE: return s->counter == p->patience;
  }
  epee_fatal("unknown policy kind %d", (int)p->kind);
}

/* Feed exit `layer` logits z[C]; returns 1 if the sample exits here (always 1 at layer L-1). If non-NULL,
 * *entropy gets H_i and *label gets y_i. No allocation; the engine calls it once per layer per live row. */
int epee_policy_step(const epee_policy *p, epee_exit_state *s, const float *z, int C, int layer, int L, float *entropy,
                     int *label);

/* Whole trajectory of one sample: logits [L, C] -> exit layer (0-based); *label (if non-NULL) its argmax. */
int epee_policy_run(const epee_policy *p, const float *logits, int L, int C, int *label);

/* "none", "entropy", "patience", "epee", "pcee"; "?" for a value outside the enum. */
const char *epee_policy_name(epee_policy_kind k);

/* Name -> kind; 0 on success, -1 (k untouched) for an unknown name. */
int epee_policy_parse(const char *name, epee_policy_kind *k);

/* Checks a policy that came from a user (config, model file): known kind, finite tau >= 0 where used,
 * patience >= 1 where used. -1 with one line in e naming `where` (e.g. the file or key) otherwise. */
int epee_policy_validate(const epee_policy *p, const char *where, epee_err *e);

#endif
