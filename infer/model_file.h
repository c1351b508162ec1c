/* The model file: one HDF5 file holding everything the engine needs, and nothing from training.
 * Format "epee-model", version "3":
 *   user block          512 bytes: the seal, a checksum and the size of the rest of the file, checked before
 *                       HDF5 reads anything (core/h5io.h; HDF5 and h5py skip user blocks)
 *   root attributes (UTF-8 strings)
 *     format            "epee-model"
 *     format_version    "3"
 *     arch              a backbone of the registry (models/registry.c): "bert", "albert", "gpt2", "vit"
 *     model_config      JSON: the model_config fields the arch reads ({"vocab": 30522, "hidden": 768, ...})
 *     tokenizer_config  text archs, JSON: {"type": "wordpiece" | "sentencepiece" | "bpe", "lowercase": true,
 *                       "max_length": 128}
 *     image_config      image archs instead, JSON (as HF's preprocessor_config): {"image_mean": [0.5],
 *                       "image_std": [0.5], "resize": "refuse" | "bilinear"}, one mean and std per channel
 *     policy            JSON: the calibrated exit policy {"name": "epee", "tau": 0.05, "patience": 2}, and when
 *                       temperature scaling was fitted, "temperature": [T_1, ..., T_L] (one per exit, in
 *                       [0.001, 1000]; exit i's logits are divided by T_i before the policy and the softmax;
 *                       files without it, as before this key existed, serve the raw logits)
 *     metrics           JSON, opaque here: dev/test results written by the trainer (optional)
 *     train_config      JSON, opaque here: the effective training config (optional)
 *     checksum          "fnv1a64:<16 hex>" over the strings above and the labels (optional: a file edited by hand
 *                       drops it; when present, a mismatch refuses the file)
 *   datasets
 *     labels            strings [C], class order of the exits' logits
 *     tokenizer/<file>  text archs: uint8, the tokenizer's files byte for byte under their HuggingFace names: vocab.txt
 *                       (WordPiece), spiece.model (SentencePiece), vocab.json + merges.txt (GPT-2 BPE)
 *     weights/<key>     float32 in PyTorch orientation, <key> = the HuggingFace state_dict key, e.g.
 *                       weights/bert.encoder.layer.0.attention.self.query.weight (GPT-2's Conv1D weights are
 *                       [in, out], as HF stores them), and the exits as weights/classifiers.<i>.weight [C, D] and
 *                       weights/classifiers.<i>.bias [C]
 * Weights and tokenizer files are stored with HDF5's Fletcher-32 checksum filter (h5py reads it natively) and the
 * strings are covered by `checksum`, so a corrupted file is reported instead of served. h5py loads the weights
 * into PyTorch by name (experiments/check_export.py). Both sides of the format live in this file. */
#ifndef EPEE_MODEL_FILE_H
#define EPEE_MODEL_FILE_H

#include "core/h5io.h"
#include "data/images.h"
#include "data/tokenizer.h"
#include "infer/policy.h"
#include "models/model.h"

#define EPEE_MODEL_FORMAT "epee-model"
#define EPEE_MODEL_VERSION "3" /* 2: sealed (core/h5io.h); 3: any arch, tokenizer files as bytes */

typedef struct {
  char **labels;             /* [n_labels] == the model's num_labels */
  int n_labels;
  tokenizer *tok;            /* text: its kind, lowercase and files are written; a read file owns it */
  int max_length;            /* text: tokenizer_config; tok_min_len <= max_length <= max_position. A read image
                                model: its tokens per image (patches + [CLS]) */
  img_norm norm;             /* images: image_config, per channel */
  int resize;                /* images: 1 = an image of another size is resized bilinearly, 0 = refused */
  epee_policy policy;        /* the calibrated one */
  char *metrics_json, *train_config_json; /* opaque; NULL is written as "{}" */
} model_meta;

/* Writes m (its parameters, by name) and meta to path atomically (temp file + rename): a crash never
 * leaves a half-written model. Checks that meta agrees with m first. 0, or -1 with e set. */
int model_file_write(const char *path, const model *m, const model_meta *meta, epee_err *e);

/* Validates path and loads it: builds *m (the arch's registry row + weights) and fills *meta, both owned by the
 * caller (model_free, model_meta_free). Every problem (not HDF5, truncated, corrupted, foreign, unknown
 * version, missing or misshapen dataset, inconsistent config, non-finite weight) is -1 with ONE line
 * "PATH: what" in e; on failure nothing needs freeing. */
int model_file_read(const char *path, model *m, model_meta *meta, epee_err *e);

/* The policy object of meta, with m's temperatures when set: {"name", "tau", "patience"[, "temperature"]} (the
 * model file's policy attribute; HF export's "epee" "policy"). */
struct json_t *model_policy_json(const model *m, const model_meta *meta);
/* The model_config JSON of m (the fields its arch reads), malloc'ed. */
char *model_config_to_json(const model *m);
/* Reads the fields arch reads from a model_config JSON object into *cfg (training-only fields default to 0 and
 * init_std 0.02); where names the text in messages ("FILE: attribute 'model_config'"). 0, or -1 with e set. */
int model_config_from_json(const model_arch *arch, const char *json, const char *where, model_config *cfg,
                           epee_err *e);

/* Frees what model_file_read allocated (not for a caller-built meta) and zeroes it. */
void model_meta_free(model_meta *meta);

/* group/<name> for every parameter of ps, checksummed (also the trainer's checkpoints). */
int weights_write(hid_t f, const param_store *ps, const char *group, epee_err *e);
/* Reads group/<name> into every parameter of ps, checking each shape; file names the file in messages. */
int weights_read(hid_t f, const char *file, const param_store *ps, const char *group, epee_err *e);

#endif
