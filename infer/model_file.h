/* The model file: one HDF5 file holding all the engine needs (format "epee-model", version 1).
 *   root attributes: format, format_version, arch, model_config (JSON), tokenizer_config (JSON),
 *                    policy (JSON: name, tau, patience), metrics (JSON, opaque), train_config (JSON, opaque)
 *   labels              strings [C]
 *   tokenizer/vocab     strings [V] (WordPiece, one per id)
 *   weights/<HF key>    float32, PyTorch orientation, incl. weights/classifiers.<i>.weight/bias
 * h5py loads the weights into the PyTorch twin by name (experiments/check_export.py).
 * Both sides of the format live here. */
#ifndef EPEE_MODEL_FILE_H
#define EPEE_MODEL_FILE_H

#include "core/h5io.h"
#include "infer/policy.h"
#include "models/bert.h"

#define EPEE_MODEL_FORMAT "epee-model"
#define EPEE_MODEL_VERSION "1"

typedef struct {
  char *arch;
  bert_config bert;
  char **labels;
  int n_labels;
  char **vocab;
  int n_vocab;
  int lowercase, max_length;
  epee_policy policy;
  char *metrics_json, *train_config_json;
} model_meta;

/* Writes atomically (temp file + rename). */
int model_file_write(const char *path, const model *m, const model_meta *meta, epee_err *e);
/* Validates and loads: builds *m and fills *meta (free with model_free / model_meta_free). */
int model_file_read(const char *path, model *m, model_meta *meta, epee_err *e);
void model_meta_free(model_meta *meta);

/* group/<name> for every parameter of the store; reading checks each shape */
int weights_write(hid_t f, const param_store *ps, const char *group, epee_err *e);
int weights_read(hid_t f, const char *file, const param_store *ps, const char *group, epee_err *e);

#endif
