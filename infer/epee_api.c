/* The public API (epee.h) over the model file, the tokenizer or the image normalisation, and the engine. */
#include "infer/epee.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/progress.h"
#include "infer/engine.h"
#include "infer/model_file.h"

struct epee_model {
  model m;
  model_meta meta; /* owns the tokenizer */
};

struct epee_session {
  const epee_model *model;
  engine g;
  int32_t *ids, *types; /* [max_batch, max_length] tokenised texts */
  float *mask;
  int *len, *layers;    /* [max_batch] */
  float *pixels;        /* image models: [max_batch, C, S, S] normalised */
  int *idx;             /* image models: [max_batch] rows of the call's images in the chunk */
  char err[EPEE_ERR_LEN];
};

static void copy_err(char *err, size_t len, const char *msg) {
  if (err && len) snprintf(err, len, "%s", msg);
}

epee_model *epee_model_load(const char *path, char *err, size_t err_len) {
  epee_model *m = epee_calloc(1, sizeof *m);
  epee_err e;
  if (model_file_read(path, &m->m, &m->meta, &e)) {
    copy_err(err, err_len, e.msg);
    free(m);
    return NULL;
  }
  return m;
}

void epee_model_free(epee_model *m) {
  if (!m) return;
  model_free(&m->m);
  model_meta_free(&m->meta);
  free(m);
}

int epee_model_num_labels(const epee_model *m) { return m->meta.n_labels; }
int epee_model_num_layers(const epee_model *m) { return m->m.n_layers; }
int epee_model_max_length(const epee_model *m) { return m->meta.max_length; }
static int is_image(const epee_model *m) { return m->m.arch->input == MODEL_INPUT_IMAGE; }
int epee_model_image_size(const epee_model *m) { return is_image(m) ? m->m.cfg.image_size : 0; }
int epee_model_channels(const epee_model *m) { return is_image(m) ? m->m.cfg.channels : 0; }
const char *epee_model_label(const epee_model *m, int i) {
  return i >= 0 && i < m->meta.n_labels ? m->meta.labels[i] : NULL;
}
const char *epee_model_metrics_json(const epee_model *m) { return m->meta.metrics_json; }
epee_exit_policy epee_model_policy(const epee_model *m) {
  const epee_policy *p = &m->meta.policy;
  return (epee_exit_policy){epee_policy_name(p->kind), p->tau, p->patience};
}

epee_session *epee_session_new(const epee_model *m, int max_batch, char *err, size_t err_len) {
  if (!m || max_batch < 1) {
    copy_err(err, err_len, m ? "epee_session_new: max_batch must be at least 1" : "epee_session_new: model is NULL");
    return NULL;
  }
  epee_session *s = epee_calloc(1, sizeof *s);
  epee_err e;
  s->model = m;
  /* the engine only reads the parameters: the model stays immutable and shareable */
  if (engine_init(&s->g, (model *)&m->m, max_batch, m->meta.max_length, &e)) {
    copy_err(err, err_len, e.msg);
    free(s);
    return NULL;
  }
  size_t bt = (size_t)max_batch * m->meta.max_length;
  s->ids = epee_malloc(sizeof(int32_t) * bt);
  s->types = epee_malloc(sizeof(int32_t) * bt);
  s->mask = epee_malloc(sizeof(float) * bt);
  s->len = epee_malloc(sizeof(int) * (size_t)max_batch);
  s->layers = epee_malloc(sizeof(int) * (size_t)max_batch);
  if (is_image(m)) {
    int S = m->m.cfg.image_size;
    s->pixels = epee_malloc(sizeof(float) * (size_t)max_batch * m->m.cfg.channels * S * S);
    s->idx = epee_malloc(sizeof(int) * (size_t)max_batch);
    for (size_t i = 0; i < bt; i++) s->mask[i] = 1.0f; /* every patch is real */
  }
  return s;
}

void epee_session_free(epee_session *s) {
  if (!s) return;
  engine_free(&s->g);
  free(s->ids), free(s->types), free(s->mask), free(s->len), free(s->layers), free(s->pixels), free(s->idx);
  free(s);
}

const char *epee_session_error(const epee_session *s) { return s->err; }

const char *epee_version(void) { return EPEE_VERSION_STRING; }

__attribute__((format(printf, 2, 3))) static int fail(epee_session *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->err, sizeof s->err, fmt, ap);
  va_end(ap);
  return -1;
}

static int resolve_policy(epee_session *s, const epee_exit_policy *in, epee_policy *out) {
  if (!in) {
    *out = s->model->meta.policy;
    return 0;
  }
  if (!in->name || epee_policy_parse(in->name, &out->kind))
    return fail(s, "policy '%s': expected none, entropy, patience, epee or pcee", in->name ? in->name : "(null)");
  out->tau = in->tau;
  out->patience = in->patience;
  epee_err e;
  if (epee_policy_validate(out, "policy", &e)) return fail(s, "%s", e.msg);
  return 0;
}

/* One engine batch of n <= max_batch rows; outputs at the rows' own positions, ms counted from t_call. */
static void classify_chunk(epee_session *s, int n, int T, const int32_t *ids, const int32_t *types, const float *mask,
                           const epee_policy *p, int *labels, int *exit_layers, float *probs, float *ms,
                           double t_call) {
  model_batch mb = {.B = n, .T = T, .ids = ids, .type_ids = types, .mask = mask, .pixels = s->pixels};
  float before = (float)(1e3 * (now_seconds() - t_call));
  engine_classify(&s->g, &mb, p, labels, exit_layers ? exit_layers : s->layers, probs, ms);
  for (int i = 0; ms && i < n; i++) ms[i] += before;
}

int epee_classify_ids(epee_session *s, int n, int T, const int32_t *ids, const int32_t *type_ids, const float *mask,
                      const epee_exit_policy *policy, int *labels, int *exit_layers, float *probs, float *ms) {
  double t_call = now_seconds();
  const model_meta *meta = &s->model->meta;
  int vocab = s->model->m.cfg.vocab, types = model_type_vocab(&s->model->m);
  epee_policy p;
  if (resolve_policy(s, policy, &p)) return -1;
  if (is_image(s->model)) return fail(s, "epee_classify_ids: the model reads images (epee_classify_images)");
  if (n < 0 || T < 1 || T > meta->max_length)
    return fail(s, "epee_classify_ids: n = %d, T = %d; expected n >= 0 and 1 <= T <= %d (the model's max length)", n,
                T, meta->max_length);
  if (n > 0 && (!ids || !mask || !labels)) return fail(s, "epee_classify_ids: ids, mask and labels are required");
  for (int r = 0; r < n; r++) { /* everything is checked before anything is computed */
    const int32_t *id = ids + (size_t)r * T, *ty = type_ids ? type_ids + (size_t)r * T : NULL;
    const float *mk = mask + (size_t)r * T;
    for (int t = 0; t < T; t++) {
      if (id[t] < 0 || id[t] >= vocab)
        return fail(s, "epee_classify_ids: row %d, position %d: token id %d outside the vocabulary [0, %d)", r, t,
                    (int)id[t], vocab);
      if (ty && (ty[t] < 0 || ty[t] >= types))
        return fail(s, "epee_classify_ids: row %d, position %d: type id %d outside [0, %d)", r, t, (int)ty[t], types);
      if (mk[t] != 0.0f && mk[t] != 1.0f)
        return fail(s, "epee_classify_ids: row %d, position %d: mask %g, expected 0 or 1", r, t, (double)mk[t]);
    }
    if (mk[0] != 1.0f) return fail(s, "epee_classify_ids: row %d: mask[0] is 0; every row starts with a real token", r);
  }
  int C = meta->n_labels;
  for (int c0 = 0; c0 < n; c0 += s->g.max_batch) {
    int cn = n - c0 < s->g.max_batch ? n - c0 : s->g.max_batch;
    size_t off = (size_t)c0 * T;
    classify_chunk(s, cn, T, ids + off, type_ids ? type_ids + off : NULL, mask + off, &p, labels + c0,
                   exit_layers ? exit_layers + c0 : NULL, probs ? probs + (size_t)c0 * C : NULL, ms ? ms + c0 : NULL,
                   t_call);
  }
  s->err[0] = '\0';
  return 0;
}

int epee_classify_texts(epee_session *s, int n, const char *const *texts, const char *const *texts_b,
                        const epee_exit_policy *policy, int *labels, int *exit_layers, float *probs, float *ms) {
  double t_call = now_seconds();
  const epee_model *m = s->model;
  epee_policy p;
  if (resolve_policy(s, policy, &p)) return -1;
  if (is_image(m)) return fail(s, "epee_classify_texts: the model reads images (epee_classify_images)");
  if (n < 0) return fail(s, "epee_classify_texts: n = %d, expected n >= 0", n);
  if (n > 0 && (!texts || !labels)) return fail(s, "epee_classify_texts: texts and labels are required");
  for (int i = 0; i < n; i++) {
    if (!texts[i]) return fail(s, "epee_classify_texts: texts[%d] is NULL", i);
    if (texts_b && texts_b[i] && (!model_takes_pairs(&m->m) || m->meta.max_length < tok_min_len(m->meta.tok, 1)))
      return fail(s, "epee_classify_texts: texts_b[%d] given, but the model takes no text pairs (token types %d, "
                     "max length %d)", i, model_type_vocab(&m->m), m->meta.max_length);
  }
  int L = m->meta.max_length, C = m->meta.n_labels;
  for (int c0 = 0; c0 < n; c0 += s->g.max_batch) {
    int cn = n - c0 < s->g.max_batch ? n - c0 : s->g.max_batch, T = 1;
    for (int i = 0; i < cn; i++) { /* encode at stride L ... */
      const char *b = texts_b ? texts_b[c0 + i] : NULL;
      s->len[i] = tok_encode(m->meta.tok, texts[c0 + i], b, L, s->ids + (size_t)i * L, s->types + (size_t)i * L, NULL);
      if (s->len[i] > T) T = s->len[i];
    }
    for (int i = 0; i < cn; i++) { /* ... then repack at stride T <= L: row i's target never passes a later source */
      int32_t *id = s->ids + (size_t)i * T, *ty = s->types + (size_t)i * T;
      memmove(id, s->ids + (size_t)i * L, sizeof(int32_t) * (size_t)s->len[i]);
      memmove(ty, s->types + (size_t)i * L, sizeof(int32_t) * (size_t)s->len[i]);
      for (int t = 0; t < T; t++) {
        s->mask[(size_t)i * T + t] = t < s->len[i];
        if (t >= s->len[i]) id[t] = m->meta.tok->sp.pad, ty[t] = 0;
      }
    }
    classify_chunk(s, cn, T, s->ids, s->types, s->mask, &p, labels + c0, exit_layers ? exit_layers + c0 : NULL,
                   probs ? probs + (size_t)c0 * C : NULL, ms ? ms + c0 : NULL, t_call);
  }
  s->err[0] = '\0';
  return 0;
}

int epee_classify_images(epee_session *s, int n, const uint8_t *pixels, const epee_exit_policy *policy, int *labels,
                         int *exit_layers, float *probs, float *ms) {
  double t_call = now_seconds();
  const epee_model *m = s->model;
  epee_policy p;
  if (resolve_policy(s, policy, &p)) return -1;
  if (!is_image(m)) return fail(s, "epee_classify_images: the model reads text (epee_classify_texts)");
  if (n < 0) return fail(s, "epee_classify_images: n = %d, expected n >= 0", n);
  if (n > 0 && (!pixels || !labels)) return fail(s, "epee_classify_images: pixels and labels are required");
  int S = m->m.cfg.image_size, Ch = m->m.cfg.channels, C = m->meta.n_labels, T = m->meta.max_length;
  /* the caller's pixels as an img_set (read only), batch rows 0..cn-1 of each chunk */
  img_set im = {.pixels = (uint8_t *)pixels, .n = n, .H = S, .W = S, .C = Ch};
  for (int c0 = 0; c0 < n; c0 += s->g.max_batch) {
    int cn = n - c0 < s->g.max_batch ? n - c0 : s->g.max_batch;
    for (int i = 0; i < cn; i++) s->idx[i] = c0 + i;
    img_fill_batch(&im, s->idx, cn, &m->meta.norm, NULL, 0, 0, s->pixels);
    classify_chunk(s, cn, T, s->ids, NULL, s->mask, &p, labels + c0, exit_layers ? exit_layers + c0 : NULL,
                   probs ? probs + (size_t)c0 * C : NULL, ms ? ms + c0 : NULL, t_call);
  }
  s->err[0] = '\0';
  return 0;
}
