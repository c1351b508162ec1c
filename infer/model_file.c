#include "infer/model_file.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "core/json.h"
#include "data/utf8.h"

/* ---- weights ------------------------------------------------------------------------------------------ */

/* One float32 dataset with HDF5's Fletcher-32 filter. Chunks of whole rows up to 256 MB (a chunk must stay
 * under 4 GB); a tiny tensor is one chunk. */
static int write_checked(hid_t f, const char *name, const tensor *t, epee_err *e) {
  hsize_t dims[EPEE_MAX_DIMS], chunk[EPEE_MAX_DIMS];
  size_t row_bytes = sizeof(float);
  for (int i = 0; i < t->ndim; i++) {
    dims[i] = chunk[i] = (hsize_t)t->shape[i];
    if (i > 0) row_bytes *= (size_t)t->shape[i];
  }
  hsize_t rows = ((size_t)256 << 20) / row_bytes;
  if (rows < 1) rows = 1;
  if (chunk[0] > rows) chunk[0] = rows;
  hid_t sp = H5Screate_simple(t->ndim, dims, NULL);
  hid_t lp = H5Pcreate(H5P_LINK_CREATE), dp = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_create_intermediate_group(lp, 1);
  int ok = H5Pset_chunk(dp, t->ndim, chunk) >= 0 && H5Pset_fletcher32(dp) >= 0;
  hid_t ds = ok ? H5Dcreate2(f, name, H5T_IEEE_F32LE, sp, lp, dp, H5P_DEFAULT) : -1;
  ok = ds >= 0 && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->data) >= 0;
  if (ds >= 0) H5Dclose(ds);
  H5Pclose(dp), H5Pclose(lp), H5Sclose(sp);
  return ok ? 0 : epee_errf(e, "writing dataset '%s' failed (disk full?)", name);
}

int weights_write(hid_t f, const param_store *ps, const char *group, epee_err *e) {
  char name[512];
  for (int i = 0; i < ps->n; i++) {
    snprintf(name, sizeof name, "%s/%s", group, ps->t[i]->name);
    if (write_checked(f, name, ps->t[i], e)) return -1;
  }
  return 0;
}

int weights_read(hid_t f, const char *file, const param_store *ps, const char *group, epee_err *e) {
  char name[512];
  for (int i = 0; i < ps->n; i++) {
    const tensor *t = ps->t[i];
    snprintf(name, sizeof name, "%s/%s", group, t->name);
    if (h5_read_floats(f, file, name, t->data, t->ndim, t->shape, e)) return -1;
  }
  return 0;
}

/* ---- the JSON attributes, through jansson (core/json.h) --------------------------------------------------- */

typedef struct {
  const char *where; /* "FILE: attribute 'NAME'", for messages */
  json_t *o;
} jobj;

static int jobj_parse(jobj *o, const char *where, const char *s, epee_err *e) {
  *o = (jobj){.where = where, .o = epee_json_parse(s, strlen(s), where, 1, e)};
  if (o->o && !json_is_object(o->o)) {
    json_decref(o->o);
    o->o = NULL;
    epee_errf(e, "%s: expected a JSON object", where);
  }
  return o->o ? 0 : -1;
}

/* key's value; NULL when absent or null */
static const json_t *jobj_get(const jobj *o, const char *key) {
  const json_t *v = json_object_get(o->o, key);
  return json_is_null(v) ? NULL : v;
}

/* A value for a message: 'its text' (a string unquoted), or nothing. */
static const char *found(const json_t *v, char buf[80]) {
  char *t = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(9));
  const char *s = json_is_string(v) ? json_string_value(v) : t;
  snprintf(buf, 80, "%s%.60s%s", s ? "'" : "nothing", s ? s : "", s ? "'" : "");
  free(t);
  return buf;
}

static int jobj_int(const jobj *o, const char *key, long lo, long hi, int *out, epee_err *e) {
  const json_t *v = jobj_get(o, key);
  char fb[80];
  if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
    return epee_errf(e, "%s: \"%s\" must be an integer in [%ld, %ld], found %s", o->where, key, lo, hi, found(v, fb));
  *out = (int)json_integer_value(v);
  return 0;
}

/* required when dflt is NaN */
static int jobj_float(const jobj *o, const char *key, double lo, double hi, float dflt, float *out, epee_err *e) {
  const json_t *v = jobj_get(o, key);
  if (!v && !isnan(dflt)) {
    *out = dflt;
    return 0;
  }
  char fb[80];
  float x = json_is_number(v) ? (float)json_number_value(v) : NAN;
  if (!(x >= lo && x <= hi))
    return epee_errf(e, "%s: \"%s\" must be a number in [%g, %g], found %s", o->where, key, lo, hi, found(v, fb));
  *out = x;
  return 0;
}

/* true or false (1 and 0 too) */
static int jobj_bool(const jobj *o, const char *key, int *out, epee_err *e) {
  const json_t *v = jobj_get(o, key);
  char fb[80];
  if (json_is_boolean(v)) return *out = json_is_true(v), 0;
  if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
    return *out = (int)json_integer_value(v), 0;
  return epee_errf(e, "%s: \"%s\" must be true or false, found %s", o->where, key, found(v, fb));
}

/* ---- model_config: the fields the arch reads, driven by models/model.h's field table ----------------- */

char *model_config_to_json(const model *m) {
  json_t *o = json_object();
  for (int i = 0; i < MF_COUNT; i++) {
    const model_field *f = &model_fields[i];
    if (!(m->arch->fields & MF_BIT(i))) continue;
    const char *p = (const char *)&m->cfg + f->offset;
    json_object_set_new(o, f->name, f->type == MFT_FLOAT ? json_float(*(const float *)p)
                                    : f->type == MFT_BOOL ? json_boolean(*(const int *)p)
                                                          : json_integer(*(const int *)p));
  }
  return json_text(o, 0);
}

int model_config_from_json(const model_arch *arch, const char *json, const char *where, model_config *cfg,
                           epee_err *e) {
  memset(cfg, 0, sizeof *cfg);
  cfg->init_std = 0.02f;
  jobj o;
  if (jobj_parse(&o, where, json, e)) return -1;
  int rc = 0;
  for (int i = 0; i < MF_COUNT && !rc; i++) {
    const model_field *f = &model_fields[i];
    if (!(arch->fields & MF_BIT(i))) continue;
    char *p = (char *)cfg + f->offset;
    if (f->type == MFT_FLOAT)
      rc = jobj_float(&o, f->name, f->lo, f->hi, f->train_only ? *(float *)p : NAN, (float *)p, e);
    else if (f->type == MFT_BOOL)
      rc = jobj_bool(&o, f->name, (int *)p, e);
    else
      rc = jobj_int(&o, f->name, (long)f->lo, (long)f->hi, (int *)p, e);
  }
  if (!rc && cfg->hidden % cfg->heads)
    rc = epee_errf(e, "%s: hidden %d is not a multiple of heads %d", where, cfg->hidden, cfg->heads);
  json_decref(o.o);
  return rc ? -1 : 0;
}

/* ---- content checksum ---------------------------------------------------------------------------------
 * Weights and tokenizer files carry HDF5 checksums, but string data (attribute texts, labels) sits in HDF5's
 * global heap, which has none. So the writer stores FNV-1a 64 over every string the reader interprets, and the
 * reader refuses a file whose strings no longer match. A file edited on purpose (h5py) can drop the attribute,
 * which skips the check. */

static uint64_t fnv1a(uint64_t h, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s;; p++) { /* the terminating 0 separates strings */
    h = (h ^ *p) * 0x100000001b3ull;
    if (!*p) return h;
  }
}

enum { A_ARCH, A_MODEL, A_INPUT, A_POLICY, A_METRICS, A_TRAIN, N_ATTRS };
static const char *const attr_names[N_ATTRS] = {"arch", "model_config", "tokenizer_config", "policy", "metrics",
                                               "train_config"};
/* A_INPUT is how inputs become tensors: a tokenizer, or an image preprocessing */
static const char *attr_name(const model_arch *a, int i) {
  return i == A_INPUT && a->input == MODEL_INPUT_IMAGE ? "image_config" : attr_names[i];
}

static uint64_t content_hash(char *const *attrs, char *const *labels, int n_labels) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < N_ATTRS; i++) h = fnv1a(h, attrs[i]);
  for (int i = 0; i < n_labels; i++) h = fnv1a(h, labels[i]);
  return h;
}

#define CHECKSUM_FMT "fnv1a64:%016llx"

/* ---- write -------------------------------------------------------------------------------------------- */

#define T_LO 1e-3 /* the range of a stored temperature */
#define T_HI 1e3

static int check_policy(const char *path, const model *m, const model_meta *meta, epee_err *e) {
  for (int l = 0; m->temperature && l < m->n_layers; l++)
    if (!(m->temperature[l] >= T_LO && m->temperature[l] <= T_HI))
      return epee_errf(e, "%s: not written: temperature of exit %d is %g (expected [%g, %g])", path, l + 1,
                       (double)m->temperature[l], T_LO, T_HI);
  return epee_policy_validate(&meta->policy, path, e);
}

json_t *model_policy_json(const model *m, const model_meta *meta) {
  json_t *o = json_object();
  json_object_set_new(o, "name", json_string(epee_policy_name(meta->policy.kind)));
  json_object_set_new(o, "tau", json_float(meta->policy.tau));
  json_object_set_new(o, "patience", json_integer(meta->policy.patience));
  if (m->temperature) json_object_set_new(o, "temperature", json_floats(m->temperature, m->n_layers));
  return o;
}

static int check_meta(const char *path, const model *m, const model_meta *meta, epee_err *e) {
  if (meta->n_labels != m->n_labels)
    return epee_errf(e, "%s: not written: %d label names for %d classes", path, meta->n_labels, m->n_labels);
  if (m->arch->input == MODEL_INPUT_IMAGE) {
    for (int c = 0; c < m->cfg.channels; c++)
      if (!(isfinite(meta->norm.mean[c]) && meta->norm.std[c] > 0 && isfinite(meta->norm.std[c])))
        return epee_errf(e, "%s: not written: image mean/std of channel %d are %g/%g (expected finite, std > 0)",
                         path, c, meta->norm.mean[c], meta->norm.std[c]);
    return check_policy(path, m, meta, e);
  }
  const tokenizer *t = meta->tok;
  char kinds[128];
  if (t && !model_arch_takes_tokenizer(m->arch, t->kind->name, kinds, sizeof kinds))
    return epee_errf(e, "%s: not written: arch %s takes a %s tokenizer, not %s", path, m->arch->name, kinds,
                     t->kind->name);
  if (!t || t->vocab_size > m->cfg.vocab)
    return epee_errf(e, "%s: not written: a tokenizer of %d ids for a vocab of %d", path, t ? t->vocab_size : 0,
                     m->cfg.vocab);
  if (meta->max_length < tok_min_len(t, 0) || meta->max_length > m->cfg.max_position)
    return epee_errf(e, "%s: not written: tokenizer max_length %d outside [%d, max_position %d]", path,
                     meta->max_length, tok_min_len(t, 0), m->cfg.max_position);
  return check_policy(path, m, meta, e);
}

/* image_config {"image_mean": [...], "image_std": [...], "resize": "..."} with one value per channel, or
 * tokenizer_config {"type": ..., "lowercase": ..., "max_length": ...} */
static char *input_config_json(const model *m, const model_meta *meta) {
  json_t *o = json_object();
  if (m->arch->input == MODEL_INPUT_IMAGE) {
    json_object_set_new(o, "image_mean", json_floats(meta->norm.mean, m->cfg.channels));
    json_object_set_new(o, "image_std", json_floats(meta->norm.std, m->cfg.channels));
    json_object_set_new(o, "resize", json_string(meta->resize ? "bilinear" : "refuse"));
  } else {
    json_object_set_new(o, "type", json_string(meta->tok->kind->name));
    json_object_set_new(o, "lowercase", json_boolean(meta->tok->lowercase));
    json_object_set_new(o, "max_length", json_integer(meta->max_length));
  }
  return json_text(o, 0);
}

int model_file_write(const char *path, const model *m, const model_meta *meta, epee_err *e) {
  char tmp[4200], sum[32], name[128];
  if (check_meta(path, m, meta, e)) return -1;
  char *tc = input_config_json(m, meta), *pc = json_text(model_policy_json(m, meta), 0), *mc = model_config_to_json(m);
  char *attrs[N_ATTRS] = {(char *)m->arch->name, mc, tc, pc, meta->metrics_json ? meta->metrics_json : "{}",
                          meta->train_config_json ? meta->train_config_json : "{}"};
  snprintf(sum, sizeof sum, CHECKSUM_FMT, (unsigned long long)content_hash(attrs, meta->labels, meta->n_labels));
  hid_t f = h5_create_tmp(path, tmp, sizeof tmp, e);
  if (f < 0) {
    free(mc), free(pc), free(tc);
    return -1;
  }
  /* objects from here on get version-2 headers, which carry checksums (readable by HDF5 >= 1.8 / h5py) */
  H5Fset_libver_bounds(f, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  int ok = h5_write_attr_str(f, "format", EPEE_MODEL_FORMAT, e) == 0 &&
           h5_write_attr_str(f, "format_version", EPEE_MODEL_VERSION, e) == 0;
  for (int i = 0; ok && i < N_ATTRS; i++) ok = h5_write_attr_str(f, attr_name(m->arch, i), attrs[i], e) == 0;
  ok = ok && h5_write_attr_str(f, "checksum", sum, e) == 0 &&
       h5_write_strings(f, "labels", meta->labels, meta->n_labels, e) == 0;
  for (int i = 0; ok && meta->tok && i < meta->tok->kind->n_assets; i++) {
    const tok_asset *a = &meta->tok->assets[i];
    snprintf(name, sizeof name, "tokenizer/%s", a->name);
    ok = h5_write_bytes(f, name, a->data, a->len, e) == 0;
  }
  ok = ok && weights_write(f, &m->ps, "weights", e) == 0;
  free(mc), free(pc), free(tc);
  if (!ok) { /* the helpers name the object, not the file */
    char msg[EPEE_ERR_LEN];
    snprintf(msg, sizeof msg, "%s", e->msg);
    epee_errf(e, "%s: %s", path, msg);
  }
  return h5_commit(f, tmp, path, ok, e);
}

/* ---- read --------------------------------------------------------------------------------------------- */

void model_meta_free(model_meta *meta) {
  h5_free_strings(meta->labels, meta->n_labels);
  tok_free(meta->tok);
  free(meta->metrics_json);
  free(meta->train_config_json);
  memset(meta, 0, sizeof *meta);
}

/* optional opaque attribute: absent -> "{}" */
static char *read_opaque(hid_t f, const char *path, const char *name, epee_err *e) {
  if (H5Aexists(f, name) <= 0) return strdup("{}");
  return h5_read_attr_str(f, path, name, e);
}

/* tokenizer_config and the tokenizer's files: the kind must be one the arch accepts */
static int read_tokenizer(hid_t f, const char *path, size_t file_size, const model_arch *arch, const model *m,
                          const char *tc, model_meta *meta, epee_err *e) {
  char tc_where[600], where[TOK_MAX_ASSETS][600], name[128];
  snprintf(tc_where, sizeof tc_where, "%s: attribute 'tokenizer_config'", path);
  jobj o;
  if (jobj_parse(&o, tc_where, tc, e)) return -1;
  const json_t *type = jobj_get(&o, "type");
  const tok_kind *k = tok_find_kind(json_string_value(type));
  int lower = 0, rc = 0;
  char kinds[128], fb[80];
  if (!k || !model_arch_takes_tokenizer(arch, k->name, kinds, sizeof kinds))
    rc = epee_errf(e, "%s: \"type\" %s is not a tokenizer of arch %s (expected %s)", tc_where, found(type, fb),
                   arch->name, kinds);
  if (!rc) rc = jobj_bool(&o, "lowercase", &lower, e) || jobj_int(&o, "max_length", 1, m->cfg.max_position,
                                                                 &meta->max_length, e);
  json_decref(o.o);
  if (rc) return -1;
  tok_asset a[TOK_MAX_ASSETS] = {{0}};
  const char *names[TOK_MAX_ASSETS];
  int i = 0;
  for (; i < k->n_assets; i++) {
    snprintf(name, sizeof name, "tokenizer/%s", k->asset_names[i]);
    snprintf(where[i], sizeof where[i], "%s: dataset '%s'", path, name);
    names[i] = where[i];
    a[i].name = k->asset_names[i];
    if (h5_read_bytes(f, path, name, file_size, &a[i].data, &a[i].len, e)) break;
  }
  if (i == k->n_assets) meta->tok = tok_load(k, a, names, lower, e);
  for (int j = 0; j < k->n_assets; j++) free(a[j].data);
  if (!meta->tok) return -1;
  if (meta->tok->vocab_size > m->cfg.vocab)
    return epee_errf(e, "%s: the %s tokenizer has %d ids but model_config says vocab %d", path, k->name,
                     meta->tok->vocab_size, m->cfg.vocab);
  if (meta->max_length < tok_min_len(meta->tok, 0))
    return epee_errf(e, "%s: \"max_length\" %d leaves no room for the %s tokenizer's specials (at least %d)", tc_where,
                     meta->max_length, k->name, tok_min_len(meta->tok, 0));
  return 0;
}

/* image_config: one finite mean and positive std per channel, and the resize rule */
static int read_image_config(const char *path, const model *m, const char *ic, model_meta *meta, epee_err *e) {
  char where[600];
  snprintf(where, sizeof where, "%s: attribute 'image_config'", path);
  jobj o;
  if (jobj_parse(&o, where, ic, e)) return -1;
  int rc = 0, C = m->cfg.channels;
  for (int i = 0; !rc && i < 2; i++) {
    const char *key = i ? "image_std" : "image_mean";
    const json_t *a = jobj_get(&o, key);
    if (!json_is_array(a) || json_array_size(a) != (size_t)C)
      rc = epee_errf(e, "%s: \"%s\" must be an array of %d numbers (model_config channels)", where, key, C);
    for (int c = 0; !rc && c < C; c++) {
      const json_t *x = json_array_get(a, (size_t)c);
      double v = json_is_number(x) ? json_number_value(x) : NAN;
      if (!(isfinite(v) && fabs(v) < 1e6 && (i == 0 || v > 0)))
        rc = epee_errf(e, "%s: \"%s\"[%d] must be a finite number%s", where, key, c, i ? " above 0" : "");
      else
        (i ? meta->norm.std : meta->norm.mean)[c] = (float)v;
    }
  }
  const char *rs = rc ? NULL : json_string_value(jobj_get(&o, "resize"));
  if (!rc && !(rs && (!strcmp(rs, "refuse") || !strcmp(rs, "bilinear"))))
    rc = epee_errf(e, "%s: \"resize\" must be \"refuse\" or \"bilinear\"", where);
  if (!rc) meta->resize = !strcmp(rs, "bilinear");
  meta->max_length = model_max_tokens(m); /* what the engine sizes for: every image is this many tokens */
  json_decref(o.o);
  return rc ? -1 : 0;
}

/* policy, and the temperatures of the L exits if given (*temperature malloc'ed, else NULL; files before
 * temperature scaling have none and read as before). */
static int read_policy(const char *path, const char *pc, int L, model_meta *meta, float **temperature, epee_err *e) {
  char where[600], fb[80];
  snprintf(where, sizeof where, "%s: attribute 'policy'", path);
  *temperature = NULL;
  jobj o;
  if (jobj_parse(&o, where, pc, e)) return -1;
  const json_t *name = jobj_get(&o, "name"), *tau = jobj_get(&o, "tau"), *pat = jobj_get(&o, "patience"),
               *temp = jobj_get(&o, "temperature");
  int rc = 0;
  if (!json_is_string(name) || epee_policy_parse(json_string_value(name), &meta->policy.kind))
    rc = epee_errf(e, "%s: \"name\" must be none, entropy, patience, epee or pcee, found %s", where, found(name, fb));
  else if (!json_is_number(tau) || !(json_number_value(tau) >= 0 && json_number_value(tau) <= FLT_MAX))
    rc = epee_errf(e, "%s: \"tau\" must be a finite number >= 0, found %s", where, found(tau, fb));
  else if (!json_is_integer(pat) || json_integer_value(pat) < 0 || json_integer_value(pat) > (1 << 20))
    rc = epee_errf(e, "%s: \"patience\" must be an integer in [0, %d], found %s", where, 1 << 20, found(pat, fb));
  else if (temp && (!json_is_array(temp) || json_array_size(temp) != (size_t)L))
    rc = epee_errf(e, "%s: \"temperature\" must be an array of %d numbers (one per exit)", where, L);
  if (!rc) {
    meta->policy.tau = (float)json_number_value(tau);
    meta->policy.patience = (int)json_integer_value(pat);
    rc = epee_policy_validate(&meta->policy, where, e);
  }
  if (!rc && temp) {
    *temperature = epee_malloc(sizeof(float) * (size_t)L);
    for (int l = 0; !rc && l < L; l++) {
      const json_t *x = json_array_get(temp, (size_t)l);
      double v = json_is_number(x) ? json_number_value(x) : NAN;
      if (!(v >= T_LO && v <= T_HI))
        rc = epee_errf(e, "%s: \"temperature\"[%d] must be a number in [%g, %g], found %s", where, l, T_LO, T_HI,
                       found(x, fb));
      (*temperature)[l] = (float)v;
    }
    if (rc) free(*temperature), *temperature = NULL;
  }
  json_decref(o.o);
  return rc ? -1 : 0;
}

/* A diverged run exported by mistake must not serve NaNs. */
static int check_finite(const char *path, const param_store *ps, epee_err *e) {
  for (int i = 0; i < ps->n; i++) {
    const tensor *t = ps->t[i];
    for (int64_t k = 0; k < t->n; k++)
      if (!isfinite(t->data[k]))
        return epee_errf(e, "%s: dataset 'weights/%s': element %ld is %g (expected finite weights)", path, t->name,
                         (long)k, (double)t->data[k]);
  }
  return 0;
}

static int check_labels(const char *path, const model_meta *meta, int n_classes, epee_err *e) {
  if (meta->n_labels != n_classes)
    return epee_errf(e, "%s: dataset 'labels' has %d names but the exits have %d classes (model_config num_labels)",
                     path, meta->n_labels, n_classes);
  for (int i = 0; i < meta->n_labels; i++) { /* predictions (JSON) name their label: distinct UTF-8 names */
    int dup = 0;
    for (int k = 0; k < i && !dup; k++) dup = strcmp(meta->labels[k], meta->labels[i]) == 0;
    int bad = utf8_first_invalid(meta->labels[i], strlen(meta->labels[i])) >= 0;
    if (!meta->labels[i][0] || dup || bad)
      return epee_errf(e, "%s: dataset 'labels': name %d is %s; expected distinct, non-empty UTF-8 names", path, i,
                       dup ? "a duplicate" : bad ? "not valid UTF-8" : "empty");
  }
  return 0;
}

int model_file_read(const char *path, model *m, model_meta *meta, epee_err *e) {
  memset(meta, 0, sizeof *meta);
  memset(m, 0, sizeof *m);
  hid_t f = h5_open_sealed(path, e);
  if (f < 0) return -1;
  int rc = -1;
  char *fmt = NULL, *ver = NULL, *attrs[N_ATTRS] = {0}, where[600];
  float *temperature = NULL; /* the model's, once model_create made it */
  struct stat st;
  size_t file_size = stat(path, &st) == 0 ? (size_t)st.st_size : 0;
  if (H5Aexists(f, "format") <= 0) {
    epee_errf(e, "%s: not an EPEE-C model file (no 'format' attribute)", path);
    goto done;
  }
  if (!(fmt = h5_read_attr_str(f, path, "format", e))) goto done;
  if (strcmp(fmt, EPEE_MODEL_FORMAT) != 0) {
    epee_errf(e, "%s: format '%s' is not '%s'", path, fmt, EPEE_MODEL_FORMAT);
    goto done;
  }
  if (!(ver = h5_read_attr_str(f, path, "format_version", e))) goto done;
  if (strcmp(ver, EPEE_MODEL_VERSION) != 0) {
    epee_errf(e, "%s: format_version '%s' is not supported (this build reads version %s; re-export the run with "
                 "epee-train --calibrate RUN_DIR)", path, ver, EPEE_MODEL_VERSION);
    goto done;
  }
  if (!(attrs[A_ARCH] = h5_read_attr_str(f, path, attr_names[A_ARCH], e))) goto done;
  const model_arch *arch = model_find_arch(attrs[A_ARCH]);
  if (!arch) {
    char known[128] = "";
    for (int i = 0; model_arch_names[i]; i++)
      snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", model_arch_names[i]);
    epee_errf(e, "%s: arch '%s' is not supported by this build (%s)", path, attrs[A_ARCH], known);
    goto done;
  }
  for (int i = 1; i < N_ATTRS; i++)
    if (!(attrs[i] = i >= A_METRICS ? read_opaque(f, path, attr_names[i], e)
                                    : h5_read_attr_str(f, path, attr_name(arch, i), e)))
      goto done;
  model_config cfg;
  snprintf(where, sizeof where, "%s: attribute 'model_config'", path);
  if (model_config_from_json(arch, attrs[A_MODEL], where, &cfg, e) ||
      read_policy(path, attrs[A_POLICY], cfg.layers, meta, &temperature, e))
    goto done;
  if (h5_read_strings(f, path, "labels", &meta->labels, &meta->n_labels, e) ||
      check_labels(path, meta, cfg.num_labels, e))
    goto done;
  epee_err me;
  /* the file's size bounds the weights it can hold: refuse a config describing more before allocating */
  if (model_create(m, arch, &cfg, PARAMS_SERVE, (int64_t)(file_size / sizeof(float)), &me)) {
    epee_errf(e, "%s: %s", where, me.msg);
    goto done;
  }
  m->temperature = temperature;
  temperature = NULL;
  if (arch->input == MODEL_INPUT_IMAGE ? read_image_config(path, m, attrs[A_INPUT], meta, e)
                                      : read_tokenizer(f, path, file_size, arch, m, attrs[A_INPUT], meta, e))
    goto done;
  if (weights_read(f, path, &m->ps, "weights", e) || check_finite(path, &m->ps, e)) goto done;
  if (H5Aexists(f, "checksum") > 0) {
    char want[32], *got = h5_read_attr_str(f, path, "checksum", e);
    snprintf(want, sizeof want, CHECKSUM_FMT, (unsigned long long)content_hash(attrs, meta->labels, meta->n_labels));
    int same = got && strcmp(got, want) == 0;
    if (got && !same)
      epee_errf(e, "%s: attribute 'checksum' %s does not match the file's strings (%s): corrupted, or edited "
                   "without deleting the checksum", path, got, want);
    free(got);
    if (!same) goto done;
  }
  meta->metrics_json = strdup(attrs[A_METRICS]);
  meta->train_config_json = strdup(attrs[A_TRAIN]);
  rc = 0;
done:
  free(fmt), free(ver), free(temperature);
  for (int i = 0; i < N_ATTRS; i++) free(attrs[i]);
  H5Fclose(f);
  if (rc) {
    model_free(m);
    model_meta_free(meta);
  }
  return rc;
}
