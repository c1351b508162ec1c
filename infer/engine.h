/* The batched early-exit engine. Runs a model layer by layer with grad mode off (no tape, nothing
 * saved): after each layer every active row's exit logits go through the exit policy (infer/policy.h,
 * the same code calibration simulates), rows that exit write their answer, and the rest are COMPACTED
 * (hidden states, ids, mask) so later layers run on fewer rows; the length is also trimmed to the
 * longest remaining row (padding sits at the end and masked keys never reach real tokens, so this is
 * exact). Per-layer temporaries are released with arena marks; hidden states live in two preallocated
 * ping-pong buffers. After engine_init's warm-up at the largest shape nothing is allocated per call.
 * An engine is one thread's: share the model, not the engine. */
#ifndef EPEE_ENGINE_H
#define EPEE_ENGINE_H

#include "data/dataset.h"
#include "infer/policy.h"
#include "models/model.h"

typedef struct {
  model *m;
  epee_ctx ctx;
  int max_batch, max_len;
  float *h[2];             /* [max_batch, max_len, D] ping-pong hidden states */
  int32_t *ids, *types;    /* compacted inputs [max_batch * max_len] */
  float *mask;
  int *row, *len;          /* active row -> caller's row; real length per active row */
  epee_exit_state *state;  /* per active row */
  float *probs;            /* [C] scratch */
} engine;

int engine_init(engine *g, model *m, int max_batch, int max_len, epee_err *e);
void engine_free(engine *g);

/* B rows of token ids [B, T] (+ type ids or NULL, mask) -> per row: label, layers run (1..L), and
 * probabilities [B, C] (softmax of the answering exit; probs may be NULL). B <= max_batch, T <= max_len. */
void engine_classify(engine *g, const model_batch *b, const epee_policy *p, int *label, int *layers, float *probs);

/* every exit's logits at full depth: logits [B, L, C] */
void engine_all_exits(engine *g, const model_batch *b, float *logits);

/* A whole encoded set in length-sorted batches of `batch` rows (each padded to its own longest row);
 * outputs in the set's order. Returns the wall seconds spent in the engine. */
double engine_classify_dataset(engine *g, const ds_encoded *d, int batch, const epee_policy *p, int *label, int *layers,
                               float *probs);

#endif
