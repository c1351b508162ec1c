/* HuggingFace model folders, both ways: what `model.init: PATH` reads and `export.hf: DIR` writes.
 *
 * A folder holds
 *   config.json              BertConfig / AlbertConfig / GPT2Config / ViTConfig (model_type picks the arch; the
 *                            registry row's hf_keys map its keys onto model_config); an export adds id2label,
 *                            label2id and an "epee" object: the fields HF has no key for (exit_norm, exit_dropout),
 *                            "policy" (the calibrated exit policy: name, tau, patience, and temperatures when
 *                            fitted) and "format": "epee-hf" with "format_version": 1
 *   model.safetensors        the backbone under its HF names, with or without the arch's prefix ("bert.", ...;
 *                            legacy LayerNorm gamma/beta accepted); an export writes the base model's names (as
 *                            BertModel.save_pretrained does) plus the exits as classifiers.<i>.weight / .bias
 *   text:  the tokenizer's files under HF's names (vocab.txt | spiece.model | vocab.json + merges.txt) and
 *          tokenizer_config.json (do_lower_case, model_max_length, tokenizer_class)
 *   image: preprocessor_config.json (image_mean, image_std, size)
 * so that transformers' AutoModel.from_pretrained(DIR) loads the backbone (the exits are reported as unused
 * there). A lone .safetensors file works too, with the arch and every model.* key from the config. */
#ifndef EPEE_HF_FOLDER_H
#define EPEE_HF_FOLDER_H

#include <stdio.h>

#include "infer/model_file.h"
#include "models/model.h"

typedef struct {
  char dir[4096];          /* the folder; "" for a lone .safetensors file */
  char weights[4200];      /* the .safetensors file */
  const model_arch *arch;  /* a folder's config.json model_type; NULL for a lone file */
  model_config cfg;        /* the fields config.json sets (a folder) */
  unsigned from_file;      /* MF_BIT()s of those fields (given, or HF's default for them) */
  int lowercase;           /* tokenizer_config.json do_lower_case; -1 when absent */
  int n_mean, n_std;       /* preprocessor_config.json image_mean / image_std values (0: absent) */
  float mean[3], std[3];
  int image_size;          /* preprocessor_config.json size; 0 when absent */
} hf_source;

/* path: a folder (config.json + model.safetensors) or a .safetensors file. Reads config.json,
 * tokenizer_config.json and preprocessor_config.json when present; loads no weight. 0, or -1 with e set. */
int hf_source_open(const char *path, hf_source *s, epee_err *e);

/* The paths of tokenizer kind k's files in s's folder, into paths[i] (each 4200 bytes). -1 with e set when the
 * folder lacks one. */
int hf_tokenizer_paths(const hf_source *s, const tok_kind *k, char paths[][4200], epee_err *e);

/* What loading did, as HF's from_pretrained reports it. */
typedef struct {
  char **loaded, **unused, **fresh; /* file keys loaded; file keys not used; parameters left as initialised */
  int n_loaded, n_unused, n_fresh;
} hf_report;

/* Copies every tensor of the .safetensors at path that names a parameter of m (converted to float32, straight
 * into the parameter memory) and fills *r. The exits (classifiers.*) are loaded only with load_exits. A shape that
 * differs from the parameter's, a parameter named twice or a non-float tensor for a parameter is -1 with e
 * naming the key and both shapes; *r must be released with hf_report_free either way. */
int hf_load_weights(model *m, const char *path, int load_exits, hf_report *r, epee_err *e);
/* A few lines: counts, then the unused keys and the fresh parameters (the first few of each). */
void hf_report_print(const hf_report *r, const char *source, FILE *f);
/* The whole report as JSON {"source", "loaded", "unused", "initialised"} to path (temp file + rename). */
int hf_report_write(const hf_report *r, const char *source, const char *path, epee_err *e);
void hf_report_free(hf_report *r);

/* Writes m and meta (labels, tokenizer or image normalisation, policy) as the folder dir, built beside it and
 * renamed into place. An existing dir is replaced only if it is an earlier export (its config.json has an
 * "epee" object). 0, or -1 with e set. */
int hf_export(const model *m, const model_meta *meta, const char *dir, epee_err *e);

#endif
