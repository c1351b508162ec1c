#include "infer/hf_folder.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/json.h"
#include "core/safetensors.h"
#include "data/readfile.h"

/* ---- reading a folder ---- */

static int is_dir(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}
static int is_file(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* dir/name parsed as JSON: NULL with *absent = 1 when the file does not exist, NULL with e set when it is not a
 * JSON object. */
static json_t *read_json(const char *dir, const char *name, int *absent, epee_err *e) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  *absent = !is_file(path);
  if (*absent) return NULL;
  size_t len;
  char *text = data_read_file(path, &len, e);
  if (!text) return NULL;
  json_t *j = epee_json_parse(text, len, path, 1, e);
  free(text);
  if (j && !json_is_object(j)) {
    json_decref(j);
    epee_errf(e, "%s: expected a JSON object", path);
    return NULL;
  }
  return j;
}

/* A list of 1 or 3 numbers in (lo, hi) into v; 0 values when absent. */
static int read_floats(const json_t *j, const char *key, const char *where, float lo, float hi, float *v, int *n,
                       epee_err *e) {
  const json_t *a = json_object_get(j, key);
  *n = 0;
  if (!a || json_is_null(a)) return 0;
  int k = json_is_array(a) ? (int)json_array_size(a) : -1;
  if (k != 1 && k != 3) return epee_errf(e, "%s: \"%s\": expected a list of 1 or 3 numbers", where, key);
  for (; *n < k; (*n)++) {
    const json_t *c = json_array_get(a, (size_t)*n);
    if (!json_is_number(c) || !(json_number_value(c) > lo && json_number_value(c) < hi))
      return epee_errf(e, "%s: \"%s\"[%d]: expected a number in (%g, %g)", where, key, *n, (double)lo, (double)hi);
    v[*n] = (float)json_number_value(c);
  }
  return 0;
}

/* tokenizer_config.json (do_lower_case) and preprocessor_config.json (image_mean, image_std, size) */
static int read_preprocessing(hf_source *s, epee_err *e) {
  int absent, rc = 0;
  char where[4200];
  json_t *t = read_json(s->dir, "tokenizer_config.json", &absent, e);
  if (!t && !absent) return -1;
  const json_t *lc = json_object_get(t, "do_lower_case");
  snprintf(where, sizeof where, "%s/tokenizer_config.json", s->dir);
  if (lc && !json_is_boolean(lc)) rc = epee_errf(e, "%s: \"do_lower_case\": expected true or false", where);
  s->lowercase = lc ? json_is_true(lc) : -1;
  json_decref(t);
  if (rc) return rc;
  json_t *p = read_json(s->dir, "preprocessor_config.json", &absent, e);
  if (!p) return absent ? 0 : -1;
  snprintf(where, sizeof where, "%s/preprocessor_config.json", s->dir);
  rc = read_floats(p, "image_mean", where, -1000, 1000, s->mean, &s->n_mean, e);
  if (!rc) rc = read_floats(p, "image_std", where, 0, 1000, s->std, &s->n_std, e);
  const json_t *size = json_object_get(p, "size");
  if (json_is_object(size)) { /* {"height": H, "width": W}: square images only */
    const json_t *h = json_object_get(size, "height"), *w = json_object_get(size, "width");
    if (!rc && (!json_is_number(h) || !json_is_number(w) || json_number_value(h) != json_number_value(w)))
      rc = epee_errf(e, "%s: \"size\": expected equal \"height\" and \"width\"", where);
    size = h;
  }
  if (!rc && size && !json_is_null(size)) {
    if (!json_is_number(size) || !(json_number_value(size) >= 1 && json_number_value(size) <= 16384))
      rc = epee_errf(e, "%s: \"size\": expected a number of pixels in [1, 16384]", where);
    else s->image_size = (int)json_number_value(size);
  }
  json_decref(p);
  return rc;
}

int hf_source_open(const char *path, hf_source *s, epee_err *e) {
  memset(s, 0, sizeof *s);
  s->lowercase = -1;
  if (!is_dir(path)) {
    size_t n = strlen(path);
    if (!is_file(path) || n < 12 || strcmp(path + n - 12, ".safetensors"))
      return epee_errf(e, "model.init: %s: expected a HuggingFace model folder (config.json, model.safetensors) or "
                          "a .safetensors file", path);
    snprintf(s->weights, sizeof s->weights, "%s", path);
    return 0;
  }
  snprintf(s->dir, sizeof s->dir, "%s", path);
  snprintf(s->weights, sizeof s->weights, "%s/model.safetensors", path);
  if (!is_file(s->weights)) {
    char bin[4200];
    snprintf(bin, sizeof bin, "%s/pytorch_model.bin", path);
    return epee_errf(e, "model.init: %s: no model.safetensors%s", path,
                     is_file(bin) ? " (only pytorch_model.bin, a pickle, which is not read: convert it with "
                                    "transformers' save_pretrained(DIR, safe_serialization=True))"
                                  : "");
  }
  int absent;
  json_t *cfg = read_json(path, "config.json", &absent, e);
  if (!cfg) return absent ? epee_errf(e, "model.init: %s: no config.json", path) : -1;
  char where[4200];
  snprintf(where, sizeof where, "%s/config.json", path);
  const char *mt = json_string_value(json_object_get(cfg, "model_type"));
  s->arch = model_find_hf_type(mt);
  int rc = 0;
  if (!s->arch) {
    char known[256] = "";
    for (int i = 0; model_arch_names[i]; i++)
      snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
               model_find_arch(model_arch_names[i])->hf_model_type);
    rc = epee_errf(e, "%s: \"model_type\" %s%.60s%s is not a backbone of this build (expected one of %s)", where,
                   mt ? "\"" : "", mt ? mt : "(missing)", mt ? "\"" : "", known);
  }
  if (!rc) rc = hf_config_read(s->arch, cfg, where, &s->cfg, &s->from_file, e);
  json_decref(cfg);
  return rc ? rc : read_preprocessing(s, e);
}

int hf_tokenizer_paths(const hf_source *s, const tok_kind *k, char paths[][4200], epee_err *e) {
  for (int i = 0; i < k->n_assets; i++) {
    snprintf(paths[i], 4200, "%s/%s", s->dir, k->asset_names[i]);
    if (!is_file(paths[i]))
      return epee_errf(e, "model.init: %s: no %s (the %s tokenizer's file: %s)", s->dir, k->asset_names[i], k->name,
                       k->asset_help);
  }
  return 0;
}

/* ---- weights ---- */

static void push(char ***v, int *n, const char *s) {
  *v = epee_realloc(*v, sizeof **v * (size_t)(*n + 1));
  (*v)[(*n)++] = strdup(s);
}

static void shape_text(int ndim, const int64_t *shape, char *out, size_t n) {
  size_t k = (size_t)snprintf(out, n, "[");
  for (int d = 0; d < ndim && k < n; d++) k += (size_t)snprintf(out + k, n - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
  if (k < n) snprintf(out + k, n - k, "]");
}

/* The parameter a file key names: the key itself, or with the arch's prefix added (a base model's file), with
 * TF-era LayerNorm gamma / beta read as weight / bias. */
static tensor *param_for(const model *m, const char *key, char *name, size_t n) {
  size_t len = strlen(key);
  const char *suffix = len > 6 && !strcmp(key + len - 6, ".gamma") ? ".weight"
                       : len > 5 && !strcmp(key + len - 5, ".beta") ? ".bias" : NULL;
  int cut = suffix ? (int)(len - strlen(strrchr(key, '.'))) : (int)len;
  const char *pre = m->arch->hf_prefix;
  int has = !strncmp(key, pre, strlen(pre)) || !strncmp(key, "classifiers.", 12);
  snprintf(name, n, "%s%.*s%s", has ? "" : pre, cut, key, suffix ? suffix : "");
  return params_find(&m->ps, name);
}

static int cmp_begin(const void *a, const void *b) {
  const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
  return x->begin < y->begin ? -1 : x->begin > y->begin;
}

int hf_load_weights(model *m, const char *path, int load_exits, hf_report *r, epee_err *e) {
  memset(r, 0, sizeof *r);
  st_file f;
  if (st_open(&f, path, e)) return -1;
  const param_store *ps = &m->ps;
  char *done = epee_calloc((size_t)ps->n + 1, 1);
  const st_tensor **order = epee_malloc(sizeof *order * ((size_t)f.n + 1));
  for (int i = 0; i < f.n; i++) order[i] = &f.t[i];
  qsort(order, (size_t)f.n, sizeof *order, cmp_begin); /* in file order: the mapping is read front to back */
  int rc = 0, n_copy = 0;
  int *target = epee_malloc(sizeof(int) * ((size_t)f.n + 1)); /* order[i] -> parameter index, -1: unused */
  for (int i = 0; i < f.n && !rc; i++) {
    const st_tensor *t = order[i];
    char name[512], fs[160], ms[160];
    tensor *p = param_for(m, t->name, name, sizeof name);
    int idx = -1;
    for (int k = 0; p && k < ps->n; k++)
      if (ps->t[k] == p) idx = k;
    target[i] = -1;
    if (!p || (!load_exits && (ps->group[idx] == PG_EXIT || ps->group[idx] == PG_EXIT_NODECAY))) {
      push(&r->unused, &r->n_unused, t->name);
      continue;
    }
    int64_t pshape[ST_MAX_DIMS];
    for (int d = 0; d < p->ndim; d++) pshape[d] = p->shape[d];
    int same = p->ndim == t->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = pshape[d] == t->shape[d];
    if (!same) {
      shape_text(t->ndim, t->shape, fs, sizeof fs), shape_text(p->ndim, pshape, ms, sizeof ms);
      rc = epee_errf(e, "%s: tensor '%.200s' is %s but the model's %s is %s (config.json and the weights disagree?)",
                     path, t->name, fs, name, ms);
    } else if (done[idx]) {
      rc = epee_errf(e, "%s: two tensors name the parameter %s (with and without the prefix '%s')", path, name,
                     m->arch->hf_prefix);
    } else if (!st_is_float(t->dtype)) {
      rc = epee_errf(e, "%s: tensor '%.200s' is %s; expected a float dtype (F32, F16, BF16, F64)", path, t->name,
                     st_dtype_names[t->dtype]);
    } else {
      done[idx] = 1, target[i] = idx, n_copy++;
      push(&r->loaded, &r->n_loaded, t->name);
    }
  }
  /* The copies, on every thread: the parameter pages are fresh, so the copy also faults them in, which costs
   * more than the copy itself; threads fault in parallel. Nothing here can fail (checked above). */
  if (!rc) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < f.n; i++)
      if (target[i] >= 0) st_read_f32(&f, order[i], ps->t[target[i]]->data, NULL);
  }
  free(target);
  for (int k = 0; !rc && k < ps->n; k++)
    if (!done[k]) push(&r->fresh, &r->n_fresh, ps->t[k]->name);
  free(done), free(order);
  st_close(&f);
  return rc;
}

static void print_list(FILE *f, const char *what, char **v, int n) {
  if (!n) return;
  fprintf(f, "init: %d %s:", n, what);
  for (int i = 0; i < n && i < 6; i++) fprintf(f, " %s", v[i]);
  fprintf(f, "%s\n", n > 6 ? " ..." : "");
}

void hf_report_print(const hf_report *r, const char *source, FILE *f) {
  fprintf(f, "init: %s: %d tensors loaded, %d in the file not used, %d parameters newly initialised\n", source,
          r->n_loaded, r->n_unused, r->n_fresh);
  print_list(f, "not used", r->unused, r->n_unused);
  print_list(f, "newly initialised", r->fresh, r->n_fresh);
}

/* j, indented, to path (through a temp file); j is released */
static int write_json(json_t *j, const char *path, epee_err *e) {
  char *text = json_text(j, 2);
  int rc = atomic_write_text(path, text, e);
  free(text);
  return rc;
}

static json_t *strings_json(char *const *s, int n) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(a, json_string(s[i]));
  return a;
}

int hf_report_write(const hf_report *r, const char *source, const char *path, epee_err *e) {
  json_t *j = json_object();
  json_object_set_new(j, "source", json_string(source));
  json_object_set_new(j, "loaded", strings_json(r->loaded, r->n_loaded));
  json_object_set_new(j, "unused", strings_json(r->unused, r->n_unused));
  json_object_set_new(j, "initialised", strings_json(r->fresh, r->n_fresh));
  return write_json(j, path, e);
}

void hf_report_free(hf_report *r) {
  char **lists[3] = {r->loaded, r->unused, r->fresh};
  int ns[3] = {r->n_loaded, r->n_unused, r->n_fresh};
  for (int l = 0; l < 3; l++) {
    for (int i = 0; i < ns[l]; i++) free(lists[l][i]);
    free(lists[l]);
  }
  memset(r, 0, sizeof *r);
}

/* ---- export ---- */

static int write_bytes(const char *path, const unsigned char *data, size_t n, epee_err *e) {
  FILE *fp = fopen(path, "wb");
  int ok = fp && fwrite(data, 1, n, fp) == n;
  if (fp && fclose(fp)) ok = 0;
  return ok ? 0 : epee_errf(e, "%s: cannot write: %s", path, strerror(errno));
}

static json_t *config_json(const model *m, const model_meta *meta) {
  json_t *c = hf_config_write(m), *id2 = json_object(), *l2id = json_object();
  for (int i = 0; i < meta->n_labels; i++) {
    char k[16];
    snprintf(k, sizeof k, "%d", i);
    json_object_set_new(id2, k, json_string(meta->labels[i]));
    json_object_set_new(l2id, meta->labels[i], json_integer(i));
  }
  json_object_set_new(c, "id2label", id2);
  json_object_set_new(c, "label2id", l2id);
  json_t *ours = json_object_get(c, "epee");
  json_object_set_new(ours, "format", json_string("epee-hf"));
  json_object_set_new(ours, "format_version", json_integer(1));
  json_object_set_new(ours, "policy", model_policy_json(m, meta));
  return c;
}

/* The input side: the tokenizer's files and tokenizer_config.json, or preprocessor_config.json. */
static int write_input(const model *m, const model_meta *meta, const char *dir, epee_err *e) {
  char path[4300];
  json_t *j = json_object();
  int rc = 0;
  if (meta->tok) {
    const tokenizer *t = meta->tok;
    for (int i = 0; i < t->kind->n_assets && !rc; i++) {
      snprintf(path, sizeof path, "%s/%s", dir, t->assets[i].name);
      rc = write_bytes(path, t->assets[i].data, t->assets[i].len, e);
    }
    json_object_set_new(j, "tokenizer_class", json_string(t->kind->hf_class));
    json_object_set_new(j, "do_lower_case", json_boolean(t->lowercase));
    json_object_set_new(j, "model_max_length", json_integer(meta->max_length));
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
  } else {
    int C = m->cfg.channels, S = m->cfg.image_size;
    json_object_set_new(j, "image_processor_type", json_string("ViTImageProcessor"));
    json_object_set_new(j, "do_rescale", json_true());
    json_object_set_new(j, "rescale_factor", json_real(1.0 / 255));
    json_object_set_new(j, "do_normalize", json_true());
    json_object_set_new(j, "image_mean", json_floats(meta->norm.mean, C));
    json_object_set_new(j, "image_std", json_floats(meta->norm.std, C));
    json_object_set_new(j, "do_resize", json_boolean(meta->resize));
    json_object_set_new(j, "size", json_pack("{s:i, s:i}", "height", S, "width", S));
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
  }
  if (rc) {
    json_decref(j);
    return rc;
  }
  return write_json(j, path, e);
}

static int write_weights(const model *m, const char *path, epee_err *e) {
  const param_store *ps = &m->ps;
  st_out *t = epee_malloc(sizeof *t * (size_t)ps->n);
  size_t pl = strlen(m->arch->hf_prefix);
  for (int i = 0; i < ps->n; i++) { /* the base model's names, as its save_pretrained writes them */
    const tensor *p = ps->t[i];
    const char *n = !strncmp(p->name, m->arch->hf_prefix, pl) ? p->name + pl : p->name;
    t[i] = (st_out){n, p->data, p->ndim, p->shape};
  }
  const char *meta[] = {"format", "pt", NULL};
  int rc = st_write(path, t, ps->n, ST_F32, meta, e);
  free(t);
  return rc;
}

/* Removes the files of a flat folder, then the folder. */
static void remove_flat(const char *dir) {
  DIR *d = opendir(dir);
  for (struct dirent *x; d && (x = readdir(d));) {
    if (!strcmp(x->d_name, ".") || !strcmp(x->d_name, "..")) continue;
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", dir, x->d_name);
    remove(p);
  }
  if (d) closedir(d);
  rmdir(dir);
}

int hf_export(const model *m, const model_meta *meta, const char *dir_arg, epee_err *e) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", dir_arg);
  for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--) dir[n - 1] = 0; /* "out/": the folder out */
  if (is_dir(dir)) { /* replace only an earlier export */
    int absent;
    epee_err ignore;
    json_t *c = read_json(dir, "config.json", &absent, &ignore);
    int ours = json_is_object(json_object_get(c, "epee"));
    json_decref(c);
    if (!ours) return epee_errf(e, "%s: exists and is not an EPEE export (no config.json with an \"epee\" object); "
                                   "not replaced: choose another folder or remove it", dir);
  } else if (access(dir, F_OK) == 0) {
    return epee_errf(e, "%s: exists and is not a folder", dir);
  }
  char tmp[4200], path[4300];
  snprintf(tmp, sizeof tmp, "%s", dir); /* the parents, as save_pretrained makes them */
  for (char *p = tmp + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(tmp, 0777) && errno != EEXIST) return epee_errf(e, "%s: cannot create: %s", tmp, strerror(errno));
      *p = '/';
    }
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
  remove_flat(tmp);
  if (mkdir(tmp, 0777)) return epee_errf(e, "%s: cannot create: %s", tmp, strerror(errno));
  snprintf(path, sizeof path, "%s/config.json", tmp);
  int rc = write_json(config_json(m, meta), path, e);
  snprintf(path, sizeof path, "%s/model.safetensors", tmp);
  if (!rc) rc = write_weights(m, path, e);
  if (!rc) rc = write_input(m, meta, tmp, e);
  char old[4300];
  snprintf(old, sizeof old, "%s.old.%ld", dir, (long)getpid());
  int had = is_dir(dir);
  if (!rc && had && rename(dir, old)) rc = epee_errf(e, "%s: cannot move the earlier export aside: %s", dir, strerror(errno));
  if (!rc && rename(tmp, dir)) {
    rc = epee_errf(e, "%s: cannot rename %s onto it: %s", dir, tmp, strerror(errno));
    if (had) rename(old, dir);
  }
  remove_flat(rc ? tmp : old);
  return rc;
}
