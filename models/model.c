/* What every backbone shares: the model.* field table, construction through the registry, the forward over
 * all exits, and the small helpers the backbone files use. */
#include "models/model.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

#define F(name, type, lo, hi, train_only) {#name, type, offsetof(model_config, name), lo, hi, train_only}
const model_field model_fields[MF_COUNT] = {
    F(vocab, MFT_INT, 1, 1 << 24, false),
    F(hidden, MFT_INT, 1, 1 << 16, false),
    F(layers, MFT_INT, 1, 1024, false),
    F(heads, MFT_INT, 1, 1024, false),
    F(intermediate, MFT_INT, 1, 1 << 18, false),
    F(max_position, MFT_INT, 1, 1 << 20, false),
    F(type_vocab, MFT_INT, 1, 1 << 16, false),
    F(num_labels, MFT_INT, 2, 1 << 20, false),
    F(embedding_size, MFT_INT, 1, 1 << 16, false),
    F(hidden_groups, MFT_INT, 1, 1024, false),
    F(exit_norm, MFT_BOOL, 0, 1, false),
    F(image_size, MFT_INT, 1, 1 << 14, false),
    F(patch_size, MFT_INT, 1, 1 << 14, false),
    F(channels, MFT_INT, 1, 3, false),
    F(hidden_dropout, MFT_FLOAT, 0, 1, true),
    F(attention_dropout, MFT_FLOAT, 0, 1, true),
    F(exit_dropout, MFT_FLOAT, 0, 1, true),
    F(layer_norm_eps, MFT_FLOAT, 1e-30, 1, false),
    F(init_std, MFT_FLOAT, 0, 1e3, true),
};
#undef F

static double field_value(const model_config *c, const model_field *f) {
  const char *p = (const char *)c + f->offset;
  return f->type == MFT_FLOAT ? (double)*(const float *)p : (double)*(const int *)p;
}

int model_create(model *m, const model_arch *arch, const model_config *cfg, params_use use, int64_t max_weights,
                 epee_err *e) {
  memset(m, 0, sizeof *m);
  for (int i = 0; i < MF_COUNT; i++) {
    const model_field *f = &model_fields[i];
    double v = field_value(cfg, f);
    if ((arch->fields & MF_BIT(i)) && !(v >= f->lo && v <= f->hi))
      return epee_errf(e, "%s: model %s is %g; expected a value in [%g, %g]", arch->name, f->name, v, f->lo, f->hi);
  }
  if (cfg->hidden % cfg->heads)
    return epee_errf(e, "%s: model hidden %d is not a multiple of heads %d", arch->name, cfg->hidden, cfg->heads);
  m->arch = arch;
  m->cfg = *cfg;
  m->n_layers = cfg->layers;
  m->n_labels = cfg->num_labels;
  m->hidden = cfg->hidden;
  params_init(&m->ps);
  if (arch->create(m, e)) {
    model_free(m);
    return -1;
  }
  int64_t n = 0;
  for (int i = 0; i < m->ps.n; i++) n += m->ps.t[i]->n;
  if (max_weights > 0 && n > max_weights) {
    epee_errf(e, "%s: the config describes %lld weights (%.1f MB) but at most %lld fit (truncated file, or a config "
                 "that does not belong to these weights)", arch->name, (long long)n, 4e-6 * (double)n,
              (long long)max_weights);
    model_free(m);
    return -1;
  }
  params_allocate(&m->ps, use);
  return 0;
}

void model_free(model *m) {
  if (!m) return;
  if (m->free_impl) m->free_impl(m);
  params_free(&m->ps);
  free(m->impl);
  free(m->temperature);
  memset(m, 0, sizeof *m);
}

int model_max_tokens(const model *m) {
  if (m->arch->input == MODEL_INPUT_TEXT) return m->cfg.max_position;
  int g = m->cfg.image_size / m->cfg.patch_size;
  return g * g + 1;
}

int model_type_vocab(const model *m) { return (m->arch->fields & MF_BIT(MF_TYPE_VOCAB)) ? m->cfg.type_vocab : 1; }
int model_takes_pairs(const model *m) { return !(m->arch->fields & MF_BIT(MF_TYPE_VOCAB)) || m->cfg.type_vocab >= 2; }

void model_forward_all(epee_ctx *c, model *m, const model_batch *b, tensor **logits) {
  tensor *h = m->embed(c, m, b);
  for (int l = 0; l < m->n_layers; l++) {
    h = m->layer(c, m, l, h, b);
    logits[l] = m->exit(c, m, l, h, b);
  }
}

tensor *model_decl(model *m, int is_exit, int ndim, const int *shape, const char *fmt, int l) {
  char name[160];
  snprintf(name, sizeof name, fmt, l);
  return params_declare(&m->ps, name, ndim, shape, is_exit);
}

void model_init_default(model *m, uint64_t seed) {
  for (int i = 0; i < m->ps.n; i++) {
    tensor *t = m->ps.t[i];
    const char *dot = strrchr(t->name, '.');
    if (t->ndim == 1) {
      float v = dot && strcmp(dot, ".weight") == 0 ? 1.0f : 0.0f;
      for (int64_t j = 0; j < t->n; j++) t->data[j] = v;
    } else {
      /* streams from 2^63 up: never those of dropout ((step << 20) + call), so masks and init are independent */
      rng_fill_normal(t->data, t->n, m->cfg.init_std, seed, (1ULL << 63) + (uint64_t)i);
    }
  }
}

int *model_last_rows(epee_ctx *c, const float *mask, int B, int T) {
  int *rows = arena_alloc(&c->act, sizeof(int) * (size_t)B);
  for (int b = 0; b < B; b++) {
    int last = mask ? 0 : T - 1;
    for (int t = 0; mask && t < T; t++)
      if (mask[(size_t)b * T + t] != 0.0f) last = t;
    rows[b] = b * T + last;
  }
  return rows;
}
