#include "infer/model_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int weights_write(hid_t f, const param_store *ps, const char *group, epee_err *e) {
  char name[512];
  for (int i = 0; i < ps->n; i++) {
    const tensor *t = ps->t[i];
    snprintf(name, sizeof name, "%s/%s", group, t->name);
    if (h5_write_floats(f, name, t->data, t->ndim, t->shape, e)) return -1;
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

/* Our own flat JSON: "key": number. Returns 0 and sets *v, or -1 when the key is absent or not a number. */
static int json_number(const char *json, const char *key, double *v) {
  char pat[96];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = strstr(json, pat);
  if (!p) return -1;
  p += strlen(pat);
  while (*p == ' ') p++;
  char *end;
  *v = strtod(p, &end);
  return end == p ? -1 : 0;
}

static int json_string(const char *json, const char *key, char *out, size_t n) {
  char pat[96];
  snprintf(pat, sizeof pat, "\"%s\":\"", key);
  const char *p = strstr(json, pat);
  if (!p) return -1;
  p += strlen(pat);
  const char *q = strchr(p, '"');
  if (!q || (size_t)(q - p) >= n) return -1;
  memcpy(out, p, (size_t)(q - p));
  out[q - p] = 0;
  return 0;
}

int model_file_write(const char *path, const model *m, const model_meta *meta, epee_err *e) {
  char tmp[4200], mc[1024], tc[256], pc[256];
  const bert_config *b = &meta->bert;
  snprintf(mc, sizeof mc,
           "{\"vocab\":%d,\"hidden\":%d,\"layers\":%d,\"heads\":%d,\"intermediate\":%d,\"max_position\":%d,"
           "\"type_vocab\":%d,\"num_labels\":%d,\"hidden_dropout\":%g,\"attention_dropout\":%g,\"exit_dropout\":%g,"
           "\"layer_norm_eps\":%.9g,\"init_std\":%g}",
           b->vocab, b->hidden, b->layers, b->heads, b->intermediate, b->max_position, b->type_vocab, b->num_labels,
           b->hidden_dropout, b->attention_dropout, b->exit_dropout, b->layer_norm_eps, b->init_std);
  snprintf(tc, sizeof tc, "{\"type\":\"wordpiece\",\"lowercase\":%d,\"max_length\":%d}", meta->lowercase,
           meta->max_length);
  snprintf(pc, sizeof pc, "{\"name\":\"%s\",\"tau\":%.9g,\"patience\":%d}", epee_policy_name(meta->policy.kind),
           meta->policy.tau, meta->policy.patience);
  hid_t f = h5_create_tmp(path, tmp, sizeof tmp, e);
  if (f < 0) return -1;
  int ok = h5_write_attr_str(f, "format", EPEE_MODEL_FORMAT, e) == 0 &&
           h5_write_attr_str(f, "format_version", EPEE_MODEL_VERSION, e) == 0 &&
           h5_write_attr_str(f, "arch", meta->arch, e) == 0 && h5_write_attr_str(f, "model_config", mc, e) == 0 &&
           h5_write_attr_str(f, "tokenizer_config", tc, e) == 0 && h5_write_attr_str(f, "policy", pc, e) == 0 &&
           h5_write_attr_str(f, "metrics", meta->metrics_json ? meta->metrics_json : "{}", e) == 0 &&
           h5_write_attr_str(f, "train_config", meta->train_config_json ? meta->train_config_json : "{}", e) == 0 &&
           h5_write_strings(f, "labels", meta->labels, meta->n_labels, e) == 0 &&
           h5_write_strings(f, "tokenizer/vocab", meta->vocab, meta->n_vocab, e) == 0 &&
           weights_write(f, &m->ps, "weights", e) == 0;
  return h5_commit(f, tmp, path, ok, e);
}

void model_meta_free(model_meta *meta) {
  free(meta->arch);
  h5_free_strings(meta->labels, meta->n_labels);
  h5_free_strings(meta->vocab, meta->n_vocab);
  free(meta->metrics_json);
  free(meta->train_config_json);
  memset(meta, 0, sizeof *meta);
}

static int parse_configs(const char *path, const char *mc, const char *tc, const char *pc, model_meta *meta,
                         epee_err *e) {
  static const char *ints[] = {"vocab", "hidden", "layers", "heads", "intermediate", "max_position", "type_vocab",
                               "num_labels"};
  bert_config *b = &meta->bert;
  int *dst[] = {&b->vocab, &b->hidden, &b->layers, &b->heads, &b->intermediate, &b->max_position, &b->type_vocab,
                &b->num_labels};
  double v;
  for (int i = 0; i < 8; i++) {
    if (json_number(mc, ints[i], &v) || v < 1 || v > 1e8)
      return epee_errf(e, "%s: attribute 'model_config': missing or invalid \"%s\"", path, ints[i]);
    *dst[i] = (int)v;
  }
  if (json_number(mc, "layer_norm_eps", &v) || !(v > 0))
    return epee_errf(e, "%s: attribute 'model_config': missing or invalid \"layer_norm_eps\"", path);
  b->layer_norm_eps = (float)v;
  if (json_number(tc, "max_length", &v) || v < 2)
    return epee_errf(e, "%s: attribute 'tokenizer_config': missing or invalid \"max_length\"", path);
  meta->max_length = (int)v;
  meta->lowercase = json_number(tc, "lowercase", &v) == 0 ? v != 0 : 1;
  char name[32];
  double tau, pat;
  if (json_string(pc, "name", name, sizeof name) || epee_policy_parse(name, &meta->policy.kind) ||
      json_number(pc, "tau", &tau) || json_number(pc, "patience", &pat))
    return epee_errf(e, "%s: attribute 'policy': expected {\"name\": none|entropy|patience|epee|pcee, \"tau\", "
                        "\"patience\"}", path);
  meta->policy.tau = (float)tau;
  meta->policy.patience = (int)pat;
  return 0;
}

int model_file_read(const char *path, model *m, model_meta *meta, epee_err *e) {
  memset(meta, 0, sizeof *meta);
  memset(m, 0, sizeof *m);
  hid_t f = h5_open_read(path, e);
  if (f < 0) return -1;
  int rc = -1;
  char *fmt = NULL, *ver = NULL, *mc = NULL, *tc = NULL, *pc = NULL;
  if (!(fmt = h5_read_attr_str(f, path, "format", e))) {
    epee_errf(e, "%s: not an EPEE-C model file (no 'format' attribute)", path);
    goto done;
  }
  if (strcmp(fmt, EPEE_MODEL_FORMAT) != 0) {
    epee_errf(e, "%s: format '%s' is not '%s'", path, fmt, EPEE_MODEL_FORMAT);
    goto done;
  }
  if (!(ver = h5_read_attr_str(f, path, "format_version", e))) goto done;
  if (strcmp(ver, EPEE_MODEL_VERSION) != 0) {
    epee_errf(e, "%s: format version '%s' is not supported (this build reads version %s)", path, ver,
              EPEE_MODEL_VERSION);
    goto done;
  }
  if (!(meta->arch = h5_read_attr_str(f, path, "arch", e)) || !(mc = h5_read_attr_str(f, path, "model_config", e)) ||
      !(tc = h5_read_attr_str(f, path, "tokenizer_config", e)) || !(pc = h5_read_attr_str(f, path, "policy", e)) ||
      !(meta->metrics_json = h5_read_attr_str(f, path, "metrics", e)) ||
      !(meta->train_config_json = h5_read_attr_str(f, path, "train_config", e)))
    goto done;
  if (strcmp(meta->arch, "bert") != 0) {
    epee_errf(e, "%s: arch '%s' is not supported by this build (bert)", path, meta->arch);
    goto done;
  }
  if (parse_configs(path, mc, tc, pc, meta, e)) goto done;
  if (h5_read_strings(f, path, "labels", &meta->labels, &meta->n_labels, e) ||
      h5_read_strings(f, path, "tokenizer/vocab", &meta->vocab, &meta->n_vocab, e))
    goto done;
  if (meta->n_labels != meta->bert.num_labels) {
    epee_errf(e, "%s: dataset 'labels' has %d names but model_config says num_labels %d", path, meta->n_labels,
              meta->bert.num_labels);
    goto done;
  }
  if (meta->n_vocab != meta->bert.vocab) {
    epee_errf(e, "%s: dataset 'tokenizer/vocab' has %d tokens but model_config says vocab %d", path, meta->n_vocab,
              meta->bert.vocab);
    goto done;
  }
  if (bert_create(m, &meta->bert, e)) {
    char msg[EPEE_ERR_LEN];
    snprintf(msg, sizeof msg, "%s", e->msg);
    epee_errf(e, "%s: %s", path, msg);
    goto done;
  }
  if (weights_read(f, path, &m->ps, "weights", e)) goto done;
  rc = 0;
done:
  free(fmt), free(ver), free(mc), free(tc), free(pc);
  H5Fclose(f);
  if (rc) {
    if (m->impl) model_free(m);
    model_meta_free(meta);
  }
  return rc;
}
