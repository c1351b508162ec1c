/* After training (and `epee-train --calibrate`): every exit on dev and test, calibration of the exit
 * policies on DEV, the chosen settings judged on TEST through the engine (batch 1 and batched, with
 * wall-clock against policy none), and the model file. Writes summary.json, calibration.csv/.svg,
 * results.md/.json and model.h5 into the run folder. */
#ifndef EPEE_POSTTRAIN_H
#define EPEE_POSTTRAIN_H

#include "infer/engine.h"
#include "train/job.h"

int posttrain_run(job *j, engine *g, epee_err *e);

#endif
