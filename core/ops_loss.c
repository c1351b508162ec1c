/* Cross-entropy from logits (stable log-softmax), optional class weights, PyTorch's weighted mean. */
#include <math.h>
#include <string.h>

#include "core/ops.h"

typedef struct {
  const int32_t *labels;
  const float *class_w;
  float *probs; /* softmax [B, C] */
  float wsum;
} ce_saved;

static void ce_backward(tape_entry *e) {
  tensor *z = e->in[0];
  const ce_saved *s = e->saved[0];
  int B = z->shape[0], C = z->shape[1];
  float g = e->out->grad[0] / s->wsum;
  for (int b = 0; b < B; b++) {
    float wb = s->class_w ? s->class_w[s->labels[b]] : 1.0f;
    for (int k = 0; k < C; k++)
      z->grad[(size_t)b * C + k] += g * wb * (s->probs[(size_t)b * C + k] - (k == s->labels[b] ? 1.0f : 0.0f));
  }
}

/* logits[B, C], labels[B] -> scalar: sum_b w[y_b] nll_b / sum_b w[y_b] */
tensor *op_cross_entropy_at(epee_ctx *c, tensor *logits, const int32_t *labels, const float *class_w, OP_LOC) {
  OP_CHECK(logits->ndim == 2 && logits->shape[0] > 0, "cross_entropy", file, line, "logits must be [B, C], B > 0", logits);
  int B = logits->shape[0], C = logits->shape[1];
  for (int b = 0; b < B; b++)
    OP_CHECK(labels[b] >= 0 && labels[b] < C, "cross_entropy", file, line, "a label is outside [0, C)", logits);
  float *probs = arena_alloc(&c->act, sizeof(float) * (size_t)B * C);
  double loss = 0.0, wsum = 0.0;
  for (int b = 0; b < B; b++) {
    const float *z = logits->data + (size_t)b * C;
    float mx = z[0];
    for (int k = 1; k < C; k++) mx = z[k] > mx ? z[k] : mx;
    double sum = 0.0;
    for (int k = 0; k < C; k++) sum += exp((double)(z[k] - mx));
    double lse = mx + log(sum);
    for (int k = 0; k < C; k++) probs[(size_t)b * C + k] = (float)exp(z[k] - lse);
    double wb = class_w ? class_w[labels[b]] : 1.0;
    loss += wb * (lse - z[labels[b]]);
    wsum += wb;
  }
  OP_CHECK(wsum > 0, "cross_entropy", file, line, "class weights of the batch's labels sum to zero", logits);
  tensor *y = tensor_new_at(c, 1, ((int[]){1}), file, line);
  y->data[0] = (float)(loss / wsum);
  tape_entry *e = tape_record(c, "cross_entropy", ce_backward, y, 1, &logits);
  if (e) {
    ce_saved *s = arena_alloc(&c->act, sizeof *s);
    int32_t *lab = arena_alloc(&c->act, sizeof(int32_t) * (size_t)B);
    memcpy(lab, labels, sizeof(int32_t) * (size_t)B);
    float *cw = NULL;
    if (class_w) {
      cw = arena_alloc(&c->act, sizeof(float) * (size_t)C);
      memcpy(cw, class_w, sizeof(float) * (size_t)C);
    }
    *s = (ce_saved){lab, cw, probs, (float)wsum};
    e->saved[0] = s;
  }
  return y;
}
