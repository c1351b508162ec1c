#include "infer/model_file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "data/json_flat.h"
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

/* ---- the JSON attributes: flat objects, written with printf, read with data/json_flat --------------- */

typedef struct {
  const char *path, *attr; /* for messages */
  json_field *f;
  int n;
} jobj;

static int jobj_parse(jobj *o, const char *path, const char *attr, const char *s, epee_err *e) {
  *o = (jobj){.path = path, .attr = attr};
  size_t col = 0, len = strlen(s);
  long bad = utf8_first_invalid(s, len);
  if (bad >= 0) return epee_errf(e, "%s: attribute '%s': invalid UTF-8 at byte %ld", path, attr, bad + 1);
  epee_err je;
  int n = json_parse_flat(s, len, &o->f, &col, &je);
  if (n < 0) return epee_errf(e, "%s: attribute '%s': column %zu: %s", path, attr, col, je.msg);
  o->n = n;
  return 0;
}

static const char *jobj_get(const jobj *o, const char *key) {
  for (int i = 0; i < o->n; i++)
    if (strcmp(o->f[i].key, key) == 0) return o->f[i].value;
  return NULL;
}

static int jobj_int(const jobj *o, const char *key, long lo, long hi, int *out, epee_err *e) {
  const char *v = jobj_get(o, key);
  char *end = NULL;
  long x = v ? strtol(v, &end, 10) : 0;
  if (!v || end == v || *end || x < lo || x > hi)
    return epee_errf(e, "%s: attribute '%s': \"%s\" must be an integer in [%ld, %ld], found %s%s%s", o->path, o->attr,
                     key, lo, hi, v ? "'" : "nothing", v ? v : "", v ? "'" : "");
  *out = (int)x;
  return 0;
}

/* required when dflt is NaN */
static int jobj_float(const jobj *o, const char *key, double lo, double hi, float dflt, float *out, epee_err *e) {
  const char *v = jobj_get(o, key);
  if (!v && !isnan(dflt)) {
    *out = dflt;
    return 0;
  }
  char *end = NULL;
  float x = v ? strtof(v, &end) : NAN; /* strtof, as float_str checks: no double rounding */
  if (!v || end == v || *end || !(x >= lo && x <= hi))
    return epee_errf(e, "%s: attribute '%s': \"%s\" must be a number in [%g, %g], found %s%s%s", o->path, o->attr, key,
                     lo, hi, v ? "'" : "nothing", v ? v : "", v ? "'" : "");
  *out = x;
  return 0;
}

static int jobj_bool(const jobj *o, const char *key, int *out, epee_err *e) {
  const char *v = jobj_get(o, key);
  if (v && (!strcmp(v, "true") || !strcmp(v, "1"))) return *out = 1, 0;
  if (v && (!strcmp(v, "false") || !strcmp(v, "0"))) return *out = 0, 0;
  return epee_errf(e, "%s: attribute '%s': \"%s\" must be true or false, found %s%s%s", o->path, o->attr, key,
                   v ? "'" : "nothing", v ? v : "", v ? "'" : "");
}

static void jobj_free(jobj *o) {
  json_fields_free(o->f, o->n);
  o->f = NULL;
  o->n = 0;
}

#define BERT_INT_FIELDS(X)                                                                                        \
  X(vocab, 1, 1L << 24) X(hidden, 1, 1 << 16) X(layers, 1, 1024) X(heads, 1, 1024) X(intermediate, 1, 1 << 18) \
  X(max_position, 1, 1 << 20) X(type_vocab, 1, 1 << 16) X(num_labels, 2, 1 << 20)
#define BERT_FLOAT_FIELDS(X) \
  X(hidden_dropout) X(attention_dropout) X(exit_dropout) X(layer_norm_eps) X(init_std)

/* The shortest decimal that reads back as exactly x ("0.03", not "0.0299999993"): exact round trip, and
 * readable for whoever opens the file with h5py. */
static const char *float_str(float x, char buf[32]) {
  for (int prec = 6; prec < 9; prec++) {
    snprintf(buf, 32, "%.*g", prec, (double)x);
    if (strtof(buf, NULL) == x) return buf;
  }
  snprintf(buf, 32, "%.9g", (double)x);
  return buf;
}

static void bert_config_json(const bert_config *b, char *buf, size_t len) {
  char fb[32];
  int k = snprintf(buf, len, "{");
#define W_INT(f, lo, hi) k += snprintf(buf + k, len - (size_t)k, "\"" #f "\":%d,", b->f);
#define W_FLOAT(f) k += snprintf(buf + k, len - (size_t)k, "\"" #f "\":%s,", float_str(b->f, fb));
  BERT_INT_FIELDS(W_INT)
  BERT_FLOAT_FIELDS(W_FLOAT)
#undef W_INT
#undef W_FLOAT
  buf[k - 1] = '}'; /* the last comma */
}

/* The inference-relevant fields are required; dropouts and init_std (training only) default to 0 / 0.02. */
static int bert_config_parse(const jobj *o, bert_config *b, epee_err *e) {
#define R_INT(f, lo, hi) \
  if (jobj_int(o, #f, (lo), (hi), &b->f, e)) return -1;
  BERT_INT_FIELDS(R_INT)
#undef R_INT
  if (jobj_float(o, "layer_norm_eps", 1e-30, 1.0, NAN, &b->layer_norm_eps, e) ||
      jobj_float(o, "hidden_dropout", 0, 1, 0, &b->hidden_dropout, e) ||
      jobj_float(o, "attention_dropout", 0, 1, 0, &b->attention_dropout, e) ||
      jobj_float(o, "exit_dropout", 0, 1, 0, &b->exit_dropout, e) ||
      jobj_float(o, "init_std", 0, 1e3, 0.02f, &b->init_std, e))
    return -1;
  if (b->hidden % b->heads)
    return epee_errf(e, "%s: attribute '%s': hidden %d is not a multiple of heads %d", o->path, o->attr, b->hidden,
                     b->heads);
  return 0;
}

/* ---- content checksum ---------------------------------------------------------------------------------
 * Weights carry HDF5 checksums, but string data (attribute texts, labels, vocabulary) sits in HDF5's global
 * heap, which has none. So the writer stores FNV-1a 64 over every string the reader interprets, and the
 * reader refuses a file whose strings no longer match: a corrupted vocabulary would otherwise tokenise
 * silently wrong. A file edited on purpose (h5py) can drop the attribute, which skips the check. */

static uint64_t fnv1a(uint64_t h, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s;; p++) { /* the terminating 0 separates strings */
    h = (h ^ *p) * 0x100000001b3ull;
    if (!*p) return h;
  }
}

static uint64_t content_hash(const char *arch, const char *mc, const char *tc, const char *pc, const char *metrics,
                             const char *train, char *const *labels, int n_labels, char *const *vocab, int n_vocab) {
  const char *attrs[] = {arch, mc, tc, pc, metrics, train};
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < 6; i++) h = fnv1a(h, attrs[i]);
  for (int i = 0; i < n_labels; i++) h = fnv1a(h, labels[i]);
  for (int i = 0; i < n_vocab; i++) h = fnv1a(h, vocab[i]);
  return h;
}

#define CHECKSUM_FMT "fnv1a64:%016llx"

/* ---- write -------------------------------------------------------------------------------------------- */

static int check_meta(const char *path, const model *m, const model_meta *meta, epee_err *e) {
  const bert_config *b = &meta->bert;
  if (!meta->arch || strcmp(meta->arch, "bert") != 0)
    return epee_errf(e, "%s: not written: arch '%s' is not supported (bert)", path,
                     meta->arch ? meta->arch : "(null)");
  if (b->layers != m->n_layers || b->num_labels != m->n_labels || b->hidden != m->hidden)
    return epee_errf(e, "%s: not written: model_config (layers %d, labels %d, hidden %d) does not describe the "
                        "model (%d, %d, %d)", path, b->layers, b->num_labels, b->hidden, m->n_layers, m->n_labels,
                     m->hidden);
  if (meta->n_labels != b->num_labels)
    return epee_errf(e, "%s: not written: %d label names for %d classes", path, meta->n_labels, b->num_labels);
  if (meta->n_vocab != b->vocab)
    return epee_errf(e, "%s: not written: %d vocabulary entries for a vocab of %d", path, meta->n_vocab, b->vocab);
  if (meta->max_length < 2 || meta->max_length > b->max_position)
    return epee_errf(e, "%s: not written: tokenizer max_length %d outside [2, max_position %d]", path,
                     meta->max_length, b->max_position);
  return epee_policy_validate(&meta->policy, path, e);
}

int model_file_write(const char *path, const model *m, const model_meta *meta, epee_err *e) {
  char tmp[4200], mc[1024], tc[256], pc[256];
  if (check_meta(path, m, meta, e)) return -1;
  bert_config_json(&meta->bert, mc, sizeof mc);
  snprintf(tc, sizeof tc, "{\"type\":\"wordpiece\",\"lowercase\":%s,\"max_length\":%d}",
           meta->lowercase ? "true" : "false", meta->max_length);
  char fb[32];
  snprintf(pc, sizeof pc, "{\"name\":\"%s\",\"tau\":%s,\"patience\":%d}", epee_policy_name(meta->policy.kind),
           float_str(meta->policy.tau, fb), meta->policy.patience);
  const char *metrics = meta->metrics_json ? meta->metrics_json : "{}";
  const char *train = meta->train_config_json ? meta->train_config_json : "{}";
  char sum[32];
  snprintf(sum, sizeof sum, CHECKSUM_FMT, (unsigned long long)content_hash(meta->arch, mc, tc, pc, metrics, train,
                                                                           meta->labels, meta->n_labels, meta->vocab,
                                                                           meta->n_vocab));
  hid_t f = h5_create_tmp(path, tmp, sizeof tmp, e);
  if (f < 0) return -1;
  /* objects from here on get version-2 headers, which carry checksums (readable by HDF5 >= 1.8 / h5py) */
  H5Fset_libver_bounds(f, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  int ok = h5_write_attr_str(f, "format", EPEE_MODEL_FORMAT, e) == 0 &&
           h5_write_attr_str(f, "format_version", EPEE_MODEL_VERSION, e) == 0 &&
           h5_write_attr_str(f, "arch", meta->arch, e) == 0 && h5_write_attr_str(f, "model_config", mc, e) == 0 &&
           h5_write_attr_str(f, "tokenizer_config", tc, e) == 0 && h5_write_attr_str(f, "policy", pc, e) == 0 &&
           h5_write_attr_str(f, "metrics", metrics, e) == 0 && h5_write_attr_str(f, "train_config", train, e) == 0 &&
           h5_write_attr_str(f, "checksum", sum, e) == 0 &&
           h5_write_strings(f, "labels", meta->labels, meta->n_labels, e) == 0 &&
           h5_write_strings(f, "tokenizer/vocab", meta->vocab, meta->n_vocab, e) == 0 &&
           weights_write(f, &m->ps, "weights", e) == 0;
  if (!ok) { /* the helpers name the object, not the file */
    char msg[EPEE_ERR_LEN];
    snprintf(msg, sizeof msg, "%s", e->msg);
    epee_errf(e, "%s: %s", path, msg);
  }
  return h5_commit(f, tmp, path, ok, e);
}

/* ---- read --------------------------------------------------------------------------------------------- */

void model_meta_free(model_meta *meta) {
  free(meta->arch);
  h5_free_strings(meta->labels, meta->n_labels);
  h5_free_strings(meta->vocab, meta->n_vocab);
  free(meta->metrics_json);
  free(meta->train_config_json);
  memset(meta, 0, sizeof *meta);
}

wp_tokenizer *model_meta_tokenizer(const model_meta *meta, const char *path, epee_err *e) {
  size_t total = 0;
  for (int i = 0; i < meta->n_vocab; i++) { /* one piece per line: a line break would shift every id after it */
    if (strpbrk(meta->vocab[i], "\r\n")) {
      epee_errf(e, "%s: dataset 'tokenizer/vocab': entry %d contains a line break", path, i);
      return NULL;
    }
    total += strlen(meta->vocab[i]) + 1;
  }
  char *buf = epee_malloc(total + 1), *p = buf;
  for (int i = 0; i < meta->n_vocab; i++) {
    size_t k = strlen(meta->vocab[i]);
    memcpy(p, meta->vocab[i], k);
    p[k] = '\n';
    p += k + 1;
  }
  epee_err te;
  wp_tokenizer *t = wp_load_buffer(buf, total, &te);
  free(buf);
  if (!t) epee_errf(e, "%s: dataset 'tokenizer/vocab': %s", path, te.msg);
  return t;
}

/* optional opaque attribute: absent -> "{}" */
static char *read_opaque(hid_t f, const char *path, const char *name, epee_err *e) {
  if (H5Aexists(f, name) <= 0) return strdup("{}");
  return h5_read_attr_str(f, path, name, e);
}

static int parse_attrs(const char *path, const char *mc, const char *tc, const char *pc, model_meta *meta,
                       epee_err *e) {
  jobj o;
  if (jobj_parse(&o, path, "model_config", mc, e)) return -1;
  int rc = bert_config_parse(&o, &meta->bert, e);
  jobj_free(&o);
  if (rc || jobj_parse(&o, path, "tokenizer_config", tc, e)) return -1;
  const char *type = jobj_get(&o, "type");
  if (!type || strcmp(type, "wordpiece") != 0)
    rc = epee_errf(e, "%s: attribute 'tokenizer_config': \"type\" must be \"wordpiece\", found %s", path,
                   type ? type : "nothing");
  else
    rc = jobj_bool(&o, "lowercase", &meta->lowercase, e) ||
         jobj_int(&o, "max_length", 2, meta->bert.max_position, &meta->max_length, e);
  jobj_free(&o);
  if (rc || jobj_parse(&o, path, "policy", pc, e)) return -1;
  const char *name = jobj_get(&o, "name");
  char where[600];
  snprintf(where, sizeof where, "%s: attribute 'policy'", path);
  if (!name || epee_policy_parse(name, &meta->policy.kind))
    rc = epee_errf(e, "%s: \"name\" must be none, entropy, patience, epee or pcee, found %s", where,
                   name ? name : "nothing");
  else
    rc = jobj_float(&o, "tau", 0, INFINITY, 0, &meta->policy.tau, e) ||
         jobj_int(&o, "patience", 0, 1 << 20, &meta->policy.patience, e) ||
         epee_policy_validate(&meta->policy, where, e);
  jobj_free(&o);
  return rc ? -1 : 0;
}

/* Refuses a config whose weights cannot be in the file before allocating them: the dominant terms
 * (embeddings, attention and feed-forward matrices) are a lower bound on the float32 bytes stored. */
static int config_fits_file(const char *path, const bert_config *b, epee_err *e) {
  struct stat st;
  double D = b->hidden, floats = ((double)b->vocab + b->max_position + b->type_vocab) * D +
                                 (double)b->layers * (4.0 * D * D + 2.0 * D * b->intermediate) +
                                 (double)b->layers * b->num_labels * D; /* the exits */
  if (stat(path, &st) == 0 && 4.0 * floats > (double)st.st_size)
    return epee_errf(e, "%s: attribute 'model_config' describes at least %.0f weights (%.1f MB) but the file has "
                        "%.1f MB (truncated, or the config does not belong to these weights)",
                     path, floats, 4e-6 * floats, 1e-6 * (double)st.st_size);
  return 0;
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

int model_file_read(const char *path, model *m, model_meta *meta, epee_err *e) {
  memset(meta, 0, sizeof *meta);
  memset(m, 0, sizeof *m);
  hid_t f = h5_open_sealed(path, e);
  if (f < 0) return -1;
  int rc = -1;
  char *fmt = NULL, *ver = NULL, *mc = NULL, *tc = NULL, *pc = NULL;
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
    epee_errf(e, "%s: format_version '%s' is not supported (this build reads version %s)", path, ver,
              EPEE_MODEL_VERSION);
    goto done;
  }
  if (!(meta->arch = h5_read_attr_str(f, path, "arch", e))) goto done;
  if (strcmp(meta->arch, "bert") != 0) {
    epee_errf(e, "%s: arch '%s' is not supported by this build (bert)", path, meta->arch);
    goto done;
  }
  if (!(mc = h5_read_attr_str(f, path, "model_config", e)) ||
      !(tc = h5_read_attr_str(f, path, "tokenizer_config", e)) ||
      !(pc = h5_read_attr_str(f, path, "policy", e)) || parse_attrs(path, mc, tc, pc, meta, e) ||
      !(meta->metrics_json = read_opaque(f, path, "metrics", e)) ||
      !(meta->train_config_json = read_opaque(f, path, "train_config", e)))
    goto done;
  if (h5_read_strings(f, path, "labels", &meta->labels, &meta->n_labels, e) ||
      h5_read_strings(f, path, "tokenizer/vocab", &meta->vocab, &meta->n_vocab, e))
    goto done;
  if (meta->n_labels != meta->bert.num_labels) {
    epee_errf(e, "%s: dataset 'labels' has %d names but the exits have %d classes (model_config num_labels)", path,
              meta->n_labels, meta->bert.num_labels);
    goto done;
  }
  if (meta->n_vocab != meta->bert.vocab) {
    epee_errf(e, "%s: dataset 'tokenizer/vocab' has %d entries but model_config says vocab %d", path, meta->n_vocab,
              meta->bert.vocab);
    goto done;
  }
  for (int i = 0; i < meta->n_labels; i++) { /* predictions name their label: names must be distinct */
    int dup = 0;
    for (int k = 0; k < i && !dup; k++) dup = strcmp(meta->labels[k], meta->labels[i]) == 0;
    if (!meta->labels[i][0] || dup) {
      epee_errf(e, "%s: dataset 'labels': name %d is %s; expected distinct, non-empty names", path, i,
                dup ? "a duplicate" : "empty");
      goto done;
    }
  }
  epee_err be;
  if (config_fits_file(path, &meta->bert, e)) goto done;
  if (bert_create(m, &meta->bert, PARAMS_SERVE, &be)) {
    epee_errf(e, "%s: attribute 'model_config': %s", path, be.msg);
    goto done;
  }
  if (weights_read(f, path, &m->ps, "weights", e) || check_finite(path, &m->ps, e)) goto done;
  if (H5Aexists(f, "checksum") > 0) {
    char want[32], *got = h5_read_attr_str(f, path, "checksum", e);
    snprintf(want, sizeof want, CHECKSUM_FMT, (unsigned long long)content_hash(meta->arch, mc, tc, pc,
                                                                               meta->metrics_json,
                                                                               meta->train_config_json, meta->labels,
                                                                               meta->n_labels, meta->vocab,
                                                                               meta->n_vocab));
    int same = got && strcmp(got, want) == 0;
    if (got && !same)
      epee_errf(e, "%s: attribute 'checksum' %s does not match the file's strings (%s): corrupted, or edited "
                   "without deleting the checksum", path, got, want);
    free(got);
    if (!same) goto done;
  }
  rc = 0;
done:
  free(fmt), free(ver), free(mc), free(tc), free(pc);
  H5Fclose(f);
  if (rc) {
    if (m->impl) model_free(m);
    memset(m, 0, sizeof *m);
    model_meta_free(meta);
  }
  return rc;
}
