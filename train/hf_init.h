/* model.init and export.hf on the training side: a HuggingFace folder's config.json, tokenizer and image
 * preprocessing merged into the run's config, its weights loaded over the random initialisation, and the
 * folder written back after calibration (the formats: infer/hf_folder.h). */
#ifndef EPEE_TRAIN_HF_INIT_H
#define EPEE_TRAIN_HF_INIT_H

#include "infer/model_file.h"
#include "train/config.h"

/* Before cfg_validate, for a new run: model.init's config.json sets model.arch and the model.* keys it has
 * (an explicit key that disagrees is an error naming both; explicit dropout and init_std win, as training
 * choices), its tokenizer files set tokenizer.vocab / merges and its do_lower_case tokenizer.lowercase, its
 * preprocessor_config.json image.mean / std. A lone .safetensors changes nothing. 0, or -1 with e set. */
int hf_init_config(epee_config *c, epee_err *e);

/* After the random initialisation of a new run: loads model.init's tensors into m (the exits only with
 * model.init_exits), prints the load report and writes it to run.dir/init_report.json. */
int hf_init_weights(model *m, const epee_config *c, epee_err *e);

/* export.hf, when set: writes the folder (relative to run.dir) for m and meta. */
int hf_init_export(const model *m, const model_meta *meta, const epee_config *c, epee_err *e);

/* epee-train --export-hf RUN_DIR DIR: the run's model file (export.path in RUN_DIR) as the folder DIR. */
int hf_export_run(const char *run_dir, const char *dir, epee_err *e);

#endif
