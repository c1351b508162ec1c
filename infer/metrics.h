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

#endif
