/* Sweep planning: the command line or a sweep file -> parameters -> trials, and the check of every trial's
 * config before anything runs. */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/atomic_file.h"
#include "core/rng.h"
#include "train/config.h"
#include "train/hf_init.h"
#include "train/sweep.h"

enum { MAX_TRIALS = 10000, MAX_RANGE = 10000 };

static void push(char ***v, int *n, char *s) {
  *v = epee_realloc(*v, sizeof(char *) * (size_t)(*n + 1));
  (*v)[(*n)++] = s;
}

static void free_strings(char **v, int n) {
  for (int i = 0; v && i < n; i++) free(v[i]);
  free(v);
}

static char *joined(const char *key, const char *value) {
  size_t n = strlen(key) + strlen(value) + 2;
  char *s = epee_malloc(n);
  snprintf(s, n, "%s=%s", key, value);
  return s;
}

/* A number as an override takes it: integral keys get integers; 12 significant digits drop the float noise
 * of range steps (0.30000000000000004 -> 0.3). */
static char *number_text(double x, int integral) {
  char buf[64];
  if (integral) snprintf(buf, sizeof buf, "%.0f", round(x));
  else snprintf(buf, sizeof buf, "%.12g", x);
  return epee_strdup(buf);
}

/* ---- parameters ------------------------------------------------------------------------------------------ */

/* A new parameter for key (checked: a schema key, not run.dir, not swept twice). */
static sweep_param *add_param(sweep_plan *p, const char *key, sweep_kind kind, const char *where, epee_err *e) {
  if (!cfg_key_type(key)) {
    epee_errf(e, "%s: '%s' is not a config key (see epee-train --help)", where, key);
    return NULL;
  }
  if (!strcmp(key, "run.dir")) {
    epee_errf(e, "%s: run.dir cannot be swept: each trial's folder is made inside the sweep folder", where);
    return NULL;
  }
  for (int i = 0; i < p->n_params; i++)
    if (!strcmp(p->params[i].key, key)) {
      epee_errf(e, "%s: %s is swept twice", where, key);
      return NULL;
    }
  p->params = epee_realloc(p->params, sizeof(sweep_param) * (size_t)(p->n_params + 1));
  sweep_param *q = &p->params[p->n_params++];
  memset(q, 0, sizeof *q);
  q->key = epee_strdup(key);
  q->kind = kind;
  return q;
}

static void add_value(sweep_param *q, char *value, const char *where) {
  int n = q->n;
  push(&q->values, &n, value);
  push(&q->where, &q->n, epee_strdup(where));
}

static int key_is_int(const char *key) {
  const char *t = cfg_key_type(key);
  return t && !strcmp(t, "int");
}

/* range(start, stop[, step]) as Python's and Hydra's: stop excluded, step 1 by default, floats allowed. */
static int expand_range(sweep_param *q, const double *a, int na, const char *where, epee_err *e) {
  double start = a[0], stop = a[1], step = na == 3 ? a[2] : 1;
  if (!(step != 0) || !isfinite(start) || !isfinite(stop) || !isfinite(step))
    return epee_errf(e, "%s: range(start, stop[, step]) needs finite numbers and a step other than 0", where);
  double count = ceil((stop - start) / step - 1e-9);
  if (count < 1) return epee_errf(e, "%s: range(%g, %g, %g) is empty", where, start, stop, step);
  if (count > MAX_RANGE) return epee_errf(e, "%s: range gives over %d values", where, MAX_RANGE);
  int integral = key_is_int(q->key);
  for (int i = 0; i < (int)count; i++) add_value(q, number_text(start + i * step, integral), where);
  return 0;
}

static int check_bounds(sweep_kind kind, double lo, double hi, const char *where, epee_err *e) {
  if (!isfinite(lo) || !isfinite(hi) || !(lo < hi)) return epee_errf(e, "%s: expected [low, high] with low < high", where);
  if (kind == SWEEP_LOGUNIFORM && !(lo > 0)) return epee_errf(e, "%s: loguniform needs low > 0", where);
  return 0;
}

/* ---- the command line ------------------------------------------------------------------------------------ */

/* Splits s at commas outside brackets, braces, parentheses and quotes. */
static void split_top(const char *s, char ***out, int *n) {
  int depth = 0;
  char quote = 0;
  const char *start = s;
  for (const char *c = s;; c++) {
    if (quote) {
      if (*c == quote) quote = 0;
      else if (!*c) quote = 0, c--; /* unterminated: the override's YAML parse reports it */
      continue;
    }
    if (*c == '\'' || *c == '"') quote = *c;
    else if (*c == '[' || *c == '{' || *c == '(') depth++;
    else if ((*c == ']' || *c == '}' || *c == ')') && depth > 0) depth--;
    else if ((*c == ',' && depth == 0) || !*c) {
      size_t len = (size_t)(c - start);
      char *piece = epee_malloc(len + 1);
      memcpy(piece, start, len);
      piece[len] = 0;
      push(out, n, piece);
      start = c + 1;
      if (!*c) return;
    }
  }
}

/* "name(a, b[, c])" -> 1 with the numbers; 0 when v is not a call of name; -1 with e set when it is but its
 * arguments are not 2 or 3 numbers. */
static int parse_call(const char *v, const char *name, double *a, int *na, const char *where, epee_err *e) {
  size_t ln = strlen(name);
  if (strncmp(v, name, ln) || v[ln] != '(') return 0;
  const char *c = v + ln + 1;
  *na = 0;
  for (;;) {
    char *end;
    double x = strtod(c, &end);
    if (end == c || *na == 3) break;
    a[(*na)++] = x;
    while (isspace((unsigned char)*end)) end++;
    if (*end == ')' && end[1] == 0 && *na >= 2) return 1;
    if (*end != ',') break;
    c = end + 1;
  }
  return epee_errf(e, "%s: expected %s(a, b%s) with numbers", where, name, strcmp(name, "range") ? "" : "[, step]");
}

int sweep_plan_add_fixed(sweep_plan *p, const char *assignment, const char *where, epee_err *e) {
  const char *eq = strchr(assignment, '=');
  if (!eq) return epee_errf(e, "%s: expected section.key=value", where);
  push(&p->fixed, &p->n_fixed, epee_strdup(assignment));
  int n = p->n_fixed - 1;
  push(&p->fixed_where, &n, epee_strdup(where));
  return 0;
}

static int plan_finish(sweep_plan *p, epee_err *e);

int sweep_plan_args(sweep_plan *p, const char *config, int argc, char *const *argv, epee_err *e) {
  memset(p, 0, sizeof *p);
  p->config = epee_strdup(config);
  p->source = epee_strdup("command line");
  for (int i = 0; i < argc; i++) {
    char where[600];
    snprintf(where, sizeof where, "--sweep argument '%.560s'", argv[i]);
    const char *eq = strchr(argv[i], '=');
    if (!eq || eq == argv[i]) return epee_errf(e, "%s: expected section.key=value (or values a,b,c or range(a,b))", where);
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)(eq - argv[i]), argv[i]);
    const char *v = eq + 1;
    double a[3];
    int na, rc;
    if ((rc = parse_call(v, "range", a, &na, where, e)) != 0) {
      sweep_param *q = rc < 0 ? NULL : add_param(p, key, SWEEP_VALUES, where, e);
      if (!q || expand_range(q, a, na, where, e)) return -1;
      continue;
    }
    if (!strncmp(v, "uniform(", 8) || !strncmp(v, "loguniform(", 11))
      return epee_errf(e, "%s: random search needs a sweep file (method: random, trials, seed): --sweep-file", where);
    char **pieces = NULL;
    int n = 0;
    split_top(v, &pieces, &n);
    if (n == 1) {
      free_strings(pieces, n);
      if (sweep_plan_add_fixed(p, argv[i], where, e)) return -1;
      continue;
    }
    sweep_param *q = add_param(p, key, SWEEP_VALUES, where, e);
    for (int k = 0; q && k < n; k++) add_value(q, pieces[k], where);
    if (!q) free_strings(pieces, n);
    else free(pieces);
    if (!q) return -1;
  }
  return plan_finish(p, e);
}

/* ---- the sweep file -------------------------------------------------------------------------------------- */

typedef struct {
  const char *path;
  yaml_document_t *d;
} yfile;

static void at(const yfile *y, const yaml_node_t *n, char *buf, size_t len) {
  snprintf(buf, len, "%s:%zu:%zu", y->path, n->start_mark.line + 1, n->start_mark.column + 1);
}

static int fail_node(epee_err *e, const yfile *y, const yaml_node_t *n, const char *fmt, const char *arg) {
  char w[600], msg[600];
  at(y, n, w, sizeof w);
  snprintf(msg, sizeof msg, fmt, arg);
  return epee_errf(e, "%s: %s", w, msg);
}

static const char *scalar(const yaml_node_t *n) {
  return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A scalar as override text: as written when it needs no quotes, else single-quoted; a sequence of scalars as a
 * flow list "[a, b]". NULL for anything else. */
static char *node_text(yaml_document_t *d, const yaml_node_t *n) {
  if (n->type == YAML_SEQUENCE_NODE) {
    size_t cap = 64, len = 1;
    char *s = epee_malloc(cap);
    strcpy(s, "[");
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
      char *t = node_text(d, yaml_document_get_node(d, *it));
      if (!t || yaml_document_get_node(d, *it)->type != YAML_SCALAR_NODE) {
        free(t), free(s);
        return NULL;
      }
      size_t need = len + strlen(t) + 4;
      if (need > cap) s = epee_realloc(s, cap = 2 * need);
      len += (size_t)sprintf(s + len, "%s%s", it > n->data.sequence.items.start ? ", " : "", t);
      free(t);
    }
    strcpy(s + len, "]");
    return s;
  }
  const char *v = scalar(n);
  return v ? sweep_yaml_scalar(v) : NULL;
}

char *sweep_yaml_scalar(const char *v) {
  int plain = *v != 0;
  for (const char *c = v; *c && plain; c++) plain = isalnum((unsigned char)*c) || strchr("._+-/", *c);
  if (plain) return epee_strdup(v);
  size_t len = 3;
  for (const char *c = v; *c; c++) len += *c == '\'' ? 2 : 1;
  char *s = epee_malloc(len), *o = s;
  *o++ = '\'';
  for (const char *c = v; *c; c++) {
    if (*c == '\'') *o++ = '\'';
    *o++ = *c;
  }
  *o++ = '\'', *o = 0;
  return s;
}

/* A flow list of 2 (or, for range, 3) numbers into a[]. */
static int numbers(const yfile *y, const yaml_node_t *n, int lo, int hi, double *a, int *na, const char *what,
                   epee_err *e) {
  *na = 0;
  if (n->type == YAML_SEQUENCE_NODE)
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
      const char *s = scalar(yaml_document_get_node(y->d, *it));
      char *end;
      if (!s || *na == hi) break;
      a[*na] = strtod(s, &end);
      if (end == s || *end) break;
      if (++*na >= lo && it + 1 == n->data.sequence.items.top) return 0;
    }
  return fail_node(e, y, n, "expected %s", what);
}

static int parse_param(sweep_plan *p, const yfile *y, const char *key, const yaml_node_t *n, epee_err *e) {
  char where[600];
  at(y, n, where, sizeof where);
  const yaml_node_t *list = NULL, *spec = NULL;
  const char *kind = "values";
  if (n->type == YAML_SEQUENCE_NODE) {
    list = n;
  } else if (n->type == YAML_MAPPING_NODE && n->data.mapping.pairs.top - n->data.mapping.pairs.start == 1) {
    yaml_node_pair_t *pr = n->data.mapping.pairs.start;
    kind = scalar(yaml_document_get_node(y->d, pr->key));
    spec = yaml_document_get_node(y->d, pr->value);
    if (kind && !strcmp(kind, "values") && spec->type == YAML_SEQUENCE_NODE) list = spec, spec = NULL;
  }
  if (list) {
    if (list->data.sequence.items.top == list->data.sequence.items.start)
      return fail_node(e, y, list, "%s: an empty list of values", key);
    sweep_param *q = add_param(p, key, SWEEP_VALUES, where, e);
    if (!q) return -1;
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++) {
      const yaml_node_t *v = yaml_document_get_node(y->d, *it);
      char *t = node_text(y->d, v), w[600];
      if (!t) return fail_node(e, y, v, "%s: expected a value (a scalar or a list of scalars)", key);
      at(y, v, w, sizeof w);
      add_value(q, t, w);
    }
    return 0;
  }
  double a[3];
  int na;
  if (spec && kind && !strcmp(kind, "range")) {
    sweep_param *q = add_param(p, key, SWEEP_VALUES, where, e);
    if (!q || numbers(y, spec, 2, 3, a, &na, "range: [start, stop] or [start, stop, step]", e)) return -1;
    at(y, spec, where, sizeof where);
    return expand_range(q, a, na, where, e);
  }
  sweep_kind k = SWEEP_UNIFORM;
  if (spec && kind && (!strcmp(kind, "uniform") || (k = SWEEP_LOGUNIFORM, !strcmp(kind, "loguniform")))) {
    if (p->method != SWEEP_RANDOM) return fail_node(e, y, n, "%s: uniform and loguniform need method: random", key);
    sweep_param *q = add_param(p, key, k, where, e);
    if (!q || numbers(y, spec, 2, 2, a, &na, "[low, high]", e)) return -1;
    at(y, spec, where, sizeof where);
    if (check_bounds(k, a[0], a[1], where, e)) return -1;
    q->lo = a[0], q->hi = a[1];
    q->where = epee_malloc(sizeof(char *)); /* where[0]: the origin of every draw */
    q->where[0] = epee_strdup(where);
    return 0;
  }
  return fail_node(e, y, n,
                   "%s: expected a list of values, or one of {values: [...]}, {range: [start, stop, step]}, "
                   "{uniform: [low, high]}, {loguniform: [low, high]}",
                   key);
}

static const char *const file_keys[] = {"config", "dir", "method", "trials", "seed", "overrides", "parameters", NULL};

static int parse_int(const yfile *y, const yaml_node_t *n, long lo, long hi, long *out, epee_err *e) {
  const char *s = scalar(n);
  char *end;
  long v = s ? strtol(s, &end, 10) : 0;
  if (!s || end == s || *end || v < lo || v > hi) {
    char what[96];
    snprintf(what, sizeof what, "an integer in [%ld, %ld]", lo, hi);
    return fail_node(e, y, n, "expected %s", what);
  }
  *out = v;
  return 0;
}

static int parse_file(sweep_plan *p, const yfile *y, epee_err *e) {
  const yaml_node_t *root = yaml_document_get_root_node(y->d);
  if (!root || root->type != YAML_MAPPING_NODE)
    return epee_errf(e, "%s: expected a mapping with config, parameters, ...", y->path);
  const yaml_node_t *v[7] = {0};
  for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
    const yaml_node_t *k = yaml_document_get_node(y->d, pr->key);
    const char *name = scalar(k);
    int i = 0;
    while (file_keys[i] && (!name || strcmp(file_keys[i], name))) i++;
    if (!file_keys[i])
      return fail_node(e, y, k, "unknown key '%s' (expected config, dir, method, trials, seed, overrides, parameters)",
                       name ? name : "?");
    if (v[i]) return fail_node(e, y, k, "'%s' is given twice", name);
    v[i] = yaml_document_get_node(y->d, pr->value);
  }
  if (!v[0] || !scalar(v[0]) || !*scalar(v[0])) return epee_errf(e, "%s: no 'config:' (the base config file)", y->path);
  p->config = epee_strdup(scalar(v[0]));
  if (v[1]) {
    if (!scalar(v[1]) || !*scalar(v[1])) return fail_node(e, y, v[1], "%s", "dir: expected a folder");
    p->dir = epee_strdup(scalar(v[1]));
  }
  if (v[2]) {
    const char *m = scalar(v[2]);
    if (!m || (strcmp(m, "grid") && strcmp(m, "random"))) return fail_node(e, y, v[2], "%s", "method: expected grid or random");
    p->method = !strcmp(m, "random") ? SWEEP_RANDOM : SWEEP_GRID;
  }
  long trials = 0, seed = 0;
  if ((v[3] || v[4]) && p->method != SWEEP_RANDOM)
    return fail_node(e, y, v[3] ? v[3] : v[4], "%s", "trials and seed are for method: random");
  if (p->method == SWEEP_RANDOM) {
    if (!v[3]) return epee_errf(e, "%s: method: random needs trials: N", y->path);
    if (parse_int(y, v[3], 1, MAX_TRIALS, &trials, e) || (v[4] && parse_int(y, v[4], 0, 2147483647L, &seed, e)))
      return -1;
  }
  p->n_random = (int)trials;
  p->seed = (uint64_t)seed;
  if (v[5]) {
    if (v[5]->type != YAML_MAPPING_NODE) return fail_node(e, y, v[5], "%s", "overrides: expected {section.key: value, ...}");
    for (yaml_node_pair_t *pr = v[5]->data.mapping.pairs.start; pr < v[5]->data.mapping.pairs.top; pr++) {
      const yaml_node_t *k = yaml_document_get_node(y->d, pr->key), *val = yaml_document_get_node(y->d, pr->value);
      char *t = node_text(y->d, val), w[600];
      if (!scalar(k) || !t) {
        free(t);
        return fail_node(e, y, t ? k : val, "%s", "overrides: expected section.key: value");
      }
      at(y, val, w, sizeof w);
      char *a = joined(scalar(k), t);
      free(t);
      int rc = sweep_plan_add_fixed(p, a, w, e);
      free(a);
      if (rc) return -1;
    }
  }
  if (!v[6] || v[6]->type != YAML_MAPPING_NODE || v[6]->data.mapping.pairs.top == v[6]->data.mapping.pairs.start)
    return v[6] ? fail_node(e, y, v[6], "%s", "parameters: expected {section.key: [values], ...}")
                : epee_errf(e, "%s: no 'parameters:' (what to sweep)", y->path);
  for (yaml_node_pair_t *pr = v[6]->data.mapping.pairs.start; pr < v[6]->data.mapping.pairs.top; pr++) {
    const yaml_node_t *k = yaml_document_get_node(y->d, pr->key);
    if (!scalar(k)) return fail_node(e, y, k, "%s", "parameters: expected section.key");
    if (parse_param(p, y, scalar(k), yaml_document_get_node(y->d, pr->value), e)) return -1;
  }
  return 0;
}

int sweep_plan_file(sweep_plan *p, const char *path, epee_err *e) {
  memset(p, 0, sizeof *p);
  p->source = epee_strdup(path);
  yaml_document_t d;
  if (cfg_yaml_load(path, &d, e)) return -1;
  yfile y = {path, &d};
  int rc = parse_file(p, &y, e);
  yaml_document_delete(&d);
  return rc ? rc : plan_finish(p, e);
}

/* ---- trials ---------------------------------------------------------------------------------------------- */

char *sweep_trial_name(char *const *set, int n) {
  size_t len = 1;
  for (int i = 0; i < n; i++) len += strlen(set[i]) + 1;
  char *raw = epee_malloc(len), *o = raw;
  uint64_t h = 1469598103934665603ULL; /* FNV-1a of the exact text */
  for (int i = 0; i < n; i++) o += sprintf(o, "%s%s", i ? "," : "", set[i]);
  int changed = 0;
  for (char *c = raw; *c; c++) {
    h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    if (!isalnum((unsigned char)*c) && !strchr("._+=,-", *c)) *c = '_', changed = 1;
  }
  enum { KEEP = 100 };
  if (!changed && strlen(raw) <= KEEP + 12) return raw;
  char *name = epee_malloc(KEEP + 16);
  snprintf(name, KEEP + 16, "%.*s~%08x", KEEP, raw, (unsigned)(h ^ (h >> 32)));
  free(raw);
  return name;
}

static void add_trial(sweep_plan *p, char **set, const char **where) {
  sweep_trial t = {sweep_trial_name(set, p->n_params), set, where, p->n_params};
  for (int i = 0; i < p->n_trials; i++)
    if (!strcmp(p->trials[i].name, t.name)) { /* a random draw repeating an earlier one: run once */
      free(t.name), free_strings(set, t.n), free(where);
      return;
    }
  p->trials = epee_realloc(p->trials, sizeof(sweep_trial) * (size_t)(p->n_trials + 1));
  p->trials[p->n_trials++] = t;
}

/* The grid product, the first parameter varying slowest (as itertools.product). */
static int expand_grid(sweep_plan *p, epee_err *e) {
  double total = 1;
  for (int i = 0; i < p->n_params; i++) total *= p->params[i].n;
  if (total > MAX_TRIALS) return epee_errf(e, "%s: the grid has %.0f trials, over %d", p->source, total, MAX_TRIALS);
  int *idx = epee_calloc((size_t)p->n_params, sizeof(int));
  for (int t = 0; t < (int)total; t++) {
    char **set = epee_malloc(sizeof(char *) * (size_t)p->n_params);
    const char **where = epee_malloc(sizeof(char *) * (size_t)p->n_params);
    for (int i = 0; i < p->n_params; i++) {
      set[i] = joined(p->params[i].key, p->params[i].values[idx[i]]);
      where[i] = p->params[i].where[idx[i]];
    }
    add_trial(p, set, where);
    for (int i = p->n_params - 1; i >= 0 && ++idx[i] == p->params[i].n; i--) idx[i] = 0;
  }
  free(idx);
  return 0;
}

/* Random search: trial t's value of parameter i is a function of (seed, i, t) only, so a sweep re-expands to the
 * same trials and adding trials keeps the earlier ones. */
static void expand_random(sweep_plan *p) {
  for (int t = 0; t < p->n_random; t++) {
    char **set = epee_malloc(sizeof(char *) * (size_t)p->n_params);
    const char **where = epee_malloc(sizeof(char *) * (size_t)p->n_params);
    for (int i = 0; i < p->n_params; i++) {
      const sweep_param *q = &p->params[i];
      double u = (double)(rng_hash(p->seed, 0x5eeb0000ULL + (uint64_t)i, (uint64_t)t) >> 11) * 0x1p-53;
      char *v;
      if (q->kind == SWEEP_VALUES) {
        int k = (int)(u * q->n);
        v = epee_strdup(q->values[k < q->n ? k : q->n - 1]);
      } else {
        double x = q->kind == SWEEP_UNIFORM ? q->lo + u * (q->hi - q->lo)
                                            : exp(log(q->lo) + u * (log(q->hi) - log(q->lo)));
        char buf[64];
        if (key_is_int(q->key)) snprintf(buf, sizeof buf, "%.0f", round(x));
        else snprintf(buf, sizeof buf, "%.4g", x); /* 4 digits: readable names, finer than any search needs */
        v = epee_strdup(buf);
      }
      set[i] = joined(q->key, v);
      free(v);
      where[i] = q->where[0];
    }
    add_trial(p, set, where);
  }
}

/* Base config + fixed overrides into *c; errors name the fixed override's origin. */
static int base_config(const sweep_plan *p, epee_config *c, epee_err *e) {
  if (cfg_load(p->config, c, e)) return -1;
  for (int i = 0; i < p->n_fixed; i++)
    if (cfg_override(c, p->fixed[i], e)) {
      char msg[EPEE_ERR_LEN];
      snprintf(msg, sizeof msg, "%s", e->msg);
      return epee_errf(e, "%s: %s", p->fixed_where[i], msg);
    }
  return 0;
}

static int plan_finish(sweep_plan *p, epee_err *e) {
  if (p->n_params == 0)
    return epee_errf(e, "%s: nothing to sweep (give a key a list of values: key=a,b or range(a,b))", p->source);
  if (!p->dir) {
    epee_config c;
    int rc = base_config(p, &c, e);
    if (!rc) p->dir = epee_strdup(c.run.dir);
    cfg_free(&c);
    if (rc) return -1;
  }
  if (p->method == SWEEP_RANDOM) {
    expand_random(p);
    return 0;
  }
  return expand_grid(p, e);
}

/* ---- the check before anything runs ---------------------------------------------------------------------- */

char *sweep_trial_dir(const sweep_plan *p, int t) {
  size_t n = strlen(p->dir) + strlen(p->trials[t].name) + 2;
  char *s = epee_malloc(n);
  snprintf(s, n, "%s/%s", p->dir, p->trials[t].name);
  return s;
}

/* The trial's full config (as its run will have it); errors name the value's origin. */
static int trial_config(const sweep_plan *p, int t, epee_config *c, epee_err *e) {
  const sweep_trial *tr = &p->trials[t];
  if (base_config(p, c, e)) return -1;
  for (int i = 0; i < tr->n; i++)
    if (cfg_override(c, tr->set[i], e)) {
      char msg[EPEE_ERR_LEN];
      snprintf(msg, sizeof msg, "%s", e->msg);
      return epee_errf(e, "%s: %s", tr->where[i], msg);
    }
  free(c->run.dir);
  c->run.dir = sweep_trial_dir(p, t);
  if (hf_init_config(c, e) || cfg_validate(c, e)) {
    char msg[EPEE_ERR_LEN];
    snprintf(msg, sizeof msg, "%s", e->msg);
    return epee_errf(e, "%s: trial %s: %s", p->source, tr->name, msg);
  }
  return 0;
}

/* The first "section.key" whose value differs between two cfg_to_json texts, into key. */
static void first_difference(const char *a, const char *b, char *key, size_t n, char *va, char *vb, size_t vn) {
  json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);
  const char *section;
  json_t *sa;
  snprintf(key, n, "?");
  json_object_foreach(ja, section, sa) {
    const char *k;
    json_t *x;
    json_object_foreach(sa, k, x) {
      json_t *y = json_object_get(json_object_get(jb, section), k);
      if (!json_equal(x, y)) {
        char *ta = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT), *tb = y ? json_dumps(y, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        snprintf(key, n, "%s.%s", section, k);
        snprintf(va, vn, "%s", ta ? ta : "?");
        snprintf(vb, vn, "%s", tb ? tb : "none");
        free(ta), free(tb);
        json_decref(ja), json_decref(jb);
        return;
      }
    }
  }
  json_decref(ja), json_decref(jb);
}

/* A trial folder that holds a run must hold this trial's run: same config, whatever the folder was called. */
static int check_existing(const epee_config *want, epee_err *e) {
  char path[4200];
  snprintf(path, sizeof path, "%s/config.yaml", want->run.dir);
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  epee_config had;
  int rc = cfg_load(path, &had, e);
  if (rc == 0) {
    free(had.run.dir);
    had.run.dir = epee_strdup(want->run.dir);
    char *a = cfg_to_json(want), *b = cfg_to_json(&had);
    if (strcmp(a, b)) {
      char key[160], va[200], vb[200];
      first_difference(a, b, key, sizeof key, va, vb, sizeof va);
      rc = epee_errf(e, "%s: holds a run of another config (%s: %s in the sweep, %s in the folder); remove it, "
                        "or rerun with --overwrite to start every trial over", want->run.dir, key, va, vb);
    }
    free(a), free(b);
  }
  cfg_free(&had);
  return rc;
}

int sweep_plan_check(const sweep_plan *p, int overwrite, int *max_threads, epee_err *e) {
  *max_threads = 1;
  for (int t = 0; t < p->n_trials; t++) {
    epee_config c;
    int rc = trial_config(p, t, &c, e);
    if (!rc && !overwrite) rc = check_existing(&c, e);
    if (!rc && cfg_threads(&c) > *max_threads) *max_threads = cfg_threads(&c);
    cfg_free(&c);
    if (rc) return -1;
  }
  return 0;
}

/* ---- sweep.yaml ------------------------------------------------------------------------------------------ */

static int ystr(yaml_document_t *d, const char *s) {
  return yaml_document_add_scalar(d, NULL, (yaml_char_t *)s, -1, YAML_ANY_SCALAR_STYLE);
}

static void ypair(yaml_document_t *d, int map, const char *k, int v) {
  yaml_document_append_mapping_pair(d, map, ystr(d, k), v);
}

int sweep_plan_write(const sweep_plan *p, const char *path, epee_err *e) {
  yaml_document_t d;
  if (!yaml_document_initialize(&d, NULL, NULL, NULL, 0, 1)) epee_fatal("libyaml ran out of memory");
  int root = yaml_document_add_mapping(&d, NULL, YAML_BLOCK_MAPPING_STYLE);
  char buf[64];
  ypair(&d, root, "source", ystr(&d, p->source));
  ypair(&d, root, "config", ystr(&d, p->config));
  ypair(&d, root, "dir", ystr(&d, p->dir));
  ypair(&d, root, "method", ystr(&d, p->method == SWEEP_RANDOM ? "random" : "grid"));
  if (p->method == SWEEP_RANDOM) {
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)p->seed);
    ypair(&d, root, "seed", ystr(&d, buf));
  }
  int fixed = yaml_document_add_sequence(&d, NULL, YAML_BLOCK_SEQUENCE_STYLE);
  for (int i = 0; i < p->n_fixed; i++) yaml_document_append_sequence_item(&d, fixed, ystr(&d, p->fixed[i]));
  ypair(&d, root, "fixed", fixed);
  int trials = yaml_document_add_sequence(&d, NULL, YAML_BLOCK_SEQUENCE_STYLE);
  for (int t = 0; t < p->n_trials; t++) {
    int m = yaml_document_add_mapping(&d, NULL, YAML_BLOCK_MAPPING_STYLE);
    snprintf(buf, sizeof buf, "%d", t + 1);
    ypair(&d, m, "trial", ystr(&d, buf));
    ypair(&d, m, "folder", ystr(&d, p->trials[t].name));
    int set = yaml_document_add_sequence(&d, NULL, YAML_FLOW_SEQUENCE_STYLE);
    for (int i = 0; i < p->trials[t].n; i++) yaml_document_append_sequence_item(&d, set, ystr(&d, p->trials[t].set[i]));
    ypair(&d, m, "overrides", set);
    yaml_document_append_sequence_item(&d, trials, m);
  }
  ypair(&d, root, "trials", trials);
  atomic_file a;
  if (!atomic_open(&a, path, e)) {
    yaml_document_delete(&d);
    return -1;
  }
  fprintf(a.f, "# The expanded trials of this sweep (written by epee-train; one run folder per trial).\n");
  yaml_emitter_t em;
  if (!yaml_emitter_initialize(&em)) epee_fatal("libyaml ran out of memory");
  yaml_emitter_set_output_file(&em, a.f);
  yaml_emitter_set_unicode(&em, 1);
  yaml_emitter_set_width(&em, 120);
  int ok = yaml_emitter_open(&em) && yaml_emitter_dump(&em, &d) && yaml_emitter_close(&em) && yaml_emitter_flush(&em);
  yaml_emitter_delete(&em); /* dump deleted the document */
  if (!ok) {
    atomic_abort(&a);
    return epee_errf(e, "%s: cannot write", path);
  }
  return atomic_commit(&a, e);
}

void sweep_plan_free(sweep_plan *p) {
  free(p->config), free(p->dir), free(p->source);
  free_strings(p->fixed, p->n_fixed);
  free_strings(p->fixed_where, p->n_fixed);
  for (int i = 0; i < p->n_params; i++) {
    sweep_param *q = &p->params[i];
    free(q->key);
    free_strings(q->values, q->n);
    free_strings(q->where, q->kind == SWEEP_VALUES ? q->n : 1);
  }
  free(p->params);
  for (int t = 0; t < p->n_trials; t++) {
    free(p->trials[t].name);
    free_strings(p->trials[t].set, p->trials[t].n);
    free(p->trials[t].where);
  }
  free(p->trials);
  memset(p, 0, sizeof *p);
}
