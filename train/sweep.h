/* Hyperparameter sweeps: many runs of epee-train from one description, modelled on Hydra's multirun
 * (`key=a,b`, `key=range(1,4)` on the command line) and on W&B / Optuna sweep files (grid or random search).
 *
 * A sweep is a base config, fixed overrides and swept parameters. Planning expands it into trials (the grid
 * product, or `trials` seeded random draws) and checks EVERY trial's config against the schema before any
 * run starts. Each trial is one run folder inside the sweep folder, named by its overrides; running the same
 * sweep again skips finished trials, resumes interrupted ones from their checkpoint and starts the rest.
 * Results are gathered into sweep.csv, sweep.md and sweep.svg (dev accuracy against wall-clock speed-up with
 * the Pareto front), and the best trial by a dev-only rule is linked as best_model.h5.
 *
 *   sweep_plan p;
 *   if (sweep_plan_file(&p, "sweeps/go.yaml", &e) || sweep_plan_check(&p, &e) || sweep_run(&p, &opts, &e)) ...
 *   sweep_plan_free(&p);
 */
#ifndef EPEE_SWEEP_H
#define EPEE_SWEEP_H

#include <stdint.h>

#include "core/error.h"

typedef enum { SWEEP_VALUES, SWEEP_UNIFORM, SWEEP_LOGUNIFORM } sweep_kind;
typedef enum { SWEEP_GRID, SWEEP_RANDOM } sweep_method;

/* One swept key. values are YAML texts as an override takes them ("3e-4", "asc", "[1, 2, 3]"); where[i] says
 * where value i was written ("FILE:LINE:COL" or "--sweep argument 'k=...'"), for errors. */
typedef struct {
  char *key; /* section.key */
  sweep_kind kind;
  char **values, **where;
  int n;
  double lo, hi; /* uniform / loguniform bounds */
} sweep_param;

/* One trial: a value per parameter (set[i] = "key=value", where[i] its origin) and its folder name. */
typedef struct {
  char *name;
  char **set;
  const char **where;
  int n;
} sweep_trial;

typedef struct {
  char *config;                  /* the base config file */
  char **fixed, **fixed_where;   /* fixed overrides "key=value" for every trial */
  int n_fixed;
  sweep_param *params;
  int n_params;
  sweep_method method;
  int n_random;                  /* random: trials drawn */
  uint64_t seed;                 /* random: the draws are a function of it */
  char *dir;                     /* the sweep folder: `dir:` of the file, else the base config's run.dir */
  char *source;                  /* the sweep file, or "command line" */
  sweep_trial *trials;
  int n_trials;
} sweep_plan;

/* From the command line: `CONFIG --sweep ARG...` where an ARG with a top-level comma list or range(a,b[,step])
 * is swept and any other `key=value` is fixed. Expands the trials. Errors name the argument. */
int sweep_plan_args(sweep_plan *p, const char *config, int argc, char *const *argv, epee_err *e);

/* From a sweep file (YAML): config, dir, method (grid | random), trials, seed, overrides {key: value},
 * parameters {key: [values] | {values: [...]} | {range: [start, stop, step]} | {uniform: [lo, hi]} |
 * {loguniform: [lo, hi]}}. Errors name FILE:LINE:COL. */
int sweep_plan_file(sweep_plan *p, const char *path, epee_err *e);

/* Extra fixed overrides after a sweep file (`--sweep-file F key=value ...`); call before sweep_plan_check. */
int sweep_plan_add_fixed(sweep_plan *p, const char *assignment, const char *where, epee_err *e);

/* Every trial's config loaded, overridden, merged with model.init and validated; a trial folder that already
 * holds a run of another config is refused (naming the first key that differs) unless `overwrite`.
 * *max_threads gets the largest run.threads of the trials. Nothing is created. */
int sweep_plan_check(const sweep_plan *p, int overwrite, int *max_threads, epee_err *e);

/* Writes sweep.yaml: the expanded trials, each with its folder and overrides (atomically). */
int sweep_plan_write(const sweep_plan *p, const char *path, epee_err *e);

void sweep_plan_free(sweep_plan *p);

/* A trial's folder name from its assignments: "k=v,k2=v2" (Hydra's override_dirname), characters outside
 * [A-Za-z0-9._+=,-] replaced by '_', and a hash of the exact text appended when anything was replaced or the
 * name is long, so names are stable, filesystem-safe and distinct. malloc'ed. */
char *sweep_trial_name(char *const *set, int n);

/* v as a YAML scalar an override reads back as v: as is when plain, else single-quoted (malloc'ed). */
char *sweep_yaml_scalar(const char *v);

/* The folder of trial t: dir/name (malloc'ed). */
char *sweep_trial_dir(const sweep_plan *p, int t);

/* ---- running (sweep_run.c) and the report (sweep_report.c) --------------------------------------------- */

typedef enum { SWEEP_BEST_DEV_ACCURACY, SWEEP_BEST_FASTEST_WITHIN } sweep_best_kind;
typedef struct {
  sweep_best_kind kind;
  double within; /* fastest_within: largest dev-accuracy loss against the best trial (a fraction) */
} sweep_best_rule;

/* "dev-accuracy" or "fastest-within=X" (X a fraction, or a percentage with %). */
int sweep_best_parse(const char *s, sweep_best_rule *r, epee_err *e);

typedef struct {
  int jobs;        /* trials run at once, each in its own process */
  int threads;     /* the largest run.threads of the trials: jobs x threads must fit the cores */
  int overwrite;   /* start every trial over */
  sweep_best_rule best;
  const char *exe; /* the epee-train binary that runs trials (argv[0] of the sweep, resolved) */
} sweep_options;

/* Runs the checked plan. Returns 0 when every trial finished, 1 when any failed (the others ran), 128 + signal
 * when interrupted (running trials saved checkpoints), -1 with e set when the sweep itself could not go on. */
int sweep_run(const sweep_plan *p, const sweep_options *o, epee_err *e);

/* What a trial's folder says (results.json, summary.json, sweep_status.json). */
typedef enum { TRIAL_PENDING, TRIAL_DONE, TRIAL_INTERRUPTED, TRIAL_FAILED, TRIAL_RUNNING } trial_status;
extern const char *const trial_status_names[];

typedef struct {
  trial_status status;
  char error[512];        /* failed: its one-line error */
  double seconds;         /* wall time of the trial's processes, over resumes */
  double dev_acc, dev_f1; /* last exit, dev */
  int has_epee;           /* results.json holds the calibrated EPEE policy */
  double tau;
  int patience;
  double epee_dev_acc, mean_exit, layer_speedup, wall_speedup; /* EPEE on dev; wall: timed on test inputs */
  double test_acc, epee_test_acc;                              /* shown, never used to choose */
} trial_result;

/* Reads the trial folder dir. A folder without results is TRIAL_PENDING (or INTERRUPTED when it holds a
 * checkpoint, FAILED when sweep_status.json says so); never an error. */
void sweep_trial_read(const char *dir, trial_result *r);

/* Records a trial's status, error and seconds in dir/sweep_status.json (atomically). */
int sweep_trial_record(const char *dir, trial_status s, const char *error, double seconds, epee_err *e);

/* Writes sweep.csv, sweep.md and sweep.svg of the plan's trials into p->dir, and (when a trial qualifies)
 * best_model.h5 -> <trial>/model.h5 by the rule; *best gets the chosen trial's index, -1 if none. */
int sweep_report(const sweep_plan *p, const sweep_best_rule *rule, const trial_result *r, int *best,
                 epee_err *e);

#endif
