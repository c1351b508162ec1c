/* What a run works on: the tokenizer (text) or nothing (images), the three encoded splits with their label set,
 * and the model built from the config. Shared by training and by `epee-train --calibrate`. */
#ifndef EPEE_JOB_H
#define EPEE_JOB_H

#include "data/dataset.h"
#include "data/tokenizer.h"
#include "models/model.h"
#include "train/config.h"

enum { SPLIT_TRAIN, SPLIT_DEV, SPLIT_TEST, SPLIT_COUNT };
extern const char *const split_names[SPLIT_COUNT];

typedef struct {
  const epee_config *cfg;
  tokenizer *tok; /* NULL for an image arch */
  ds_raw raw[SPLIT_COUNT];
  ds_encoded enc[SPLIT_COUNT];
  char **labels; /* = raw[SPLIT_TRAIN].label_names, data.labels, or the train images' classes (own_labels) */
  int n_labels, own_labels;
  model m;
} job;

/* Loads tokenizer and data (printing counts and truncation), builds the model with zeroed weights. */
int job_open(job *j, const epee_config *cfg, epee_err *e);
void job_close(job *j);

#endif
