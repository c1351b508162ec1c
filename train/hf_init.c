#include "train/hf_init.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/readfile.h"
#include "infer/hf_folder.h"

/* Sets key to the YAML text value, unless the config gave it: then it must already agree. what names the source. */
static int merge(epee_config *c, const char *key, const char *value, int agrees, const char *what, epee_err *e) {
  if (cfg_given(c, key)) {
    if (agrees) return 0;
    return epee_errf(e, "%s is given in the config but %s says %s: remove the key, or start from another model.init",
                     key, what, value);
  }
  char a[4400];
  snprintf(a, sizeof a, "%s=%s", key, value);
  return cfg_override(c, a, e);
}

/* A path as a single-quoted YAML scalar (its quotes doubled), so that any file name survives cfg_override. */
static void yaml_quote(const char *s, char *out, size_t n) {
  size_t k = 0;
  out[k++] = '\'';
  for (; *s && k + 3 < n; s++) {
    if (*s == '\'') out[k++] = '\'';
    out[k++] = *s;
  }
  out[k++] = '\'';
  out[k] = 0;
}

static int merge_model(epee_config *c, const hf_source *s, const char *where, epee_err *e) {
  const model_arch *cur = model_find_arch(model_arch_names[c->model.arch]);
  if (merge(c, "model.arch", s->arch->name, cur == s->arch, where, e)) return -1;
  for (int f = 0; f < MF_COUNT; f++) {
    if (!(s->from_file & MF_BIT(f))) continue;
    const model_field *mf = &model_fields[f];
    char key[64], text[64];
    snprintf(key, sizeof key, "model.%s", mf->name);
    double now, v;
    if (cfg_number(c, key, &now)) continue; /* vocab: the tokenizer's, checked against the weights' shape */
    const char *p = (const char *)&s->cfg + mf->offset;
    v = mf->type == MFT_FLOAT ? (double)*(const float *)p : (double)*(const int *)p;
    if (mf->train_only && cfg_given(c, key)) continue; /* dropout, init_std: the user's training choice */
    if (mf->type == MFT_BOOL) snprintf(text, sizeof text, "%s", v != 0 ? "true" : "false");
    else snprintf(text, sizeof text, "%.9g", v);
    char what[4400];
    snprintf(what, sizeof what, "%s (%s)", where, mf->name);
    if (merge(c, key, text, (float)now == (float)v, what, e)) return -1;
  }
  return 0;
}

/* The same bytes (a copy of the folder's vocabulary elsewhere agrees with it). */
static int same_content(const char *a, const char *b) {
  if (!strcmp(a, b)) return 1;
  size_t na, nb;
  char *x = data_read_file(a, &na, NULL), *y = x ? data_read_file(b, &nb, NULL) : NULL;
  int same = x && y && na == nb && !memcmp(x, y, na);
  free(x), free(y);
  return same;
}

static int merge_tokenizer(epee_config *c, const hf_source *s, epee_err *e) {
  const tok_kind *k = tok_find_kind(cfg_tokenizer_kind(c));
  if (!k) return epee_errf(e, "tokenizer.kind: '%s' is not a tokenizer of this build", cfg_tokenizer_kind(c));
  char paths[TOK_MAX_ASSETS][4200], q[8500], what[4400];
  if (hf_tokenizer_paths(s, k, paths, e)) return -1;
  static const char *const keys[TOK_MAX_ASSETS] = {"tokenizer.vocab", "tokenizer.merges"};
  const char *now[TOK_MAX_ASSETS] = {c->tokenizer.vocab, c->tokenizer.merges};
  for (int i = 0; i < k->n_assets; i++) {
    yaml_quote(paths[i], q, sizeof q);
    snprintf(what, sizeof what, "model.init (its own %s, which its weights were trained with)", k->asset_names[i]);
    if (merge(c, keys[i], q, same_content(now[i], paths[i]), what, e)) return -1;
  }
  int lower = s->lowercase >= 0 ? s->lowercase : k->hf_lowercase;
  snprintf(what, sizeof what, "%s/tokenizer_config.json (do_lower_case, or %s's default)", s->dir, k->hf_class);
  return merge(c, "tokenizer.lowercase", lower ? "true" : "false", c->tokenizer.lowercase == lower, what, e);
}

static int merge_floats(epee_config *c, const char *key, const cfg_flist *now, const float *v, int n,
                        const char *where, epee_err *e) {
  if (!n) return 0;
  char text[256] = "[";
  int agrees = now->n == n;
  for (int i = 0; i < n; i++) {
    snprintf(text + strlen(text), sizeof text - strlen(text), "%s%.9g", i ? ", " : "", (double)v[i]);
    agrees = agrees && (float)now->v[i] == v[i];
  }
  strcat(text, "]");
  return merge(c, key, text, agrees, where, e);
}

int hf_init_config(epee_config *c, epee_err *e) {
  if (!c->model.init[0]) return 0;
  hf_source s;
  if (hf_source_open(c->model.init, &s, e)) return -1;
  if (!s.arch) return 0; /* a lone .safetensors: the config describes the model */
  char where[4300];
  snprintf(where, sizeof where, "%s/config.json", s.dir);
  if (merge_model(c, &s, where, e)) return -1;
  if (s.arch->input == MODEL_INPUT_TEXT) return merge_tokenizer(c, &s, e);
  snprintf(where, sizeof where, "%s/preprocessor_config.json", s.dir);
  if (s.image_size && s.image_size != c->model.image_size)
    return epee_errf(e, "%s: size %d differs from config.json's image_size %d", where, s.image_size,
                     c->model.image_size);
  if (merge_floats(c, "image.mean", &c->image.mean, s.mean, s.n_mean, where, e)) return -1;
  return merge_floats(c, "image.std", &c->image.std, s.std, s.n_std, where, e);
}

int hf_init_weights(model *m, const epee_config *c, epee_err *e) {
  if (!c->model.init[0]) return 0;
  hf_source s;
  hf_report r;
  if (hf_source_open(c->model.init, &s, e)) return -1;
  int rc = hf_load_weights(m, s.weights, c->model.init_exits, &r, e);
  if (!rc) {
    char path[4200];
    hf_report_print(&r, s.weights, stdout);
    snprintf(path, sizeof path, "%s/init_report.json", c->run.dir);
    rc = hf_report_write(&r, s.weights, path, e);
  }
  hf_report_free(&r);
  return rc;
}

int hf_init_export(const model *m, const model_meta *meta, const epee_config *c, epee_err *e) {
  if (!c->export.hf[0]) return 0;
  char dir[4200];
  if (c->export.hf[0] == '/') snprintf(dir, sizeof dir, "%s", c->export.hf);
  else snprintf(dir, sizeof dir, "%s/%s", c->run.dir, c->export.hf);
  if (hf_export(m, meta, dir, e)) return -1;
  printf("exported %s (HuggingFace folder: config.json, model.safetensors, %s)\n", dir,
         meta->tok ? "tokenizer files" : "preprocessor_config.json");
  return 0;
}

int hf_export_run(const char *run_dir, const char *dir, epee_err *e) {
  char path[4200];
  snprintf(path, sizeof path, "%s/config.yaml", run_dir);
  epee_config c;
  int rc = cfg_load(path, &c, e);
  if (!rc) { /* the run's model file: export.path, relative to the run folder (wherever it now is) */
    if (c.export.path[0] == '/') snprintf(path, sizeof path, "%s", c.export.path);
    else snprintf(path, sizeof path, "%s/%s", run_dir, c.export.path);
  }
  cfg_free(&c);
  model m;
  model_meta meta;
  if (rc || model_file_read(path, &m, &meta, e)) return -1;
  rc = hf_export(&m, &meta, dir, e);
  if (!rc) printf("exported %s from %s\n", dir, path);
  model_free(&m);
  model_meta_free(&meta);
  return rc;
}
