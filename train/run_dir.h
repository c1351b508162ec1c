/* A run folder that one writer at a time owns: an exclusive flock on DIR/.lock (the kernel releases it when
 * the process dies, however it dies), the holder's pid written inside so a refused second writer can name it;
 * the stale temp files of killed writers removed; a new run refused where a run already is. */
#ifndef EPEE_RUN_DIR_H
#define EPEE_RUN_DIR_H

#include "core/error.h"

/* Creates dir (and its parents) if needed and takes its lock. Returns the lock's fd (>= 0), or -1 with e set,
 * "DIR: in use by another epee-train (pid N)" when another process holds it. */
int run_dir_lock(const char *dir, epee_err *e);
void run_dir_unlock(int fd);

/* Removes DIR/<name>.tmp.<pid> files whose writer pid no longer runs (a kill during an atomic write);
 * returns how many. Call with the lock held. */
int run_dir_remove_stale_tmp(const char *dir);

/* 1 when dir already holds a run (its config.yaml or checkpoint.h5). */
int run_dir_has_run(const char *dir);

/* 0 when dir/checkpoint.h5 exists; otherwise -1 with a message saying the run has none yet and what to do.
 * `doing` is what needed it ("resume", "calibrate"). */
int run_dir_need_checkpoint(const char *dir, const char *doing, epee_err *e);

#endif
