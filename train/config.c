/* Config: ONE schema table (`fields` below) drives defaults, the YAML file, command-line overrides,
 * validation, --help, the written effective config and the JSON copy. Adding a key = one struct member
 * in config.h + one table row here.
 *
 * Values of every origin go through the same converter (parse_value on a libyaml node): the defaults
 * in the table and overrides are themselves parsed as YAML text, so they obey the same syntax and
 * checks as the file. libyaml resolves no types: every scalar is text, converted here with strtoll /
 * strtod and full-string checks. Marks from libyaml are 0-based; messages print them 1-based. */
#include "train/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "core/json.h"
#include "core/machine.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "models/model.h"

/* ---------------------------------------------------------------------------------------------------
 * The schema */

typedef enum { T_INT, T_FLOAT, T_BOOL, T_STR, T_ENUM, T_FLIST, T_ILIST, T_SLIST, T_WEIGHTS } cfg_type;
static const char *const type_names[] = {"int",      "float",       "bool",        "string", "enum",
                                         "float list", "int list", "string list", "weights"};

enum {
  REQUIRED = 1, /* must be given in the file (or by override before cfg_validate), non-empty */
  MAX_OPEN = 2, /* the upper bound is excluded: [min, max) */
};

typedef struct {
  const char *section, *key;
  cfg_type type;
  size_t offset, size;        /* of the struct member; size cross-checks the type in cfg_defaults */
  const char *def;            /* default as YAML text, parsed like the file */
  double min, max;            /* range of a number, or of each item of a numeric list / weights */
  unsigned flags;
  const char *const *choices; /* enum values, or the allowed items of a string list */
  const char *help;
} cfg_field;

const char *const cfg_format_names[] = {"auto", "tsv", "jsonl", "npz", "image_folder", NULL};
const char *const cfg_resize_names[] = {"refuse", "bilinear", NULL};
const char *const cfg_best_metric_names[] = {"last_acc", "last_f1", "mean_acc", NULL};
const char *const cfg_rule_names[] = {"fastest_within", "max_accuracy", "layer_budget", "risk", NULL};
const char *const cfg_metric_names[] = {"accuracy", "macro_f1", NULL};
const char *const cfg_risk_names[] = {"disagreement", "accuracy_drop", NULL};
const char *const cfg_weights_names[] = {"asc", "uniform", "desc", NULL};
static const char *const policy_names[] = {"none", "entropy", "patience", "epee", "pcee", NULL};

/* The member name IS the YAML key (stringized), so the two cannot drift apart. */
#define FIELD(sec, key, type, def, min, max, flags, choices, help)                                   \
  {#sec, #key, type, offsetof(epee_config, sec.key), sizeof(((epee_config *)0)->sec.key), def, min, \
   max, flags, choices, help}
#define BIG 1048576 /* generous upper bound for sizes */

static const cfg_field fields[] = {
    FIELD(model, arch, T_ENUM, "bert", 0, 0, 0, model_arch_names, "backbone architecture (the registry, models/)"),
    FIELD(model, hidden, T_INT, "256", 1, 65536, 0, NULL, "hidden size, a multiple of model.heads"),
    FIELD(model, layers, T_INT, "6", 1, 1024, 0, NULL, "transformer layers L, each followed by an exit"),
    FIELD(model, heads, T_INT, "4", 1, 1024, 0, NULL, "attention heads"),
    FIELD(model, intermediate, T_INT, "1024", 1, BIG, 0, NULL, "feed-forward inner size"),
    FIELD(model, max_position, T_INT, "512", 1, BIG, 0, NULL, "position embeddings: longest input in tokens"),
    FIELD(model, type_vocab, T_INT, "2", 1, 1024, 0, NULL, "token type (segment) embeddings (BERT, ALBERT)"),
    FIELD(model, embedding_size, T_INT, "128", 1, 65536, 0, NULL, "ALBERT: size E of the factorised embeddings"),
    FIELD(model, hidden_groups, T_INT, "1", 1, 1024, 0, NULL,
          "ALBERT: groups of layers sharing one set of weights (1 = all layers share one)"),
    FIELD(model, exit_norm, T_BOOL, "true", 0, 0, 0, NULL,
          "GPT-2, ViT: exits read the final LayerNorm (ln_f, vit.layernorm) of h_i"),
    FIELD(model, image_size, T_INT, "28", 1, 16384, 0, NULL, "ViT: images are image_size x image_size pixels"),
    FIELD(model, patch_size, T_INT, "4", 1, 16384, 0, NULL, "ViT: patches of patch_size^2 pixels, a divisor of image_size"),
    FIELD(model, channels, T_INT, "1", 1, 3, 0, NULL, "ViT: 1 (grey) or 3 (RGB)"),
    FIELD(model, hidden_dropout, T_FLOAT, "0.1", 0, 1, MAX_OPEN, NULL,
          "dropout on embeddings and sublayer outputs"),
    FIELD(model, attention_dropout, T_FLOAT, "0.1", 0, 1, MAX_OPEN, NULL, "dropout on attention probabilities"),
    FIELD(model, exit_dropout, T_FLOAT, "0.1", 0, 1, MAX_OPEN, NULL, "dropout before each exit classifier"),
    FIELD(model, layer_norm_eps, T_FLOAT, "1e-12", 0, 1, 0, NULL, "LayerNorm epsilon (BERT, ALBERT 1e-12; GPT-2 1e-5)"),
    FIELD(model, init_std, T_FLOAT, "0.02", 0, 1, 0, NULL, "std of the normal weight initialisation"),
    FIELD(model, num_labels, T_INT, "0", 0, BIG, 0, NULL, "number of classes; 0 = from the data"),
    FIELD(model, init, T_STR, "\"\"", 0, 0, 0, NULL,
          "start from a HuggingFace model folder (config.json, model.safetensors, tokenizer files) or a .safetensors "
          "file; its config.json sets model.* (an explicit key that disagrees is an error) and its tokenizer or "
          "preprocessor the inputs; \"\" = random initialisation"),
    FIELD(model, init_exits, T_BOOL, "false", 0, 0, 0, NULL,
          "also load the exits (classifiers.*) from model.init, e.g. an EPEE export of the same task; false = new "
          "exits, as for a new task"),

    FIELD(tokenizer, kind, T_STR, "\"\"", 0, 0, 0, NULL,
          "wordpiece, sentencepiece or bpe; empty = the arch's own (BERT wordpiece, ALBERT sentencepiece, GPT-2 bpe)"),
    FIELD(tokenizer, vocab, T_STR, "data/cache/vocab/vocab.txt", 0, 0, 0, NULL,
          "vocabulary: vocab.txt (wordpiece), a .model (sentencepiece), vocab.json / encoder.json (bpe)"),
    FIELD(tokenizer, merges, T_STR, "\"\"", 0, 0, 0, NULL, "bpe only: merges.txt / vocab.bpe"),
    FIELD(tokenizer, lowercase, T_BOOL, "true", 0, 0, 0, NULL, "lowercase (and strip accents of) the text: an uncased vocabulary; false for a cased one"),
    FIELD(tokenizer, max_length, T_INT, "128", 1, BIG, 0, NULL,
          "longest input in tokens, special tokens included; longer inputs are truncated"),

    FIELD(data, train, T_STR, "\"\"", 0, 0, REQUIRED, NULL, "training split"),
    FIELD(data, dev, T_STR, "\"\"", 0, 0, REQUIRED, NULL, "dev split: model selection and calibration"),
    FIELD(data, test, T_STR, "\"\"", 0, 0, REQUIRED, NULL, "test split: reported metrics"),
    FIELD(data, format, T_ENUM, "auto", 0, 0, 0, cfg_format_names,
          "file format; auto = by file extension (.npz; a directory = image_folder). npz: each split reads its "
          "<split>_images/_labels entries (train, val, test), so one MedMNIST file may be given three times"),
    FIELD(data, text_column, T_STR, "text", 0, 0, 0, NULL, "column (TSV header) or field (JSONL) of the text"),
    FIELD(data, text_b_column, T_STR, "\"\"", 0, 0, 0, NULL, "second text of pair tasks; empty = none"),
    FIELD(data, label_column, T_STR, "label", 0, 0, 0, NULL, "column or field of the label"),
    FIELD(data, labels, T_SLIST, "[]", 0, 0, 0, NULL, "label names in class order; empty = found in train"),

    FIELD(image, mean, T_FLIST, "[0.5]", -1000, 1000, 0, NULL, "per-channel mean on x/255 (one value: every channel)"),
    FIELD(image, std, T_FLIST, "[0.5]", 1e-6, 1000, 0, NULL, "per-channel std on x/255 (one value: every channel)"),
    FIELD(image, resize, T_ENUM, "refuse", 0, 0, 0, cfg_resize_names,
          "an image not of model.image_size: refuse (default: resampling changes the data silently) or bilinear"),
    FIELD(image, crop_padding, T_INT, "0", 0, 1024, 0, NULL,
          "training augmentation: random crop after zero-padding this many pixels; 0 = off"),
    FIELD(image, hflip, T_BOOL, "false", 0, 0, 0, NULL, "training augmentation: horizontal flip, probability 0.5"),

    FIELD(train, epochs, T_INT, "3", 1, BIG, 0, NULL, "passes over the training split"),
    FIELD(train, max_steps, T_INT, "0", 0, INT_MAX, 0, NULL, "optimizer steps; 0 = from train.epochs"),
    FIELD(train, batch_size, T_INT, "32", 1, 65536, 0, NULL, "examples per optimizer step"),
    FIELD(train, lr, T_FLOAT, "1e-4", 0, 10, 0, NULL, "peak learning rate (AdamW)"),
    FIELD(train, exit_lr, T_FLOAT, "0", 0, 10, 0, NULL, "learning rate of the exit classifiers; 0 = train.lr"),
    FIELD(train, weight_decay, T_FLOAT, "0.01", 0, 1, 0, NULL, "AdamW weight decay, not on biases and LayerNorm"),
    FIELD(train, warmup, T_FLOAT, "0.1", 0, 1, 0, NULL,
          "linear warm-up as a fraction of all steps, then linear decay to 0"),
    FIELD(train, clip, T_FLOAT, "1.0", 0, INFINITY, 0, NULL, "max global gradient norm; 0 = no clipping"),
    FIELD(train, adam_beta1, T_FLOAT, "0.9", 0, 1, MAX_OPEN, NULL, "AdamW beta1"),
    FIELD(train, adam_beta2, T_FLOAT, "0.999", 0, 1, MAX_OPEN, NULL, "AdamW beta2"),
    FIELD(train, adam_eps, T_FLOAT, "1e-8", 0, 1, 0, NULL, "AdamW epsilon"),
    FIELD(train, loss_weights, T_WEIGHTS, "asc", 0, INFINITY, 0, cfg_weights_names,
          "exit loss weights: asc (w_i = i), uniform, desc, or a list with one weight per layer"),
    FIELD(train, eval_every, T_INT, "200", 0, INT_MAX, 0, NULL, "steps between dev evaluations; 0 = each epoch end"),
    FIELD(train, best_metric, T_ENUM, "last_acc", 0, 0, 0, cfg_best_metric_names,
          "dev metric that picks the kept checkpoint (last exit or mean over exits)"),
    FIELD(train, early_stop, T_INT, "0", 0, INT_MAX, 0, NULL,
          "stop after this many evaluations without improvement; 0 = off"),
    FIELD(train, log_every, T_INT, "20", 1, INT_MAX, 0, NULL, "steps between metric log lines"),
    FIELD(train, checkpoint_every_s, T_FLOAT, "600", 0, INFINITY, 0, NULL,
          "also checkpoint when this many seconds passed since the last one, so a hard kill loses minutes; 0 = off"),

    FIELD(calibrate, policies, T_SLIST, "[none, entropy, patience, epee, pcee]", 0, 0, 0, policy_names,
          "exit policies calibrated on dev and reported on test"),
    FIELD(calibrate, tau, T_FLIST, "[0.001, 0.005, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1]", 0, 1, 0, NULL,
          "grid of normalised-entropy thresholds (1: every row leaves at its first exit)"),
    FIELD(calibrate, tau_range, T_FLIST, "[]", 0, 100000, 0, NULL,
          "[from, to, count]: count thresholds log-spaced from `from` to `to` (0 < from < to <= 1), replacing "
          "calibrate.tau; empty = calibrate.tau"),
    FIELD(calibrate, patience, T_ILIST, "[]", 1, 1024, 0, NULL, "grid of patience values; empty = 1..model.layers-1"),
    FIELD(calibrate, rule, T_ENUM, "fastest_within", 0, 0, 0, cfg_rule_names,
          "how the dev run picks (tau, patience); risk: Learn-then-Test, risk <= epsilon with prob. >= 1 - delta"),
    FIELD(calibrate, metric, T_ENUM, "accuracy", 0, 0, 0, cfg_metric_names,
          "what fastest_within, max_accuracy and layer_budget compare (and risk's ties)"),
    FIELD(calibrate, within, T_FLOAT, "0.005", 0, 1, 0, NULL,
          "fastest_within: allowed dev loss of calibrate.metric vs. full depth (0.005 = 0.5 points)"),
    FIELD(calibrate, max_recall_drop, T_FLOAT, "1", 0, 1, 0, NULL,
          "fastest_within: largest allowed drop of any class's dev recall vs. full depth; 1 = no floor"),
    FIELD(calibrate, risk, T_ENUM, "disagreement", 0, 0, 0, cfg_risk_names,
          "risk: the loss: disagreement with the full-depth answer, or accuracy_drop (wrong, full depth right)"),
    FIELD(calibrate, epsilon, T_FLOAT, "0.005", 0, 1, MAX_OPEN, NULL,
          "risk: the largest acceptable risk (0.005 = 0.5% of inputs, the budget of fastest_within's default), > 0"),
    FIELD(calibrate, delta, T_FLOAT, "0.1", 0, 1, MAX_OPEN, NULL,
          "risk: the allowed probability that the chosen setting's risk exceeds epsilon, > 0"),
    FIELD(calibrate, temperature, T_BOOL, "false", 0, 0, 0, NULL,
          "fit a temperature per exit on dev (NLL); the grid and the engine then use the scaled logits"),
    FIELD(calibrate, layer_budget, T_FLOAT, "0", 0, 1024, 0, NULL,
          "layer_budget: largest allowed mean exit layer on dev; 0 = unused"),
    FIELD(calibrate, batch, T_INT, "64", 1, 65536, 0, NULL, "batch size of the early-exit engine run on test"),

    FIELD(export, path, T_STR, "model.h5", 0, 0, 0, NULL, "model file, relative to run.dir"),
    FIELD(export, enabled, T_BOOL, "true", 0, 0, 0, NULL, "write the model file after calibration"),
    FIELD(export, hf, T_STR, "\"\"", 0, 0, 0, NULL,
          "also write a HuggingFace model folder (config.json, model.safetensors, tokenizer), relative to run.dir; "
          "\"\" = none"),

    FIELD(run, dir, T_STR, "\"\"", 0, 0, REQUIRED, NULL,
          "output directory: checkpoints, metrics, effective config, model"),
    FIELD(run, seed, T_INT, "1234", 0, INT_MAX, 0, NULL, "seed of initialisation, shuffling and dropout"),
    FIELD(run, threads, T_INT, "0", 0, 256, 0, NULL,
          "threads (OpenMP and oneDNN), set once at start; 0 = the cores this process may use (sched_getaffinity)"),
    FIELD(run, profile, T_BOOL, "false", 0, 0, 0, NULL,
          "time every op kind of the training steps (forward and backward apart) and what runs around them; "
          "the table is printed after training and written to run.dir/profile.json (epee-train --profile)"),
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static void *slot(epee_config *c, const cfg_field *f) { return (char *)c + f->offset; }
static const void *cslot(const epee_config *c, const cfg_field *f) { return (const char *)c + f->offset; }

static int find_field(const char *section, const char *key) {
  for (size_t i = 0; i < NFIELDS; i++)
    if (!strcmp(fields[i].section, section) && !strcmp(fields[i].key, key)) return (int)i;
  return -1;
}

/* Index of the first field of a section (sections are contiguous in the table), or -1. */
static int find_section(const char *section) {
  for (size_t i = 0; i < NFIELDS; i++)
    if (!strcmp(fields[i].section, section)) return (int)i;
  return -1;
}

static int find_choice(const char *const *choices, const char *s) {
  for (int i = 0; choices[i]; i++)
    if (!strcmp(choices[i], s)) return i;
  return -1;
}

static size_t type_size(cfg_type t) {
  switch (t) {
  case T_INT: return sizeof(int);
  case T_FLOAT: return sizeof(double);
  case T_BOOL: return sizeof(bool);
  case T_STR: return sizeof(char *);
  case T_ENUM: return sizeof(int);
  case T_FLIST: return sizeof(cfg_flist);
  case T_ILIST: return sizeof(cfg_ilist);
  case T_SLIST: return sizeof(cfg_slist);
  case T_WEIGHTS: return sizeof(cfg_weights);
  }
  return 0;
}

/* Frees the heap parts of a value of type t at p and zeroes it. */
static void value_free(cfg_type t, void *p) {
  switch (t) {
  case T_STR: free(*(char **)p); break;
  case T_FLIST: free(((cfg_flist *)p)->v); break;
  case T_ILIST: free(((cfg_ilist *)p)->v); break;
  case T_SLIST: {
    cfg_slist *l = p;
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    break;
  }
  case T_WEIGHTS: free(((cfg_weights *)p)->list.v); break;
  default: break;
  }
  memset(p, 0, type_size(t));
}

static bool in_range(const cfg_field *f, double v) {
  return v >= f->min && ((f->flags & MAX_OPEN) ? v < f->max : v <= f->max);
}

/* "in [lo, hi]", "in [lo, hi)" or ">= lo" */
static void range_text(const cfg_field *f, char *buf, size_t n) {
  if (isinf(f->max))
    snprintf(buf, n, ">= %.15g", f->min);
  else
    snprintf(buf, n, "in [%.15g, %.15g%c", f->min, f->max, (f->flags & MAX_OPEN) ? ')' : ']');
}

/* printf-append to the string in buf[n] (truncating). */
static void appendf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t n, const char *fmt, ...) {
  size_t len = strlen(buf);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + len, n - len, fmt, ap);
  va_end(ap);
}

/* Appends the choices joined by sep. */
static void append_choices(char *buf, size_t n, const char *const *choices, const char *sep) {
  for (int i = 0; choices[i]; i++) appendf(buf, n, "%s%s", i ? sep : "", choices[i]);
}

static int count_choices(const char *const *choices) {
  int n = 0;
  while (choices[n]) n++;
  return n;
}

/* ---------------------------------------------------------------------------------------------------
 * Errors and suggestions */

/* Where values come from: a file (messages "file:line:col: ...") or a label ("override 'a=b': ..."). */
typedef struct {
  const char *file;
  const char *label;
} origin;

static int fail_at(epee_err *e, const origin *o, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(epee_err *e, const origin *o, yaml_mark_t m, const char *fmt, ...) {
  char msg[EPEE_ERR_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (o->file) return epee_errf(e, "%s:%zu:%zu: %s", o->file, m.line + 1, m.column + 1, msg);
  return epee_errf(e, "%s: %s", o->label, msg);
}

/* Optimal-string-alignment distance (Levenshtein + adjacent transposition: "trian" -> "train" is 1). */
static int edit_distance(const char *a, const char *b) {
  enum { MAXLEN = 64 };
  size_t n = strlen(a), m = strlen(b);
  if (n >= MAXLEN || m >= MAXLEN) return INT_MAX;
  int d[MAXLEN + 1][MAXLEN + 1];
  for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= n; i++)
    for (size_t j = 1; j <= m; j++) {
      int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[n][m];
}

/* Writes " (did you mean 'x'?)" or "" to buf. For a key (section != NULL): the closest key of that
 * section, else the same key in another section ("run.seed"). For a section (section == NULL): the
 * closest section name, else a key of that name ("train.lr", written at the top level by mistake).
 * Close = at most a third of the typed word's length in edits (at least 1). */
static void suggest(const char *section, const char *word, char *buf, size_t n) {
  int limit = (int)(strlen(word) + 2) / 3, best = INT_MAX;
  const cfg_field *hit = NULL, *elsewhere = NULL;
  for (size_t i = 0; i < NFIELDS; i++) {
    const cfg_field *f = &fields[i];
    const char *cand = section ? f->key : f->section;
    if (section && strcmp(f->section, section)) {
      if (!strcmp(f->key, word)) elsewhere = f;
      continue;
    }
    if (!section && !strcmp(f->key, word)) elsewhere = f;
    int d = edit_distance(word, cand);
    if (d < best) best = d, hit = f;
  }
  if (hit && best <= (limit < 1 ? 1 : limit))
    snprintf(buf, n, " (did you mean '%s'?)", section ? hit->key : hit->section);
  else if (elsewhere)
    snprintf(buf, n, " (did you mean '%s.%s'?)", elsewhere->section, elsewhere->key);
  else
    buf[0] = 0;
}

static int unknown_section(epee_err *e, const origin *o, yaml_mark_t m, const char *name) {
  char hint[160];
  suggest(NULL, name, hint, sizeof hint);
  return fail_at(e, o, m, "unknown section '%.100s'%s", name, hint);
}

static int unknown_key(epee_err *e, const origin *o, yaml_mark_t m, const char *section, const char *key) {
  char hint[160];
  suggest(section, key, hint, sizeof hint);
  return fail_at(e, o, m, "unknown key '%.100s' in section '%s'%s", key, section, hint);
}

/* ---------------------------------------------------------------------------------------------------
 * Node -> value conversion (one path for file, overrides and defaults) */

static const char *text(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static const char *node_kind(const yaml_node_t *n) {
  return n->type == YAML_SEQUENCE_NODE ? "a list" : n->type == YAML_MAPPING_NODE ? "a mapping" : "a scalar";
}

/* YAML null: an empty or ~/null plain scalar (as in `text_b_column:`). */
static bool is_null(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
  const char *s = text(n);
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* Converts scalar node n to one value of scalar type t at out. name ("train.lr", "calibrate.tau[2]") is
 * for messages; f gives the range (numbers) and the choices (enum, string-list items). */
static int parse_scalar(const cfg_field *f, cfg_type t, const char *name, const yaml_node_t *n, const origin *o,
                        void *out, epee_err *e) {
  if (n->type != YAML_SCALAR_NODE)
    return fail_at(e, o, n->start_mark, "%s: expected %s, got %s", name, type_names[t], node_kind(n));
  const char *s = text(n);
  if (strlen(s) != n->data.scalar.length)
    return fail_at(e, o, n->start_mark, "%s: value contains a NUL character", name);
  switch (t) {
  case T_INT:
  case T_FLOAT: {
    char *end;
    double v;
    errno = 0;
    bool ok = *s && (*s == '-' || *s == '+' || (*s >= '0' && *s <= '9') || *s == '.');
    if (t == T_INT) {
      long long x = strtoll(s, &end, 10);
      ok = ok && !*end;
      if (ok && (errno == ERANGE || x < INT_MIN || x > INT_MAX)) x = x < 0 ? LLONG_MIN : LLONG_MAX;
      v = (double)x;
    } else {
      v = strtod(s, &end);
      ok = ok && !*end && isfinite(v);
    }
    if (!ok) return fail_at(e, o, n->start_mark, "%s: expected %s, got '%.100s'", name, type_names[t], s);
    if (!in_range(f, v)) {
      char r[96];
      range_text(f, r, sizeof r);
      return fail_at(e, o, n->start_mark, "%s: must be %s, got %.100s", name, r, s);
    }
    if (t == T_INT) *(int *)out = (int)v;
    else *(double *)out = v;
    return 0;
  }
  case T_BOOL:
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) *(bool *)out = true;
    else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) *(bool *)out = false;
    else return fail_at(e, o, n->start_mark, "%s: expected bool (true or false), got '%.100s'", name, s);
    return 0;
  case T_STR:
  case T_ENUM: {
    if (is_null(n)) s = "";
    int k = f->choices ? find_choice(f->choices, s) : 0;
    if (k < 0) {
      char list[256] = "";
      append_choices(list, sizeof list, f->choices, ", ");
      return fail_at(e, o, n->start_mark, "%s: invalid value '%.100s', expected one of: %s", name, s, list);
    }
    if (t == T_ENUM) *(int *)out = k;
    else *(char **)out = epee_strdup(s);
    return 0;
  }
  default: epee_fatal("parse_scalar: %s is not a scalar type", type_names[t]);
  }
}

/* Stores buf[0..n) of element type t into the list struct at list. */
static void list_set(cfg_type t, void *list, void *buf, int n) {
  if (t == T_FLOAT) *(cfg_flist *)list = (cfg_flist){buf, n};
  else if (t == T_INT) *(cfg_ilist *)list = (cfg_ilist){buf, n};
  else *(cfg_slist *)list = (cfg_slist){buf, n};
}

/* A sequence of scalars of type t into the list at out; a null value is the empty list. On error, the
 * items parsed so far are in *out (the caller frees). */
static int parse_list(const cfg_field *f, cfg_type t, yaml_document_t *d, const yaml_node_t *n, const origin *o,
                      void *out, epee_err *e) {
  if (is_null(n)) return 0;
  if (n->type != YAML_SEQUENCE_NODE)
    return fail_at(e, o, n->start_mark, "%s.%s: expected a list like [a, b], got %s", f->section, f->key,
                   node_kind(n));
  int count = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
  if (!count) return 0;
  size_t size = type_size(t);
  char *buf = epee_calloc((size_t)count, size);
  for (int i = 0; i < count; i++) {
    char name[96];
    snprintf(name, sizeof name, "%s.%s[%d]", f->section, f->key, i);
    const yaml_node_t *item = yaml_document_get_node(d, n->data.sequence.items.start[i]);
    int rc = parse_scalar(f, t, name, item, o, buf + (size_t)i * size, e);
    list_set(t, out, buf, rc ? i : i + 1);
    if (rc) return -1;
  }
  return 0;
}

/* Node n -> a value of f's type at out (zeroed by the caller). */
static int parse_value(const cfg_field *f, yaml_document_t *d, const yaml_node_t *n, const origin *o, void *out,
                       epee_err *e) {
  char name[64];
  snprintf(name, sizeof name, "%s.%s", f->section, f->key);
  switch (f->type) {
  case T_FLIST: return parse_list(f, T_FLOAT, d, n, o, out, e);
  case T_ILIST: return parse_list(f, T_INT, d, n, o, out, e);
  case T_SLIST: return parse_list(f, T_STR, d, n, o, out, e);
  case T_WEIGHTS: {
    cfg_weights *w = out;
    if (n->type == YAML_SEQUENCE_NODE) {
      w->kind = CFG_WEIGHTS_LIST;
      return parse_list(f, T_FLOAT, d, n, o, &w->list, e);
    }
    if (n->type != YAML_SCALAR_NODE)
      return fail_at(e, o, n->start_mark, "%s: expected asc, uniform, desc or a list of floats, got %s", name,
                     node_kind(n));
    int k = find_choice(f->choices, text(n));
    if (k < 0)
      return fail_at(e, o, n->start_mark, "%s: expected asc, uniform, desc or a list of floats, got '%.100s'",
                     name, text(n));
    w->kind = (cfg_weights_kind)k;
    return 0;
  }
  default: return parse_scalar(f, f->type, name, n, o, out, e);
  }
}

/* Converts n into field f of c, replacing the old value; on error c is unchanged. */
static int set_field(epee_config *c, const cfg_field *f, yaml_document_t *d, const yaml_node_t *n,
                     const origin *o, epee_err *e) {
  union {
    int i;
    double x;
    bool b;
    char *s;
    cfg_flist fl;
    cfg_ilist il;
    cfg_slist sl;
    cfg_weights w;
  } tmp;
  memset(&tmp, 0, sizeof tmp);
  int rc = parse_value(f, d, n, o, &tmp, e);
  if (!rc && f->type == T_STR && (f->flags & REQUIRED) && !*tmp.s)
    rc = fail_at(e, o, n->start_mark, "%s.%s: must not be empty", f->section, f->key);
  if (rc) {
    value_free(f->type, &tmp);
    return -1;
  }
  value_free(f->type, slot(c, f));
  memcpy(slot(c, f), &tmp, f->size);
  c->given[f - fields] = 1;
  return 0;
}

/* ---------------------------------------------------------------------------------------------------
 * YAML text -> one document */

/* Line and column (0-based, in characters) of byte offset off: libyaml's reader errors (bad UTF-8)
 * carry an offset but no mark. */
static yaml_mark_t mark_at(const char *buf, size_t len, size_t off) {
  yaml_mark_t m = {off, 0, 0};
  for (size_t i = 0; i < off && i < len; i++) {
    if (buf[i] == '\n') m.line++, m.column = 0;
    else if (((unsigned char)buf[i] & 0xC0) != 0x80) m.column++;
  }
  return m;
}

static int syntax_error(const yaml_parser_t *p, const char *buf, size_t len, const origin *o, epee_err *e) {
  if (p->error == YAML_MEMORY_ERROR) epee_fatal("libyaml ran out of memory");
  yaml_mark_t m = p->error == YAML_READER_ERROR ? mark_at(buf, len, p->problem_offset) : p->problem_mark;
  char context[160] = "";
  if (p->context)
    snprintf(context, sizeof context, " (%s at line %zu, column %zu)", p->context, p->context_mark.line + 1,
             p->context_mark.column + 1);
  return fail_at(e, o, m, "YAML syntax error: %s%s", p->problem ? p->problem : "unknown problem", context);
}

/* Parses buf[0..len) as exactly one YAML document into *d (the caller deletes it on success). */
/* A config is three levels deep (sections, keys, flow lists), but libyaml's loader takes time quadratic in the
 * nesting (100k '[' took 40 s): an event pass refuses the first node deeper than MAX_DEPTH before loading. */
enum { MAX_DEPTH = 16 };
static int check_depth(const char *buf, size_t len, const origin *o, epee_err *e) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) epee_fatal("libyaml ran out of memory");
  yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
  int depth = 0, rc = 0, end = 0;
  yaml_event_t ev;
  while (!rc && !end && yaml_parser_parse(&p, &ev)) { /* a syntax error: the load below reports it */
    if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
      if (++depth > MAX_DEPTH) rc = fail_at(e, o, ev.start_mark, "nested deeper than %d levels", MAX_DEPTH);
    } else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
      depth--;
    }
    end = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&p);
  return rc;
}

static int load_document(const char *buf, size_t len, const origin *o, yaml_document_t *d, epee_err *e) {
  if (check_depth(buf, len, o, e)) return -1;
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) epee_fatal("libyaml ran out of memory");
  yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
  int rc = 0;
  if (!yaml_parser_load(&p, d)) {
    rc = syntax_error(&p, buf, len, o, e);
  } else {
    yaml_document_t extra;
    if (!yaml_parser_load(&p, &extra)) {
      rc = syntax_error(&p, buf, len, o, e);
    } else {
      if (yaml_document_get_root_node(&extra))
        rc = fail_at(e, o, extra.start_mark, "expected one YAML document, found a second one");
      yaml_document_delete(&extra);
    }
    if (rc) yaml_document_delete(d);
  }
  yaml_parser_delete(&p);
  return rc;
}

/* Root of a document, or an empty plain scalar (null) standing in for an empty text. */
static const yaml_node_t *root_or_null(yaml_document_t *d, yaml_node_t *null_node) {
  const yaml_node_t *r = yaml_document_get_root_node(d);
  if (r) return r;
  memset(null_node, 0, sizeof *null_node);
  null_node->type = YAML_SCALAR_NODE;
  null_node->data.scalar.value = (yaml_char_t *)"";
  null_node->data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
  return null_node;
}

/* ---------------------------------------------------------------------------------------------------
 * Public API: defaults, file, overrides */

_Static_assert(NFIELDS <= sizeof(((epee_config *)0)->given), "epee_config.given needs a slot per schema row");

void cfg_defaults(epee_config *c) {
  memset(c, 0, sizeof *c);
  for (size_t i = 0; i < NFIELDS; i++) {
    const cfg_field *f = &fields[i];
    EPEE_CHECK(f->size == type_size(f->type), "schema table: the type of a row does not match its struct member");
    origin o = {NULL, "schema default"};
    yaml_document_t d;
    yaml_node_t null_node;
    epee_err e;
    if (load_document(f->def, strlen(f->def), &o, &d, &e)) epee_fatal("%s.%s: %s", f->section, f->key, e.msg);
    int rc = parse_value(f, &d, root_or_null(&d, &null_node), &o, slot(c, f), &e);
    yaml_document_delete(&d);
    if (rc) epee_fatal("%s.%s: %s", f->section, f->key, e.msg);
  }
}

/* Applies the sections of a loaded document to c: unknown and duplicate keys are errors; required keys
 * must be present (reported at their section, or at 1:1 when the section is absent). */
static int apply_document(epee_config *c, yaml_document_t *d, const origin *o, epee_err *e) {
  const yaml_node_t *seen[NFIELDS] = {0};        /* key node of each field given */
  const yaml_node_t *section_key[NFIELDS] = {0}; /* key node of each section, at its first field's index */
  const yaml_node_t *root = yaml_document_get_root_node(d);
  if (root && !is_null(root)) {
    if (root->type != YAML_MAPPING_NODE)
      return fail_at(e, o, root->start_mark, "expected a mapping of sections (model:, data:, ...), got %s",
                     node_kind(root));
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
      const yaml_node_t *k = yaml_document_get_node(d, p->key), *v = yaml_document_get_node(d, p->value);
      if (k->type != YAML_SCALAR_NODE)
        return fail_at(e, o, k->start_mark, "expected a section name, got %s", node_kind(k));
      int s = find_section(text(k));
      if (s < 0) return unknown_section(e, o, k->start_mark, text(k));
      if (section_key[s])
        return fail_at(e, o, k->start_mark, "duplicate section '%s' (first at line %zu)", text(k),
                       section_key[s]->start_mark.line + 1);
      section_key[s] = k;
      if (is_null(v)) continue;
      if (v->type != YAML_MAPPING_NODE)
        return fail_at(e, o, v->start_mark, "section '%s': expected a mapping of keys, got %s", text(k),
                       node_kind(v));
      for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
        const yaml_node_t *kk = yaml_document_get_node(d, q->key), *vv = yaml_document_get_node(d, q->value);
        if (kk->type != YAML_SCALAR_NODE)
          return fail_at(e, o, kk->start_mark, "expected a key name, got %s", node_kind(kk));
        int f = find_field(text(k), text(kk));
        if (f < 0) return unknown_key(e, o, kk->start_mark, text(k), text(kk));
        if (seen[f])
          return fail_at(e, o, kk->start_mark, "duplicate key '%s.%s' (first at line %zu)", text(k), text(kk),
                         seen[f]->start_mark.line + 1);
        seen[f] = kk;
        if (set_field(c, &fields[f], d, vv, o, e)) return -1;
      }
    }
  }
  for (size_t i = 0; i < NFIELDS; i++) {
    const cfg_field *f = &fields[i];
    if (!(f->flags & REQUIRED) || seen[i]) continue;
    const yaml_node_t *sk = section_key[find_section(f->section)];
    yaml_mark_t at = {0, 0, 0};
    if (sk) at = sk->start_mark;
    return fail_at(e, o, at, "missing required key '%s.%s'", f->section, f->key);
  }
  return 0;
}

/* Whole file into a malloc'd buffer (configs are small). */
static char *read_file(const char *path, size_t *len, epee_err *e) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    epee_errf(e, "%s: cannot open config: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *buf = epee_malloc(cap);
  for (size_t got; (got = fread(buf + n, 1, cap - n, fp)) > 0;) {
    n += got;
    if (n == cap) buf = epee_realloc(buf, cap *= 2);
  }
  int bad = ferror(fp);
  fclose(fp);
  if (bad) {
    free(buf);
    epee_errf(e, "%s: cannot read config", path);
    return NULL;
  }
  *len = n;
  return buf;
}

int cfg_yaml_load(const char *path, yaml_document_t *d, epee_err *e) {
  size_t len;
  char *buf = read_file(path, &len, e);
  if (!buf) return -1;
  origin o = {path, NULL};
  int rc = load_document(buf, len, &o, d, e);
  free(buf);
  return rc;
}

int cfg_load(const char *path, epee_config *c, epee_err *e) {
  cfg_defaults(c);
  size_t len;
  char *buf = read_file(path, &len, e);
  if (!buf) return -1;
  origin o = {path, NULL};
  yaml_document_t d;
  int rc = load_document(buf, len, &o, &d, e);
  if (!rc) {
    rc = apply_document(c, &d, &o, e);
    yaml_document_delete(&d);
  }
  free(buf);
  return rc;
}

int cfg_override(epee_config *c, const char *assignment, epee_err *e) {
  char label[320];
  snprintf(label, sizeof label, "override '%.300s'", assignment);
  origin o = {NULL, label};
  yaml_mark_t none = {0, 0, 0};
  const char *eq = strchr(assignment, '=');
  const char *dot = eq ? memchr(assignment, '.', (size_t)(eq - assignment)) : NULL;
  if (!dot || dot == assignment || dot + 1 == eq) return fail_at(e, &o, none, "expected section.key=value");
  char section[64], key[64];
  snprintf(section, sizeof section, "%.*s", (int)(dot - assignment), assignment);
  snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
  if (find_section(section) < 0) return unknown_section(e, &o, none, section);
  int f = find_field(section, key);
  if (f < 0) return unknown_key(e, &o, none, section, key);
  yaml_document_t d;
  yaml_node_t null_node;
  if (load_document(eq + 1, strlen(eq + 1), &o, &d, e)) return -1;
  int rc = set_field(c, &fields[f], &d, root_or_null(&d, &null_node), &o, e);
  yaml_document_delete(&d);
  return rc;
}

static int find_dotted(const char *key) {
  const char *dot = strchr(key, '.');
  if (!dot) return -1;
  char section[64];
  snprintf(section, sizeof section, "%.*s", (int)(dot - key), key);
  return find_field(section, dot + 1);
}

bool cfg_given(const epee_config *c, const char *key) {
  int f = find_dotted(key);
  return f >= 0 && c->given[f];
}

int cfg_threads(const epee_config *c) { return c->run.threads > 0 ? c->run.threads : machine_cores(); }

const char *cfg_key_type(const char *key) {
  int f = find_dotted(key);
  return f < 0 ? NULL : type_names[fields[f].type];
}

int cfg_number(const epee_config *c, const char *key, double *v) {
  int f = find_dotted(key);
  if (f < 0) return -1;
  const void *p = cslot(c, &fields[f]);
  switch (fields[f].type) {
  case T_INT: *v = *(const int *)p; return 0;
  case T_FLOAT: *v = *(const double *)p; return 0;
  case T_BOOL: *v = *(const bool *)p; return 0;
  default: return -1;
  }
}

void cfg_free(epee_config *c) {
  for (size_t i = 0; i < NFIELDS; i++) value_free(fields[i].type, slot(c, &fields[i]));
  memset(c, 0, sizeof *c);
}

/* ---------------------------------------------------------------------------------------------------
 * Validation */

static bool str_empty(const char *s) { return !s || !*s; }

/* Every value against its row of the table (for configs changed by code after loading). */
static int validate_field(const epee_config *c, const cfg_field *f, epee_err *e) {
  const void *p = cslot(c, f);
  char r[96];
  range_text(f, r, sizeof r);
  switch (f->type) {
  case T_INT: {
    int v = *(const int *)p;
    if (!in_range(f, v)) return epee_errf(e, "config: %s.%s: must be %s, got %d", f->section, f->key, r, v);
    break;
  }
  case T_FLOAT: {
    double v = *(const double *)p;
    if (!in_range(f, v)) return epee_errf(e, "config: %s.%s: must be %s, got %.15g", f->section, f->key, r, v);
    break;
  }
  case T_STR:
    if ((f->flags & REQUIRED) && str_empty(*(char *const *)p))
      return epee_errf(e, "config: missing required key '%s.%s'", f->section, f->key);
    break;
  case T_ENUM: {
    int v = *(const int *)p;
    if (v < 0 || v >= count_choices(f->choices))
      return epee_errf(e, "config: %s.%s: invalid enum value %d", f->section, f->key, v);
    break;
  }
  case T_FLIST:
  case T_WEIGHTS: {
    const cfg_flist *l = f->type == T_FLIST ? p : &((const cfg_weights *)p)->list;
    if (f->type == T_WEIGHTS && (unsigned)((const cfg_weights *)p)->kind > CFG_WEIGHTS_LIST)
      return epee_errf(e, "config: %s.%s: invalid weights kind", f->section, f->key);
    for (int i = 0; i < l->n; i++)
      if (!in_range(f, l->v[i]))
        return epee_errf(e, "config: %s.%s[%d]: must be %s, got %.15g", f->section, f->key, i, r, l->v[i]);
    break;
  }
  case T_ILIST: {
    const cfg_ilist *l = p;
    for (int i = 0; i < l->n; i++)
      if (!in_range(f, l->v[i]))
        return epee_errf(e, "config: %s.%s[%d]: must be %s, got %d", f->section, f->key, i, r, l->v[i]);
    break;
  }
  case T_SLIST: {
    const cfg_slist *l = p;
    for (int i = 0; i < l->n; i++) {
      if (!l->v[i]) return epee_errf(e, "config: %s.%s[%d] is NULL", f->section, f->key, i);
      if (f->choices && find_choice(f->choices, l->v[i]) < 0)
        return epee_errf(e, "config: %s.%s[%d]: invalid value '%.100s'", f->section, f->key, i, l->v[i]);
    }
    break;
  }
  case T_BOOL: break;
  }
  return 0;
}

int cfg_validate(const epee_config *c, epee_err *e) {
  for (size_t i = 0; i < NFIELDS; i++)
    if (validate_field(c, &fields[i], e)) return -1;
  const cfg_model *m = &c->model;
  if (m->hidden % m->heads)
    return epee_errf(e, "config: model.hidden (%d) must be a multiple of model.heads (%d)", m->hidden, m->heads);
  const model_arch *arch = model_find_arch(model_arch_names[m->arch]);
  if (arch->input == MODEL_INPUT_TEXT && c->tokenizer.max_length > m->max_position)
    return epee_errf(e, "config: tokenizer.max_length (%d) exceeds model.max_position (%d)", c->tokenizer.max_length,
                     m->max_position);
  const char *kind = cfg_tokenizer_kind(c);
  char kinds[128];
  if (arch->input == MODEL_INPUT_TEXT && !model_arch_takes_tokenizer(arch, kind, kinds, sizeof kinds))
    return epee_errf(e, "config: tokenizer.kind '%.100s' is not one of model.arch %s's (%s)", kind, arch->name, kinds);
  if (arch->input == MODEL_INPUT_IMAGE) {
    if (c->tokenizer.kind[0])
      return epee_errf(e, "config: tokenizer.kind '%.100s' given, but model.arch %s reads images", c->tokenizer.kind,
                       arch->name);
    if (m->channels != 1 && m->channels != 3)
      return epee_errf(e, "config: model.channels is %d; expected 1 (grey) or 3 (RGB)", m->channels);
    if (m->image_size % m->patch_size)
      return epee_errf(e, "config: model.image_size (%d) must be a multiple of model.patch_size (%d)", m->image_size,
                       m->patch_size);
    const cfg_flist *ms[2] = {&c->image.mean, &c->image.std};
    for (int i = 0; i < 2; i++)
      if (ms[i]->n != 1 && ms[i]->n != m->channels)
        return epee_errf(e, "config: image.%s has %d values; expected 1 or model.channels (%d)", i ? "std" : "mean",
                         ms[i]->n, m->channels);
    if (2 * c->image.crop_padding >= m->image_size)
      return epee_errf(e, "config: image.crop_padding (%d) must be below half of model.image_size (%d)",
                       c->image.crop_padding, m->image_size);
  }
  if (m->hidden_groups > m->layers && (arch->fields & MF_BIT(MF_HIDDEN_GROUPS)))
    return epee_errf(e, "config: model.hidden_groups (%d) exceeds model.layers (%d)", m->hidden_groups, m->layers);
  if (c->data.text_b_column[0] && (arch->fields & MF_BIT(MF_TYPE_VOCAB)) && m->type_vocab < 2)
    return epee_errf(e, "config: data.text_b_column '%.100s' makes text pairs, which need model.type_vocab >= 2 "
                        "(found %d)", c->data.text_b_column, m->type_vocab);
  const cfg_slist *labels = &c->data.labels;
  if (m->num_labels && labels->n && m->num_labels != labels->n)
    return epee_errf(e, "config: model.num_labels (%d) differs from the %d names in data.labels", m->num_labels,
                     labels->n);
  for (int i = 0; i < labels->n; i++)
    for (int j = 0; j < i; j++)
      if (!strcmp(labels->v[i], labels->v[j]))
        return epee_errf(e, "config: data.labels: '%.100s' appears twice", labels->v[i]);
  const cfg_weights *w = &c->train.loss_weights;
  if (w->kind == CFG_WEIGHTS_LIST) {
    if (w->list.n != m->layers)
      return epee_errf(e, "config: train.loss_weights has %d weights for %d layers (model.layers)", w->list.n,
                       m->layers);
    double sum = 0;
    for (int i = 0; i < w->list.n; i++) sum += w->list.v[i];
    if (sum <= 0) return epee_errf(e, "config: train.loss_weights must not all be 0");
  }
  const cfg_calibrate *k = &c->calibrate;
  for (int i = 0; i < k->patience.n; i++)
    if (k->patience.v[i] >= m->layers)
      return epee_errf(e, "config: calibrate.patience[%d] = %d must be below model.layers (%d)", i,
                       k->patience.v[i], m->layers);
  if (k->layer_budget > m->layers)
    return epee_errf(e, "config: calibrate.layer_budget (%.15g) exceeds model.layers (%d)", k->layer_budget,
                     m->layers);
  if (k->rule == CFG_RULE_LAYER_BUDGET && k->layer_budget <= 0)
    return epee_errf(e, "config: calibrate.rule layer_budget needs calibrate.layer_budget > 0");
  const double *r = k->tau_range.v;
  if (k->tau_range.n && !(k->tau_range.n == 3 && r[0] > 0 && r[0] < r[1] && r[1] <= 1 && r[2] == (int)r[2] &&
                          r[2] >= 2 && r[2] <= 1000))
    return epee_errf(e, "config: calibrate.tau_range must be [from, to, count] with 0 < from < to <= 1 and an "
                        "integer count in [2, 1000]");
  if (k->epsilon <= 0 || k->delta <= 0)
    return epee_errf(e, "config: calibrate.epsilon (%.15g) and calibrate.delta (%.15g) must be above 0", k->epsilon,
                     k->delta);
  int has_none = 0;
  for (int i = 0; i < k->policies.n; i++) has_none |= !strcmp(k->policies.v[i], "none");
  if (k->rule == CFG_RULE_RISK && !has_none)
    return epee_errf(e, "config: calibrate.rule risk needs none in calibrate.policies (full depth is its fallback)");
  return 0;
}

const char *cfg_tokenizer_kind(const epee_config *c) {
  const model_arch *a = model_find_arch(model_arch_names[c->model.arch]);
  return c->tokenizer.kind[0] ? c->tokenizer.kind : a->tokenizers ? a->tokenizers[0] : "";
}

cfg_format cfg_data_format(const char *path, cfg_format f) {
  if (f != CFG_FORMAT_AUTO) return f;
  switch (ds_format_of(path)) {
  case DS_JSONL: return CFG_FORMAT_JSONL;
  case DS_NPZ: return CFG_FORMAT_NPZ;
  case DS_IMAGE_FOLDER:
  case DS_PNG: return CFG_FORMAT_IMAGE_FOLDER; /* one PNG is no split: the folder reader says so */
  default: return CFG_FORMAT_TSV;
  }
}

void cfg_loss_weights(const cfg_weights *w, int layers, double *out) {
  EPEE_CHECK(w->kind != CFG_WEIGHTS_LIST || w->list.n == layers, "one loss weight per layer (cfg_validate)");
  for (int i = 0; i < layers; i++) {
    switch (w->kind) {
    case CFG_WEIGHTS_ASC: out[i] = i + 1; break;
    case CFG_WEIGHTS_UNIFORM: out[i] = 1; break;
    case CFG_WEIGHTS_DESC: out[i] = layers - i; break;
    case CFG_WEIGHTS_LIST: out[i] = w->list.v[i]; break;
    }
  }
}

/* ---------------------------------------------------------------------------------------------------
 * Output: every value becomes a jansson value (field_json, the one mapping from the schema's types). The JSON
 * copy is jansson's text of them; the YAML file writes the same values in flow style (JSON syntax, which YAML
 * reads back as the same values, with YAML's own rules for what must be escaped). */

typedef struct {
  char *p;
  size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  va_list ap, aq;
  va_start(ap, fmt);
  va_copy(aq, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  EPEE_CHECK(n >= 0, "vsnprintf failed");
  if (b->len + (size_t)n + 1 > b->cap) {
    b->cap = 2 * (b->len + (size_t)n + 1);
    b->p = epee_realloc(b->p, b->cap);
  }
  vsnprintf(b->p + b->len, b->cap - b->len, fmt, aq);
  va_end(aq);
  b->len += (size_t)n;
}

/* Shortest text that reads back to the same double, always with a '.' (PyYAML reads 1e-08 as a string). */
static void sb_double(sbuf *b, double x) {
  char s[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(s, sizeof s, "%.*g", prec, x);
    if (strtod(s, NULL) == x) break;
  }
  if (!strchr(s, '.')) {
    char *exp = strchr(s, 'e');
    if (exp) {
      memmove(exp + 2, exp, strlen(exp) + 1);
      memcpy(exp, ".0", 2);
    } else {
      strcat(s, ".0");
    }
  }
  sb_printf(b, "%s", s);
}

/* Double-quoted with JSON escapes, and DEL escaped too: YAML allows no raw control character. */
static void sb_string(sbuf *b, const char *s) {
  sb_printf(b, "\"");
  for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
    if (*q == '"' || *q == '\\') sb_printf(b, "\\%c", *q);
    else if (*q < 0x20 || *q == 0x7f) sb_printf(b, "\\u%04x", *q);
    else sb_printf(b, "%c", *q);
  }
  sb_printf(b, "\"");
}

/* A value of field_json as YAML flow text. */
static void sb_yaml(sbuf *b, const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_STRING: sb_string(b, json_string_value(v)); break;
  case JSON_INTEGER: sb_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
  case JSON_REAL: sb_double(b, json_real_value(v)); break;
  case JSON_ARRAY:
    sb_printf(b, "[");
    for (size_t i = 0; i < json_array_size(v); i++) {
      if (i) sb_printf(b, ", ");
      sb_yaml(b, json_array_get(v, i));
    }
    sb_printf(b, "]");
    break;
  default: sb_printf(b, "%s", json_is_true(v) ? "true" : "false");
  }
}

static json_t *list_json(cfg_type t, const void *list) {
  int n = t == T_FLOAT ? ((const cfg_flist *)list)->n : t == T_INT ? ((const cfg_ilist *)list)->n
                                                                     : ((const cfg_slist *)list)->n;
  json_t *a = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(a, t == T_FLOAT ? json_real(((const cfg_flist *)list)->v[i])
                             : t == T_INT ? json_integer(((const cfg_ilist *)list)->v[i])
                                          : json_string(((const cfg_slist *)list)->v[i]));
  return a;
}

static json_t *field_json(const cfg_field *f, const void *p) {
  switch (f->type) {
  case T_INT: return json_integer(*(const int *)p);
  case T_FLOAT: return json_real(*(const double *)p);
  case T_BOOL: return json_boolean(*(const bool *)p);
  case T_STR: return json_string(*(char *const *)p ? *(char *const *)p : "");
  case T_ENUM: {
    int v = *(const int *)p;
    EPEE_CHECK(v >= 0 && v < count_choices(f->choices), "enum value out of range (see cfg_validate)");
    return json_string(f->choices[v]);
  }
  case T_FLIST: return list_json(T_FLOAT, p);
  case T_ILIST: return list_json(T_INT, p);
  case T_SLIST: return list_json(T_STR, p);
  case T_WEIGHTS: {
    const cfg_weights *w = p;
    EPEE_CHECK((unsigned)w->kind <= CFG_WEIGHTS_LIST, "weights kind out of range (see cfg_validate)");
    return w->kind == CFG_WEIGHTS_LIST ? list_json(T_FLOAT, &w->list) : json_string(f->choices[w->kind]);
  }
  }
  return NULL;
}

char *cfg_to_json(const epee_config *c) {
  json_t *root = json_object(), *section = NULL;
  for (size_t i = 0; i < NFIELDS; i++) {
    const cfg_field *f = &fields[i];
    if (i == 0 || strcmp(f->section, fields[i - 1].section))
      json_object_set_new(root, f->section, section = json_object());
    json_object_set_new(section, f->key, field_json(f, cslot(c, f)));
  }
  /* jansson prints all reals of a text with one precision: the least that reads back exactly (0.1, not
   * 0.10000000000000001, unless some value needs 17 digits) */
  char *text = NULL;
  for (int prec = 1; prec <= 17; prec++) {
    free(text);
    text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(prec));
    json_t *back = text ? json_loads(text, 0, NULL) : NULL;
    int same = json_equal(root, back);
    json_decref(back);
    if (same) break;
  }
  json_decref(root);
  if (!text) epee_fatal("jansson could not write the config (out of memory)");
  return text;
}

int cfg_write(const epee_config *c, const char *path, epee_err *e) {
  sbuf b = {0};
  sb_printf(&b, "# Effective epee-train configuration, written by the program (values in JSON syntax).\n"
                "# Reload with the config loader; paths are relative to the working directory of the run.\n");
  for (size_t i = 0; i < NFIELDS; i++) {
    const cfg_field *f = &fields[i];
    if (i == 0 || strcmp(f->section, fields[i - 1].section)) sb_printf(&b, "%s:\n", f->section);
    size_t start = b.len;
    sb_printf(&b, "  %s: ", f->key);
    json_t *v = field_json(f, cslot(c, f));
    sb_yaml(&b, v);
    json_decref(v);
    int pad = 44 - (int)(b.len - start);
    sb_printf(&b, "%*s  # %s\n", pad > 0 ? pad : 0, "", f->help);
  }
  char *tmp = epee_malloc(strlen(path) + 16);
  sprintf(tmp, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp), rc = 0;
  FILE *fp = fd < 0 ? NULL : fdopen(fd, "w");
  if (!fp) {
    rc = epee_errf(e, "%s: cannot write config: %s", path, strerror(errno));
    if (fd >= 0) {
      close(fd);
      unlink(tmp);
    }
  } else {
    fchmod(fd, 0644); /* mkstemp creates 0600; a config is not secret */
    bool ok = fwrite(b.p, 1, b.len, fp) == b.len;
    ok = (fclose(fp) == 0) && ok;
    if (!ok || rename(tmp, path)) {
      rc = epee_errf(e, "%s: cannot write config: %s", path, strerror(errno));
      unlink(tmp);
    }
  }
  free(tmp);
  free(b.p);
  return rc;
}

void cfg_print_help(FILE *f) {
  fprintf(f, "Configuration keys (YAML: one mapping per section; command line: section.key=value).\n"
             "Relative paths are relative to the current working directory.\n");
  for (size_t i = 0; i < NFIELDS; i++) {
    const cfg_field *k = &fields[i];
    bool list = k->type == T_FLIST || k->type == T_ILIST || k->type == T_SLIST || k->type == T_WEIGHTS;
    char name[64], detail[320] = "";
    snprintf(name, sizeof name, "%s.%s", k->section, k->key);
    if (k->type == T_INT || k->type == T_FLOAT || (list && k->type != T_SLIST)) {
      char r[96];
      range_text(k, r, sizeof r);
      appendf(detail, sizeof detail, "%s%s; ", list ? "items " : "", r);
    }
    if (k->choices) {
      appendf(detail, sizeof detail, "%sone of ", k->type == T_WEIGHTS ? "or " : list ? "items " : "");
      append_choices(detail, sizeof detail, k->choices, "|");
      appendf(detail, sizeof detail, "; ");
    }
    if (k->flags & REQUIRED) appendf(detail, sizeof detail, "required");
    else appendf(detail, sizeof detail, "default %s", k->def);
    fprintf(f, "  %-26s %-11s %s; %s\n", name, type_names[k->type], k->help, detail);
  }
}
