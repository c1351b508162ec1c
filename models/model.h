/* The backbone interface shared by training and the engine, and the registry of backbones.
 *
 * A backbone is three functions over core ops: embed the batch, run one layer, run one exit. Run under a
 * tape they train; run with grad mode off they are the inference path. The engine calls them layer by layer
 * (so it can stop rows early); the trainer calls model_forward_all.
 *
 * Adding a backbone = one file in models/ (its create function declares the parameters under their HF
 * state_dict names and sets the three functions) plus one row in models/registry.c. Nothing outside models/
 * names an arch: the trainer, the model file, the engine and both CLIs see only model_arch and model. */
#ifndef EPEE_MODEL_H
#define EPEE_MODEL_H

#include <stdbool.h>

#include "core/params.h"

/* One batch of inputs, rows padded at the end to T. Embeddings read ids/type_ids (or pixels); layers and exits
 * read only B, T and the mask (GPT-2 finds its last real token from the mask), which is all the engine
 * compacts between layers. */
typedef struct {
  int B, T;
  const int32_t *ids;      /* [B, T] */
  const int32_t *type_ids; /* [B, T] or NULL (all 0) */
  const float *mask;       /* [B, T] 1 real, 0 padding */
  const float *pixels;     /* [B, C, H, W] for image models */
} model_batch;

/* The model.* configuration: the union of what the backbones read. A registry row says which fields its
 * arch reads (model_arch.fields); only those go into the model file's model_config. */
typedef struct {
  int vocab, hidden, layers, heads, intermediate, max_position, type_vocab, num_labels;
  int embedding_size, hidden_groups; /* ALBERT: factorised embeddings, layer groups sharing weights */
  int exit_norm;                     /* GPT-2, ViT: exits read the shared final LayerNorm's output */
  int image_size, patch_size, channels; /* ViT: square images of channels x image_size^2, patches of patch_size^2 */
  float hidden_dropout, attention_dropout, exit_dropout, layer_norm_eps, init_std;
} model_config;

/* The fields, one row each, in model_config order: name (also the JSON key), type, range, and whether only
 * training needs it (a model file may then omit it). MF_<NAME> bits select fields in model_arch.fields. */
typedef enum {
  MF_VOCAB, MF_HIDDEN, MF_LAYERS, MF_HEADS, MF_INTERMEDIATE, MF_MAX_POSITION, MF_TYPE_VOCAB, MF_NUM_LABELS,
  MF_EMBEDDING_SIZE, MF_HIDDEN_GROUPS, MF_EXIT_NORM, MF_IMAGE_SIZE, MF_PATCH_SIZE, MF_CHANNELS, MF_HIDDEN_DROPOUT, MF_ATTENTION_DROPOUT, MF_EXIT_DROPOUT,
  MF_LAYER_NORM_EPS, MF_INIT_STD, MF_COUNT
} model_field_id;
typedef enum { MFT_INT, MFT_BOOL, MFT_FLOAT } model_field_type;
typedef struct {
  const char *name;
  model_field_type type;
  size_t offset;
  double lo, hi;
  bool train_only;
} model_field;
extern const model_field model_fields[MF_COUNT];
#define MF_BIT(f) (1u << (f))

typedef struct model model;

/* What a backbone reads: token ids (model_batch.ids, a tokenizer in front) or images (model_batch.pixels). */
typedef enum { MODEL_INPUT_TEXT, MODEL_INPUT_IMAGE } model_input;

/* One key of HF's config.json (BertConfig, AlbertConfig, GPT2Config, ViTConfig) for an arch: either a
 * model_config field (field >= 0), or a setting this build implements one way (field -1: when present, the key
 * must have the value `is`, e.g. hidden_act "gelu"). Export writes every row, import reads every row. */
typedef struct {
  const char *key;
  int field;      /* MF_*, or -1 */
  double def;     /* field: value when the key is absent or null; NAN = required */
  int def_hidden; /* field: when absent or null, def_hidden x hidden instead (GPT-2's n_inner: 4 x n_embd) */
  const char *is; /* field -1: the value as JSON text ("gelu" unquoted, true, 1) */
} hf_key;

typedef struct {
  const char *name;              /* model.arch, the model file's arch */
  const char *summary;           /* one line for --help */
  unsigned fields;               /* MF_BIT()s of the model_config fields it reads */
  model_input input;
  const char *const *tokenizers; /* text: kinds it accepts (NULL-terminated), the first is its default; image: NULL */
  const char *hf_prefix;         /* its backbone's HF state_dict key prefix: "bert.", "albert.", "transformer.", "vit." */
  const char *hf_model_type;     /* config.json "model_type" */
  const char *hf_class;          /* config.json "architectures" of an export: the HF base model class */
  const hf_key *hf_keys;         /* its config.json keys, {NULL}-terminated */
  /* Declares every parameter (model_create allocates them). -1 with e set on an invalid config. */
  int (*create)(model *m, epee_err *e);
  /* Random initialisation as HF's _init_weights (seeded; streams apart from dropout's). */
  void (*init)(model *m, uint64_t seed);
} model_arch;

struct model {
  const model_arch *arch;
  model_config cfg;
  int n_layers, n_labels, hidden; /* = cfg.layers, cfg.num_labels, cfg.hidden */
  param_store ps;
  void *impl;
  float *temperature; /* [n_layers] or NULL: exit l's logits are divided by temperature[l] before the exit policy
                         and the probabilities (infer/engine.c; fitted on dev, stored in the model file); owned */
  tensor *(*embed)(epee_ctx *c, model *m, const model_batch *b);                    /* -> [B, T, D] */
  tensor *(*layer)(epee_ctx *c, model *m, int l, tensor *h, const model_batch *b); /* [B,T,D] -> [B,T,D] */
  tensor *(*exit)(epee_ctx *c, model *m, int l, tensor *h, const model_batch *b);  /* [B,T,D] -> [B, C] */
  void (*free_impl)(model *m);
};

/* The registry (models/registry.c). model_arch_names is NULL-terminated, in table order. */
const model_arch *model_find_arch(const char *name);
extern const char *const model_arch_names[];
/* 1 if the arch takes tokenizer kind (NULL: no); otherwise 0 with its kinds, ", "-joined, in list[len]. */
int model_arch_takes_tokenizer(const model_arch *a, const char *kind, char *list, size_t len);

/* Builds *m for arch from cfg: checks the fields the arch reads (ranges, hidden % heads, ...), declares the
 * parameters, refuses more than max_weights floats (0 = no limit: a model file's size bounds what it can hold,
 * checked before anything is allocated), then allocates them (zeroed) for `use`. -1 with e set. */
int model_create(model *m, const model_arch *arch, const model_config *cfg, params_use use, int64_t max_weights,
                 epee_err *e);
void model_free(model *m);

/* ---- HuggingFace config.json (models/hf_config.c), as jansson values (core/json.h) ---- */
struct json_t;
/* The arch whose hf_model_type is t, or NULL. */
const model_arch *model_find_hf_type(const char *t);
/* Reads config.json's object (read with epee_json_parse, which refuses a key given twice) into the fields arch
 * reads: each row of arch->hf_keys, then fields HF has no key for (exit_norm, ...) from its "epee" object when
 * present. *from_file gets the MF_BIT()s config.json decides (a key
 * it gives, or HF's default for one it omits: GPT-2's layer_norm_epsilon 1e-5). Ranges and
 * hidden % heads are checked; where names the file in messages. 0, or -1 with e set. */
int hf_config_read(const model_arch *arch, const struct json_t *root, const char *where, model_config *c,
                   unsigned *from_file, epee_err *e);
/* config.json's object for m: model_type, architectures, every hf_keys row, and an "epee" object with the fields
 * HF has no key for. The caller adds the rest (labels) and releases it (json_decref). */
struct json_t *hf_config_write(const model *m);

/* Positions per input: text the longest input (cfg.max_position), images the patches + [CLS]. */
int model_max_tokens(const model *m);

/* Token type ids the model takes: cfg.type_vocab when its arch reads types, else 1 (only 0). Text pairs need
 * two types, or an arch without types (GPT-2 separates a pair by a token). */
int model_type_vocab(const model *m);
int model_takes_pairs(const model *m);

/* All L exits' logits (logits[l] is [B, C]) for training and calibration. */
void model_forward_all(epee_ctx *c, model *m, const model_batch *b, tensor **logits);

/* ---- helpers for the backbone files ---- */

/* Declares a parameter named fmt with %d = l (the layer or exit index; ignored when fmt has none). */
tensor *model_decl(model *m, int is_exit, int ndim, const int *shape, const char *fmt, int l);
#define MAT(r, cols) 2, ((int[]){(r), (cols)})
#define VEC(n) 1, ((int[]){(n)})
/* HF's default init: matrices N(0, cfg.init_std), biases 0, norm gains 1 (every 1-D ".weight" is a gain). */
void model_init_default(model *m, uint64_t seed);
/* Row indices b*T + last_b of each row's last real token (mask), in the context's arena: GPT-2 pooling. */
int *model_last_rows(epee_ctx *c, const float *mask, int B, int T);

#endif
