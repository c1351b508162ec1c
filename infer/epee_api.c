#include <stdio.h>
#include <string.h>

#include "data/wordpiece.h"
#include "infer/engine.h"
#include "infer/epee.h"
#include "infer/model_file.h"

struct epee_model {
  model m;
  model_meta meta;
  wp_tokenizer *tok;
};

struct epee_session {
  const epee_model *model;
  engine g;
  int32_t *ids, *types;
  float *mask;
};

static void set_err(char *err, size_t len, const char *msg) {
  if (err && len) snprintf(err, len, "%s", msg);
}

epee_model *epee_model_load(const char *path, char *err, size_t err_len) {
  epee_model *m = epee_calloc(1, sizeof *m);
  epee_err e;
  if (model_file_read(path, &m->m, &m->meta, &e)) {
    set_err(err, err_len, e.msg);
    free(m);
    return NULL;
  }
  /* the tokenizer from the file's vocabulary, one token per line */
  size_t total = 0;
  for (int i = 0; i < m->meta.n_vocab; i++) total += strlen(m->meta.vocab[i]) + 1;
  char *buf = epee_malloc(total + 1), *p = buf;
  for (int i = 0; i < m->meta.n_vocab; i++) p += sprintf(p, "%s\n", m->meta.vocab[i]);
  m->tok = wp_load_buffer(buf, total, &e);
  free(buf);
  if (!m->tok) {
    char msg[EPEE_ERR_LEN + 64];
    snprintf(msg, sizeof msg, "%s: tokenizer/vocab: %s", path, e.msg);
    set_err(err, err_len, msg);
    epee_model_free(m);
    return NULL;
  }
  return m;
}

void epee_model_free(epee_model *m) {
  if (!m) return;
  if (m->m.impl) model_free(&m->m);
  model_meta_free(&m->meta);
  wp_free(m->tok);
  free(m);
}

int epee_model_num_labels(const epee_model *m) { return m->meta.n_labels; }
int epee_model_num_layers(const epee_model *m) { return m->m.n_layers; }
int epee_model_max_length(const epee_model *m) { return m->meta.max_length; }
const char *epee_model_label(const epee_model *m, int i) {
  return i >= 0 && i < m->meta.n_labels ? m->meta.labels[i] : NULL;
}
epee_policy epee_model_policy(const epee_model *m) { return m->meta.policy; }

epee_session *epee_session_new(const epee_model *m, int max_batch, char *err, size_t err_len) {
  epee_session *s = epee_calloc(1, sizeof *s);
  epee_err e;
  s->model = m;
  /* the engine only reads the model's parameters; the cast drops const for the model interface */
  if (engine_init(&s->g, (model *)&m->m, max_batch, m->meta.max_length, &e)) {
    set_err(err, err_len, e.msg);
    free(s);
    return NULL;
  }
  size_t bt = (size_t)max_batch * m->meta.max_length;
  s->ids = epee_malloc(sizeof(int32_t) * bt);
  s->types = epee_malloc(sizeof(int32_t) * bt);
  s->mask = epee_malloc(sizeof(float) * bt);
  return s;
}

void epee_session_free(epee_session *s) {
  if (!s) return;
  engine_free(&s->g);
  free(s->ids), free(s->types), free(s->mask);
  free(s);
}

int epee_classify_ids(epee_session *s, const int32_t *ids, const int32_t *type_ids, const float *mask, int n, int T,
                      const epee_policy *policy, int *labels, int *exit_layers, float *probs, char *err,
                      size_t err_len) {
  char msg[256];
  if (n < 0 || n > s->g.max_batch || T < 1 || T > s->g.max_len) {
    snprintf(msg, sizeof msg, "epee_classify: n = %d, T = %d outside the session's 0..%d rows, 1..%d tokens", n, T,
             s->g.max_batch, s->g.max_len);
    set_err(err, err_len, msg);
    return -1;
  }
  const epee_model *m = s->model;
  for (int i = 0; i < n * T; i++)
    if (ids[i] < 0 || ids[i] >= m->meta.n_vocab) {
      snprintf(msg, sizeof msg, "epee_classify: token id %d at row %d is outside the vocabulary [0, %d)", ids[i],
               i / T, m->meta.n_vocab);
      set_err(err, err_len, msg);
      return -1;
    }
  epee_policy p = policy ? *policy : m->meta.policy;
  model_batch mb = {.B = n, .T = T, .ids = ids, .type_ids = type_ids, .mask = mask};
  engine_classify(&s->g, &mb, &p, labels, exit_layers, probs);
  return 0;
}

int epee_classify_texts(epee_session *s, const char *const *texts, const char *const *texts_b, int n,
                        const epee_policy *policy, int *labels, int *exit_layers, float *probs, char *err,
                        size_t err_len) {
  if (n < 0 || n > s->g.max_batch) {
    char msg[128];
    snprintf(msg, sizeof msg, "epee_classify_texts: %d texts, the session takes at most %d", n, s->g.max_batch);
    set_err(err, err_len, msg);
    return -1;
  }
  int L = s->model->meta.max_length, T = 1;
  int32_t *tmp_ids = s->ids, *tmp_types = s->types; /* encode at stride L, then repack to the batch max T */
  int *lens = exit_layers;                          /* borrowed until the engine writes it */
  for (int i = 0; i < n; i++) {
    int trunc;
    lens[i] = wp_encode(s->model->tok, texts[i], texts_b ? texts_b[i] : NULL, L, tmp_ids + (size_t)i * L,
                        tmp_types + (size_t)i * L, &trunc);
    if (lens[i] > T) T = lens[i];
  }
  for (int i = 0; i < n; i++) { /* stride L -> T, ascending rows: destinations never pass sources */
    memmove(s->ids + (size_t)i * T, tmp_ids + (size_t)i * L, sizeof(int32_t) * (size_t)lens[i]);
    memmove(s->types + (size_t)i * T, tmp_types + (size_t)i * L, sizeof(int32_t) * (size_t)lens[i]);
  }
  for (int i = n - 1; i >= 0; i--) /* padding after the rows are in place */
    for (int t = 0; t < T; t++) {
      s->mask[(size_t)i * T + t] = t < lens[i];
      if (t >= lens[i]) s->ids[(size_t)i * T + t] = 0, s->types[(size_t)i * T + t] = 0;
    }
  return epee_classify_ids(s, s->ids, s->types, s->mask, n, T, policy, labels, exit_layers, probs, err, err_len);
}
