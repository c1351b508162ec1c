/* epee-train's job: data -> multi-exit model trained jointly -> best checkpoint by dev metric ->
 * dev/test evaluation of every exit -> calibration of the exit policies on dev -> test through the
 * engine -> model.h5. Everything lands in cfg->run.dir. */
#ifndef EPEE_TRAINER_H
#define EPEE_TRAINER_H

#include "core/params.h"
#include "train/config.h"

/* TRAIN_NEW refuses a run.dir that already holds a run; TRAIN_OVERWRITE starts over in it; TRAIN_RESUME
 * continues the run of run.dir from its checkpoint.h5 (its saved config: trainer_resume loads it). */
typedef enum { TRAIN_NEW, TRAIN_OVERWRITE, TRAIN_RESUME } train_mode;

/* Full run. Every input is checked before run.dir is touched; run.dir is locked while the process works in it.
 * Returns 0, or -1 with e set; 128 + the signal when stopped by SIGINT, SIGTERM or SIGHUP (a checkpoint was
 * saved). */
int trainer_run(const epee_config *cfg, train_mode mode, epee_err *e);

/* Continues the run in dir from its checkpoint, with dir's config.yaml: dir is the run folder wherever it was
 * first written (its run.dir is replaced by dir). */
int trainer_resume(const char *dir, epee_err *e);

/* Called after every optimizer step with the step count and the parameters (NULL: none). For tests and
 * embedding applications: e.g. raise(SIGINT) to stop with a checkpoint as Ctrl-C does. */
typedef void (*trainer_step_hook)(long step, param_store *ps);
extern trainer_step_hook trainer_after_step;

/* Only the part after training (evaluate, calibrate, test, export) on the run folder run_dir (as resume). */
int trainer_calibrate_only(const char *run_dir, epee_err *e);

#endif
