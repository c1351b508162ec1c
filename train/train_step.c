#include "train/train_step.h"

#include <math.h>

#include "core/profile.h"
#include "train/multi_exit_loss.h"

double train_step_run(epee_ctx *c, model *m, const model_batch *mb, const int32_t *labels, const float *w,
                      uint64_t step, double clip, adamw *opt, const adamw_group *groups, float *ce) {
  int L = m->n_layers;
  double n = (double)m->ps.total;
  ctx_reset(c);
  c->step = step;
  tensor **logits = arena_alloc(&c->act, sizeof(tensor *) * (size_t)L);
  model_forward_all(c, m, mb, logits);
  tensor *loss = multi_exit_loss(c, L, logits, labels, w, ce);
  double value = loss->data[0];
  if (!isfinite(value)) return value;
  tape_backward(c, loss, NULL); /* the grads are zero: the previous step's AdamW cleared them */
  double since = prof_clock(c->prof);
  double norm = params_grad_norm(&m->ps); /* non-finite iff some gradient is */
  prof_lap(c->prof, &since, "grad_norm", PROF_OTHER, 4 * n);
  if (!isfinite(norm)) {
    params_zero_grad(&m->ps); /* the step is not taken; the next one starts from zero grads */
    return NAN;
  }
  adamw_step(opt, &m->ps, groups, params_clip_factor(norm, clip));
  prof_lap(c->prof, &since, "adamw", PROF_OTHER, 32 * n); /* reads w, g, m, v; writes w, g (zero), m, v */
  return value;
}
