/* EPEE-C inference: the one public header.
 *
 *   epee_model *m = epee_model_load("runs/bert_go/model.h5", err, sizeof err);
 *   epee_session *s = epee_session_new(m, 64, err, sizeof err);      // one per thread
 *   epee_classify_texts(s, texts, NULL, n, NULL, labels, layers, probs, err, sizeof err);
 *   epee_session_free(s); epee_model_free(m);
 *
 * Concurrency: a loaded epee_model is immutable and may be shared by any number of threads; each
 * thread classifies through its OWN epee_session (which owns the activation memory and scratch
 * buffers). A session is not thread-safe; a model is. After a session's first call at its largest
 * batch, calls allocate nothing.
 * Policy: pass NULL for the policy calibrated on dev and stored in the model file, or your own
 * (e.g. {EPEE_POLICY_NONE} for full depth). */
#ifndef EPEE_H
#define EPEE_H

#include <stddef.h>
#include <stdint.h>

#include "infer/policy.h"

typedef struct epee_model epee_model;
typedef struct epee_session epee_session;

epee_model *epee_model_load(const char *path, char *err, size_t err_len);
void epee_model_free(epee_model *m);
int epee_model_num_labels(const epee_model *m);
int epee_model_num_layers(const epee_model *m);
int epee_model_max_length(const epee_model *m);
const char *epee_model_label(const epee_model *m, int i);
epee_policy epee_model_policy(const epee_model *m); /* the calibrated one */

/* max_batch: the largest n a call on this session may pass */
epee_session *epee_session_new(const epee_model *m, int max_batch, char *err, size_t err_len);
void epee_session_free(epee_session *s);

/* n raw texts (texts_b: second segments or NULL), tokenised with the model's own WordPiece vocabulary
 * and truncated to its max length. Per input: labels[n], exit_layers[n] (1..L), probs[n * C] (may be
 * NULL). Returns 0, or -1 with err set (n above max_batch, ...). */
int epee_classify_texts(epee_session *s, const char *const *texts, const char *const *texts_b, int n,
                        const epee_policy *policy, int *labels, int *exit_layers, float *probs, char *err,
                        size_t err_len);
/* n rows of token ids [n, T] (type_ids may be NULL, mask 1 real / 0 padding at the end). */
int epee_classify_ids(epee_session *s, const int32_t *ids, const int32_t *type_ids, const float *mask, int n, int T,
                      const epee_policy *policy, int *labels, int *exit_layers, float *probs, char *err,
                      size_t err_len);

#endif
