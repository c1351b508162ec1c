/* Classification metrics from integer label arrays (gold and predicted class ids in [0, C)). */
#ifndef EPEE_METRICS_H
#define EPEE_METRICS_H

/* Fraction of i < n with pred[i] == gold[i]; 0 when n == 0. */
double metric_accuracy(const int *gold, const int *pred, int n);

/* Macro-F1: the mean over classes of F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c), taken over the classes that occur
 * in gold OR in pred. A class with neither gold examples nor predictions has no defined F1 and is left out of
 * the mean (as scikit-learn does when `labels` is not given); a class predicted but never gold counts with
 * F1 = 0, and so does a gold class never predicted. 0 when n == 0. Labels outside [0, C) abort (caller bug). */
double metric_macro_f1(const int *gold, const int *pred, int n, int C);

/* conf[C*C] (row = gold class, column = predicted class) = counts over the n pairs; overwrites conf. */
void metric_confusion(const int *gold, const int *pred, int n, int C, int *conf);

/* Calibration of confidences (Guo et al. 2017): n answers with confidence conf[i] in [0, 1] (the probability given to
 * the predicted class) and correct[i] in {0, 1}, in METRIC_ECE_BINS equal-width bins ((b-1)/B, b/B] (confidence 0
 * in the first). Per bin: count, mean confidence, accuracy (0 when empty); ece = sum_b count_b / n |acc_b - conf_b|
 * (0 when n == 0). */
#define METRIC_ECE_BINS 15
typedef struct {
  int count[METRIC_ECE_BINS];
  double conf[METRIC_ECE_BINS], acc[METRIC_ECE_BINS];
  double ece;
} metric_reliability;
void metric_reliability_of(const float *conf, const int *correct, int n, metric_reliability *r);

#endif
