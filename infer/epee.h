/* EPEE-C inference: the one public header (self-contained: it needs only the C standard headers).
 *
 *   char err[512];
 *   epee_model *m = epee_model_load("runs/bert_go/model.h5", err, sizeof err);   // NULL: err says why
 *   epee_session *s = epee_session_new(m, 32, err, sizeof err);                    // one per thread
 *   const char *texts[2] = {"The chemical reactions involving glucose.", "Any process that ..."};
 *   int label[2], layer[2];
 *   if (epee_classify_texts(s, 2, texts, NULL, NULL, label, layer, NULL))
 *     fprintf(stderr, "%s\n", epee_session_error(s));
 *   printf("%s after %d of %d layers\n", epee_model_label(m, label[0]), layer[0], epee_model_num_layers(m));
 *   epee_session_free(s);
 *   epee_model_free(m);
 *
 * Concurrency: a loaded epee_model is immutable; any number of threads may share it. Each thread
 * classifies through its OWN epee_session, which owns the activation memory, the token buffers and the
 * error message: a session is not thread-safe, a model is. Free every session before its model.
 * Memory: a session holds activations for max_batch inputs of the model's max length, sized once when it
 * is created; classifying then allocates nothing in the engine.
 *
 * Early exit: the model runs layer by layer; an input leaves at the first layer where the exit policy
 * fires and its answer is that layer's exit. A batch is compacted as inputs leave, so every input's
 * result is the same as when it is classified alone. */
#ifndef EPEE_H
#define EPEE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; epee_version() is the library's, so a program can check they agree. */
#define EPEE_VERSION_MAJOR 0
#define EPEE_VERSION_MINOR 1
#define EPEE_VERSION_PATCH 0
#define EPEE_VERSION_STRING "0.1.0"

/* libepee.so exports exactly the functions marked EPEE_API (everything else is built hidden). */
#if defined(__GNUC__)
#define EPEE_API __attribute__((visibility("default")))
#else
#define EPEE_API
#endif

/* "MAJOR.MINOR.PATCH" of the library in use. */
EPEE_API const char *epee_version(void);

typedef struct epee_model epee_model;
typedef struct epee_session epee_session;

/* An exit policy. name: "none" (all layers), "entropy" (exit when the normalised entropy of the exit's
 * softmax is below tau), "patience" (exit when the prediction held for `patience` more layers), "epee"
 * (entropy OR patience), "pcee" (entropy below tau for `patience` layers in a row). */
typedef struct {
  const char *name;
  float tau;
  int patience;
} epee_exit_policy;

/* Loads and validates a model file written by epee-train. NULL with a one-line reason in err (if err is
 * not NULL) on any problem with the file. */
EPEE_API epee_model *epee_model_load(const char *path, char *err, size_t err_len);
EPEE_API void epee_model_free(epee_model *m);

EPEE_API int epee_model_num_labels(const epee_model *m);
EPEE_API const char *epee_model_label(const epee_model *m, int i); /* label name of class i, NULL outside [0, C) */
EPEE_API int epee_model_num_layers(const epee_model *m);
EPEE_API int epee_model_max_length(const epee_model *m); /* tokens per input, longer texts are truncated */
/* Image models (ViT): images are image_size x image_size with `channels` (1 grey, 3 RGB); 0 for a text model. */
EPEE_API int epee_model_image_size(const epee_model *m);
EPEE_API int epee_model_channels(const epee_model *m);
/* the policy calibrated on dev, stored in the file */
EPEE_API epee_exit_policy epee_model_policy(const epee_model *m);
EPEE_API const char *epee_model_metrics_json(const epee_model *m); /* dev/test metrics from training, JSON */

/* A session for one thread: up to max_batch inputs per internal batch (calls may pass more; they are
 * processed in chunks of max_batch). NULL with err set if max_batch < 1. */
EPEE_API epee_session *epee_session_new(const epee_model *m, int max_batch, char *err, size_t err_len);
EPEE_API void epee_session_free(epee_session *s);

/* Classifies n raw UTF-8 texts (texts_b: the second segments of a pair task, or NULL), tokenised with the
 * model's own tokenizer (stored in the model file) and truncated to its max length. policy: NULL for the calibrated one,
 * else any policy for this call only. Per input i: labels[i] (class index), exit_layers[i] (layers run,
 * 1..L), probs[i * C + c] (softmax of the answering exit) and ms[i] (milliseconds from the start of the call
 * until input i's answer was ready: early exits are answered before the rest of their batch). exit_layers,
 * probs and ms may be NULL. Returns 0, or -1 with epee_session_error(s) set (nothing is written then). */
EPEE_API int epee_classify_texts(epee_session *s, int n, const char *const *texts, const char *const *texts_b,
                                 const epee_exit_policy *policy, int *labels, int *exit_layers, float *probs,
                                 float *ms);

/* The same for n inputs already tokenised: ids [n, T] (each in [0, vocab)), type_ids [n, T] or NULL (all 0),
 * mask [n, T] (1 real token, 0 padding, normally at the end; every row starts with a real token, [CLS]),
 * 1 <= T <= max length. */
EPEE_API int epee_classify_ids(epee_session *s, int n, int T, const int32_t *ids, const int32_t *type_ids,
                               const float *mask, const epee_exit_policy *policy, int *labels, int *exit_layers,
                               float *probs, float *ms);

/* Classifies n images of an image model: pixels [n, S, S, C] uint8, interleaved as decoded (S =
 * epee_model_image_size, C = epee_model_channels; resize beforehand), normalised with the model's stored mean and
 * std. Outputs as epee_classify_texts. A text model refuses images, and an image model refuses texts and ids. */
EPEE_API int epee_classify_images(epee_session *s, int n, const uint8_t *pixels, const epee_exit_policy *policy,
                                  int *labels, int *exit_layers, float *probs, float *ms);

/* One line describing the session's last failed call ("" if none failed). */
EPEE_API const char *epee_session_error(const epee_session *s);

#ifdef __cplusplus
}
#endif

#endif
