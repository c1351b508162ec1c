#include "models/model.h"

#include <stdlib.h>

void model_forward_all(epee_ctx *c, model *m, const model_batch *b, tensor **logits) {
  tensor *h = m->embed(c, m, b);
  for (int l = 0; l < m->n_layers; l++) {
    h = m->layer(c, m, l, h, b);
    logits[l] = m->exit(c, m, l, h, b);
  }
}

void model_free(model *m) {
  if (!m) return;
  if (m->free_impl) m->free_impl(m);
  params_free(&m->ps);
  free(m->impl);
  m->impl = NULL;
}
