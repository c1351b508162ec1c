/* Run configuration of epee-train: a YAML file (read with libyaml) plus `section.key=value` overrides,
 * converted into the typed struct below through ONE schema table in config.c (key, type, default, range,
 * help). Loading, overrides, defaults, validation, --help, the written effective config and the JSON copy
 * embedded in model files are all generated from that table.
 *
 * Typical use:
 *     epee_config c; epee_err e;
 *     if (cfg_load(path, &c, &e) || cfg_override(&c, "train.lr=3e-4", &e) || cfg_validate(&c, &e))
 *       fprintf(stderr, "%s\n", e.msg);
 *     ... cfg_free(&c);
 *
 * Ownership: strings and lists are heap-owned by the struct; strings are never NULL ("" when empty).
 * Relative paths are kept exactly as written and are therefore relative to the process's current working
 * directory (not to the YAML file), so a config means the same whether it is the original or the copy
 * written next to a run. Exception by meaning, not by rewriting: export.path is joined to run.dir by the
 * exporter. Floats are stored as double. */
#ifndef EPEE_TRAIN_CONFIG_H
#define EPEE_TRAIN_CONFIG_H

#include <stdbool.h>
#include <stdio.h>
#include <yaml.h>

#include "core/error.h"

typedef struct { double *v; int n; } cfg_flist;
typedef struct { int *v; int n; } cfg_ilist;
typedef struct { char **v; int n; } cfg_slist;

/* Enumerations are stored as these C enums; cfg_*_names[value] is the YAML spelling (NULL-terminated). */
typedef enum { CFG_FORMAT_AUTO, CFG_FORMAT_TSV, CFG_FORMAT_JSONL, CFG_FORMAT_NPZ, CFG_FORMAT_IMAGE_FOLDER } cfg_format;
typedef enum { CFG_RESIZE_REFUSE, CFG_RESIZE_BILINEAR } cfg_resize;
typedef enum { CFG_BEST_LAST_ACC, CFG_BEST_LAST_F1, CFG_BEST_MEAN_ACC } cfg_best_metric;
typedef enum { CFG_RULE_FASTEST_WITHIN, CFG_RULE_MAX_ACCURACY, CFG_RULE_LAYER_BUDGET, CFG_RULE_RISK } cfg_rule;
typedef enum { CFG_METRIC_ACCURACY, CFG_METRIC_MACRO_F1 } cfg_metric;
typedef enum { CFG_RISK_DISAGREEMENT, CFG_RISK_ACCURACY_DROP } cfg_risk;
typedef enum { CFG_WEIGHTS_ASC, CFG_WEIGHTS_UNIFORM, CFG_WEIGHTS_DESC, CFG_WEIGHTS_LIST } cfg_weights_kind;
extern const char *const cfg_format_names[];
extern const char *const cfg_resize_names[];
extern const char *const cfg_best_metric_names[];
extern const char *const cfg_rule_names[];
extern const char *const cfg_metric_names[];
extern const char *const cfg_risk_names[];
extern const char *const cfg_weights_names[]; /* the presets only: asc, uniform, desc */

/* Per-exit loss weights: a preset, or an explicit list (kind == CFG_WEIGHTS_LIST, one weight per layer). */
typedef struct {
  cfg_weights_kind kind;
  cfg_flist list;
} cfg_weights;

/* One struct per YAML section; member names are the YAML key names (config.c stringizes them). */
typedef struct {
  int arch; /* index into model_arch_names (models/model.h): the backbone registry */
  int hidden, layers, heads, intermediate, max_position, type_vocab;
  int embedding_size, hidden_groups; /* ALBERT */
  bool exit_norm;                    /* GPT-2, ViT */
  int image_size, patch_size, channels; /* ViT */
  double hidden_dropout, attention_dropout, exit_dropout, layer_norm_eps, init_std;
  int num_labels; /* 0 = number of labels found in the data */
  char *init;      /* a HF model folder or .safetensors to start from; "" = random initialisation */
  bool init_exits; /* also load the exits (classifiers.*) from model.init */
} cfg_model;

typedef struct {
  char *kind;          /* "" = the arch's default kind */
  char *vocab, *merges; /* the kind's files: vocab.txt / spiece.model / vocab.json, and BPE merges */
  bool lowercase;
  int max_length;
} cfg_tokenizer;

typedef struct {
  char *train, *dev, *test;
  cfg_format format;
  char *text_column, *text_b_column, *label_column; /* text_b_column "" = single-text task */
  cfg_slist labels;                                  /* empty = discover from the train split */
} cfg_data;

typedef struct {
  cfg_flist mean, std; /* per channel on x / 255; one value = every channel */
  cfg_resize resize;   /* an image of another size than model.image_size: refused, or resized */
  int crop_padding;    /* training augmentation: random crop after zero padding; 0 = off */
  bool hflip;          /* training augmentation: horizontal flip with probability 0.5 */
} cfg_image;

typedef struct {
  int epochs, max_steps, batch_size;
  double lr, exit_lr, weight_decay, warmup, clip, adam_beta1, adam_beta2, adam_eps;
  cfg_weights loss_weights;
  int eval_every;
  cfg_best_metric best_metric;
  int early_stop, log_every;
  double checkpoint_every_s; /* 0 = only at evaluations */
} cfg_train;

typedef struct {
  cfg_slist policies;
  cfg_flist tau;
  cfg_flist tau_range; /* [from, to, count]: replaces tau with count log-spaced values; empty = use tau */
  cfg_ilist patience;  /* empty = 1..layers-1 */
  cfg_rule rule;
  cfg_metric metric;
  double within, max_recall_drop, layer_budget;
  cfg_risk risk;
  double epsilon, delta;
  bool temperature;
  int batch;
} cfg_calibrate;

typedef struct {
  char *path;
  bool enabled;
  char *hf; /* also a HF model folder (infer/hf_folder.h), relative to run.dir; "" = none */
} cfg_export;

typedef struct {
  char *dir;
  int seed, threads;
  bool profile; /* time the training steps per op kind (core/profile.h) */
} cfg_run;

typedef struct epee_config {
  cfg_model model;
  cfg_tokenizer tokenizer;
  cfg_data data;
  cfg_image image;
  cfg_train train;
  cfg_calibrate calibrate;
  cfg_export export;
  cfg_run run;
  unsigned char given[256]; /* per schema row: set by the file or an override, not a default (cfg_given) */
} epee_config;

/* Fills *c with every default; *c is overwritten, not freed (pass a fresh or cfg_free'd struct). */
void cfg_defaults(epee_config *c);

/* Defaults, then the YAML file at path. The file must give the required keys (data.train/dev/test, run.dir).
 * Errors: -1 and one line "path:line:col: message" (1-based, at the offending node). Either way *c must be
 * released with cfg_free. */
int cfg_load(const char *path, epee_config *c, epee_err *e);

/* Applies one "section.key=value"; value is a YAML scalar or flow list ("[a, b]"), checked like the file.
 * Errors: -1, "override 'section.key=value': message", and *c unchanged. */
int cfg_override(epee_config *c, const char *assignment, epee_err *e);

/* Checks a finished config: required keys, every range, and the rules between keys (hidden divisible by
 * heads, one loss weight per layer, patience < layers, ...). Errors: -1, "config: message". */
int cfg_validate(const epee_config *c, epee_err *e);

/* Writes the effective config as commented YAML (temp file + rename: never a half-written file);
 * cfg_load reads it back to an equal config. */
int cfg_write(const epee_config *c, const char *path, epee_err *e);

/* One line per key: section.key, type, default, help, range / choices. */
void cfg_print_help(FILE *f);

/* 1 if key ("section.key") was set by the file or an override rather than left at its default. */
bool cfg_given(const epee_config *c, const char *key);
/* The value of a number or bool key ("section.key") as a double into *v; -1 for any other key. */
int cfg_number(const epee_config *c, const char *key, double *v);

/* run.threads, or when it is 0 the cores this process may use. */
int cfg_threads(const epee_config *c);

/* The schema type of key ("section.key"): "int", "float", "bool", "string", "enum", ... ; NULL if no such key. */
const char *cfg_key_type(const char *key);

/* Reads the YAML file at path into *d (the caller deletes it) with the checks configs get: one document,
 * nesting depth bounded, syntax errors as "path:line:col: ...". For other YAML inputs (sweep files). */
int cfg_yaml_load(const char *path, yaml_document_t *d, epee_err *e);

/* Frees strings and lists and leaves *c zeroed; safe to call twice. */
void cfg_free(epee_config *c);

/* malloc'd compact JSON object {"section":{"key":value,...},...} for embedding in model files. */
char *cfg_to_json(const epee_config *c);

/* tokenizer.kind, or the arch's default kind when it is empty ("" for an image arch). */
const char *cfg_tokenizer_kind(const epee_config *c);

/* data.format, with auto resolved from the file: .tsv/.jsonl/... as dataset.h says, .npz, or a directory
 * (image_folder). */
cfg_format cfg_data_format(const char *path, cfg_format f);

/* Expands loss weights to w[0..layers-1]: asc w_i = i, uniform 1, desc layers + 1 - i (i 1-based),
 * list copied (its length must equal layers: cfg_validate checks it). */
void cfg_loss_weights(const cfg_weights *w, int layers, double *out);

#endif
