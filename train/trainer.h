/* epee-train's job: data -> multi-exit model trained jointly -> best checkpoint by dev metric ->
 * dev/test evaluation of every exit -> calibration of the exit policies on dev -> test through the
 * engine -> model.h5. Everything lands in cfg->run.dir. */
#ifndef EPEE_TRAINER_H
#define EPEE_TRAINER_H

#include "core/params.h"
#include "train/config.h"

/* Full run. resume_dir: continue the run in that folder from its checkpoint.h5 (NULL: fresh run).
 * Returns 0, or -1 with e set; 130 when interrupted by Ctrl-C (a checkpoint was saved). */
int trainer_run(const epee_config *cfg, const char *resume_dir, epee_err *e);

/* Called after every optimizer step with the step count and the parameters (NULL: none). For tests and
 * embedding applications: e.g. raise(SIGINT) to stop with a checkpoint as Ctrl-C does. */
typedef void (*trainer_step_hook)(long step, param_store *ps);
extern trainer_step_hook trainer_after_step;

/* Only the part after training (evaluate, calibrate, test, export) on an existing run folder. */
int trainer_calibrate_only(const char *run_dir, epee_err *e);

#endif
