/* After training (and `epee-train --calibrate`): every exit on dev and test, calibration of the exit
 * policies on DEV, the chosen settings judged on TEST through the engine (batch 1 and batched, with
 * wall-clock against policy none), and the model file. Writes summary.json, calibration.csv/.svg,
 * results.md/.json and model.h5 into the run folder, and with them reliability.svg (test reliability of the
 * last exit and of the EPEE answers) and logits.h5 (the raw all-exit logits of dev and test, datasets
 * dev_logits [N, L, C], dev_labels [N], test_logits, test_labels, for re-analysis). With calibrate.temperature
 * a temperature per exit is fitted on dev: calibration, the engine's test run and the export use it. */
#ifndef EPEE_POSTTRAIN_H
#define EPEE_POSTTRAIN_H

#include "infer/engine.h"
#include "train/calibrate.h"
#include "train/config.h"
#include "train/job.h"

int posttrain_run(job *j, engine *g, epee_err *e);

/* The calibration grid of a config: its policies into kinds[EPEE_POLICY_KINDS], tau or tau_range into *taus
 * (malloc'ed, the caller frees), rule and its parameters; returns the number of kinds. */
int posttrain_grid(const cfg_calibrate *cc, calib_grid *g, epee_policy_kind *kinds, float **taus);

#endif
