#include "infer/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

double metric_accuracy(const int *gold, const int *pred, int n) {
  if (n <= 0) return 0;
  long correct = 0;
  for (int i = 0; i < n; i++) correct += gold[i] == pred[i];
  return (double)correct / n;
}

double metric_macro_f1(const int *gold, const int *pred, int n, int C) {
  if (n <= 0) return 0;
  /* per class: tp, number of gold examples (tp + fn), number of predictions (tp + fp) */
  int *cnt = epee_calloc((size_t)3 * C, sizeof(int));
  int *tp = cnt, *ngold = cnt + C, *npred = cnt + 2 * C;
  for (int i = 0; i < n; i++) {
    EPEE_CHECK(gold[i] >= 0 && gold[i] < C && pred[i] >= 0 && pred[i] < C, "labels must lie in [0, C)");
    tp[gold[i]] += gold[i] == pred[i];
    ngold[gold[i]]++;
    npred[pred[i]]++;
  }
  double sum = 0;
  int classes = 0;
  for (int c = 0; c < C; c++) {
    int denom = ngold[c] + npred[c]; /* = 2 TP + FP + FN */
    if (denom == 0) continue;
    sum += 2.0 * tp[c] / denom;
    classes++;
  }
  free(cnt);
  return sum / classes;
}

void metric_confusion(const int *gold, const int *pred, int n, int C, int *conf) {
  for (int i = 0; i < C * C; i++) conf[i] = 0;
  for (int i = 0; i < n; i++) {
    EPEE_CHECK(gold[i] >= 0 && gold[i] < C && pred[i] >= 0 && pred[i] < C, "labels must lie in [0, C)");
    conf[gold[i] * C + pred[i]]++;
  }
}

void metric_reliability_of(const float *conf, const int *correct, int n, metric_reliability *r) {
  memset(r, 0, sizeof *r);
  for (int i = 0; i < n; i++) {
    EPEE_CHECK(conf[i] >= 0 && conf[i] <= 1, "confidences must lie in [0, 1]");
    int b = (int)ceil(conf[i] * METRIC_ECE_BINS) - 1;
    b = b < 0 ? 0 : b >= METRIC_ECE_BINS ? METRIC_ECE_BINS - 1 : b;
    r->count[b]++;
    r->conf[b] += conf[i];
    r->acc[b] += correct[i] != 0;
  }
  for (int b = 0; b < METRIC_ECE_BINS; b++)
    if (r->count[b]) {
      r->conf[b] /= r->count[b];
      r->acc[b] /= r->count[b];
      r->ece += (double)r->count[b] / n * fabs(r->acc[b] - r->conf[b]);
    }
}
