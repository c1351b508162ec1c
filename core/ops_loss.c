/* Cross-entropy from logits, as torch.nn.functional.cross_entropy (reduction "mean"):
 *   nll_b = logsumexp(z_b) - z_b[y_b]   (stable: max subtracted, accumulated in double)
 *   loss  = sum_b w[y_b] nll_b / sum_b w[y_b]   (w = 1 without class weights: the plain mean)
 *   dz_b  = dloss * w[y_b] (softmax(z_b) - onehot(y_b)) / sum_b w[y_b] */
#include <math.h>
#include <string.h>

#include "core/ops.h"

typedef struct {
  const int32_t *labels;
  const float *class_w; /* NULL: all ones */
  float *probs;         /* softmax(z) [B, C] */
  double wsum;
} ce_saved;

static void ce_backward(tape_entry *e) {
  tensor *z = e->in[0];
  const ce_saved *s = e->saved[0];
  int B = z->shape[0], C = z->shape[1];
  double g = e->out->grad[0] / s->wsum;
  for (int b = 0; b < B; b++) {
    float gb = (float)(g * (s->class_w ? s->class_w[s->labels[b]] : 1.0f));
    const float *p = s->probs + (size_t)b * C;
    float *dz = z->grad + (size_t)b * C;
    for (int k = 0; k < C; k++) dz[k] += gb * p[k];
    dz[s->labels[b]] -= gb;
  }
}

/* logits[B, C], labels[B] in [0, C), class_w[C] or NULL -> [1] */
tensor *op_cross_entropy_at(epee_ctx *c, tensor *logits, const int32_t *labels, const float *class_w, OP_LOC) {
  OP_CHECK(logits->ndim == 2 && logits->shape[0] > 0 && logits->shape[1] > 0, "cross_entropy", file, line,
           "logits must be [B, C] with B, C > 0", logits);
  int B = logits->shape[0], C = logits->shape[1];
  OP_CHECK(labels != NULL, "cross_entropy", file, line, "needs B labels", logits);
  for (int b = 0; b < B; b++)
    if (labels[b] < 0 || labels[b] >= C) {
      char what[96];
      snprintf(what, sizeof what, "label %d of row %d is outside [0, %d)", labels[b], b, C);
      OP_CHECK(0, "cross_entropy", file, line, what, logits);
    }
  int record = c->grad_mode && logits->requires_grad;
  float *probs = record ? arena_alloc_at(&c->act, sizeof(float) * (size_t)B * C, file, line) : NULL;
  double loss = 0.0, wsum = 0.0;
  for (int b = 0; b < B; b++) {
    const float *z = logits->data + (size_t)b * C;
    float mx = z[0];
    for (int k = 1; k < C; k++) mx = z[k] > mx ? z[k] : mx;
    double sum = 0.0;
    for (int k = 0; k < C; k++) sum += exp((double)z[k] - mx);
    double lse = mx + log(sum), wb = class_w ? class_w[labels[b]] : 1.0;
    if (probs)
      for (int k = 0; k < C; k++) probs[(size_t)b * C + k] = (float)exp((double)z[k] - lse);
    loss += wb * (lse - z[labels[b]]);
    wsum += wb;
  }
  /* PyTorch returns NaN here; a batch whose labels all weigh zero is a configuration error */
  OP_CHECK(wsum > 0.0, "cross_entropy", file, line, "the class weights of the batch's labels sum to <= 0", logits);
  tensor *y = tensor_new_at(c, 1, ((int[]){1}), file, line);
  y->data[0] = (float)(loss / wsum);
  tape_entry *e = tape_record(c, "cross_entropy", ce_backward, y, 1, &logits);
  if (e) { /* the caller's label and weight buffers may change before backward */
    ce_saved *s = arena_alloc_at(&c->act, sizeof *s, file, line);
    int32_t *lab = arena_alloc_at(&c->act, sizeof(int32_t) * (size_t)B, file, line);
    memcpy(lab, labels, sizeof(int32_t) * (size_t)B);
    float *cw = NULL;
    if (class_w) {
      cw = arena_alloc_at(&c->act, sizeof(float) * (size_t)C, file, line);
      memcpy(cw, class_w, sizeof(float) * (size_t)C);
    }
    *s = (ce_saved){lab, cw, probs, wsum};
    e->saved[0] = s;
  }
  return y;
}
