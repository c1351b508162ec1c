/* The batched early-exit engine, shared by serving (epee.h, epee-infer) and the trainer's dev/test
 * evaluation.
 *
 * It runs a model layer by layer with grad mode off (no tape, nothing saved for backward). After each
 * layer every active row's exit logits go through the exit policy (infer/policy.h: the same code that
 * calibration simulates); rows that exit write their answer, the others are COMPACTED (hidden states and
 * mask: all that layers and exits read) so later layers run on fewer rows, and the length is trimmed to the longest
 * remaining row. Trimming is exact: padding sits at the end of each row and masked keys never reach a
 * real token (with a causal mask too), so a row's real positions do not depend on how much padding follows.
 *
 * Memory: hidden states live in two preallocated ping-pong buffers; a layer's temporaries live in the
 * context's activation arena and are released after the layer (arena marks). engine_init warms up at
 * the largest shape, which sizes the arena once, then freezes it: no allocation per call afterwards.
 * An engine is one thread's (it owns the context and buffers); share the model, not the engine. */
#ifndef EPEE_ENGINE_H
#define EPEE_ENGINE_H

#include "data/dataset.h"
#include "infer/policy.h"
#include "models/model.h"

typedef struct {
  model *m;                /* read only */
  epee_ctx ctx;            /* grad_mode 0, training 0 */
  int max_batch, max_len;
  float *h[2];             /* [max_batch, max_len, D] ping-pong hidden states */
  float *mask;             /* active rows' mask, compacted [n, T] */
  int *row;                /* active row -> the caller's row */
  int *len;                /* active row -> its real length (last real position + 1) */
  epee_exit_state *state;  /* active row -> its policy state */
  float *scaled;           /* [C]: one exit's logits divided by the model's temperature */
  FILE *progress;          /* whole-set runs show progress here when they last over 2 s; NULL (default): silent */
} engine;

/* Sizes everything for batches up to max_batch rows of up to max_len tokens (max_len must not exceed the
 * model's positions) and warms up at that shape. 0, or -1 with e set for sizes below 1. */
int engine_init(engine *g, model *m, int max_batch, int max_len, epee_err *e);
void engine_free(engine *g);

/* b: B <= max_batch rows of T <= max_len tokens, ids [B, T] (text) or pixels [B, C, H, W] (image models, T =
 * patches + 1), type_ids [B, T] or NULL (all 0), mask [B, T]
 * (1 real, 0 padding; every row has at least one real token, padding at the end). Under policy p, per row:
 * label[B] (argmax of the answering exit), layers[B] = layers run (1..L, the 1-based exit layer), and
 * probs[B, C] = softmax of the answering exit's logits and ms[B] = milliseconds from the call's start until the
 * row's answer was ready (probs and ms may be NULL). Policy none computes the last exit only: it is the plain
 * full-depth model that early exit is timed against. With m->temperature set, each exit's logits are divided by
 * its temperature (epee_scale_logits) before the policy and the softmax: labels are unchanged, entropies and
 * probabilities are the calibrated ones. */
void engine_classify(engine *g, const model_batch *b, const epee_policy *p, int *label, int *layers, float *probs,
                     float *ms);

/* Full depth: every exit's logits, logits[B, L, C] (calibration, dev evaluation), raw: no temperature. Same input
 * contract. */
void engine_all_exits(engine *g, const model_batch *b, float *logits);

/* A whole encoded set (d->max_len <= max_len, batch <= max_batch) in length-sorted batches of `batch` rows,
 * each padded only to its own longest row. Outputs label[N], layers[N], probs[N, C], ms[N] (as
 * engine_classify: within its batch; probs and ms may be NULL) in the set's order. Returns the wall seconds
 * spent in engine_classify (batch assembly excluded). */
double engine_classify_dataset(engine *g, const ds_encoded *d, int batch, const epee_policy *p, int *label, int *layers,
                               float *probs, float *ms);

/* One policy's run over a set, for engine_run_dataset. Outputs may be NULL. */
typedef struct {
  epee_policy policy;
  int *label, *layers;   /* [N] in the set's order */
  float *probs;          /* [N, C] */
  float *ms;             /* [N]: ms from its batch's start until the row's answer was ready */
  double *call_seconds;  /* [number of batches = ceil(N / batch)]: each engine call's wall time */
  double seconds;        /* out: total wall time in engine_classify */
} engine_pass;

/* Like engine_classify_dataset for several policies at once, for timing them against each other: every
 * batch is classified under each pass's policy in turn, in an order rotated from batch to batch, so a
 * sustained change of machine speed (frequency, neighbours) falls on all passes alike; and the whole is
 * repeated `sweeps` times, each batch keeping its fastest time per pass, so that a short burst of
 * interference in one call does not count. */
void engine_run_dataset(engine *g, const ds_encoded *d, int batch, int sweeps, engine_pass *pass, int n_pass);
#define ENGINE_TIMING_SWEEPS 3 /* what epee-train's test report and epee-infer use */

#endif
