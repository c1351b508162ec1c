/* epee-train: train a multi-exit transformer from a YAML config, calibrate its exit policy on dev,
 * evaluate on test and export one model file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dnnl_wrap.h"
#include "core/machine.h"
#include "infer/epee.h"
#include "train/hf_init.h"
#include "train/sweep.h"
#include "train/trainer.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: epee-train [--overwrite] CONFIG.yaml [--profile] [section.key=value ...]\n"
          "                                          train, calibrate, test, export (--profile: run.profile=true)\n"
          "       epee-train --resume RUN_DIR       continue an interrupted run exactly\n"
          "       epee-train --calibrate RUN_DIR    redo calibration, test and export only\n"
          "       epee-train --export-hf RUN_DIR DIR  write RUN_DIR's model as a HuggingFace folder DIR\n"
          "       epee-train [--overwrite] CONFIG.yaml --sweep key=a,b key2=range(1,4) [key=value ...] [SWEEP OPTIONS]\n"
          "       epee-train [--overwrite] --sweep-file SWEEP.yaml [key=value ...] [SWEEP OPTIONS]\n"
          "                                          a sweep: one run per trial, resumable, compared in one table\n"
          "       epee-train --help | --version\n\n"
          "Outputs go to run.dir: config.yaml, metrics.jsonl, checkpoint.h5, summary.json,\n"
          "calibration.csv/.svg, results.md/.json, model.h5. A run.dir that already holds a run is refused\n"
          "unless --overwrite; one process at a time works in a run folder (its .lock names the holder).\n"
          "Ctrl-C, SIGTERM and SIGHUP save a checkpoint and exit; RUN_DIR is the run folder wherever it now is.\n\n"
          "Sweeps: an argument with a comma list (key=a,b) or range(start,stop[,step]) is swept, the grid product\n"
          "of them run, others are fixed. A sweep file gives config, dir, method (grid|random), trials, seed,\n"
          "overrides and parameters (lists, {range: [a, b, step]}, {uniform: [lo, hi]}, {loguniform: [lo, hi]}).\n"
          "Every trial is checked before the first starts. The sweep folder (run.dir, or the file's dir) gets a run\n"
          "folder per trial, sweep.yaml, sweep.csv, sweep.md, sweep.svg and best_model.h5. Rerunning the same sweep\n"
          "skips finished trials and resumes interrupted ones; a failed trial does not stop the others (exit 1).\n"
          "  --jobs N            trials at once, each a process of run.threads threads (N x threads <= cores)\n"
          "  --sweep-best RULE   dev-accuracy (default: the best dev accuracy of the calibrated EPEE policy), or\n"
          "                      fastest-within=X: the fastest (wall clock) within X (0.005 or 0.5%%) of it\n"
          "  --overwrite         start every trial over\n");
}

/* `... --sweep ...` or `--sweep-file F ...`: plan, check every trial, run. */
static int sweep_main(int argc, char **argv, epee_err *e) {
  const char *file = NULL, *config = NULL;
  char **assign = epee_malloc(sizeof(char *) * (size_t)argc);
  int n_assign = 0, sweep = 0;
  char exe[4096]; /* the trials run this very binary */
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[len > 0 ? len : 0] = 0;
  sweep_options o = {.jobs = 1, .exe = len > 0 ? exe : argv[0]};
  int rc = 0;
  for (int i = 1; i < argc && !rc; i++) {
    const char *a = argv[i];
    int has_value = i + 1 < argc;
    if (!strcmp(a, "--overwrite")) o.overwrite = 1;
    else if (!strcmp(a, "--sweep")) sweep = 1;
    else if (!strcmp(a, "--sweep-file") && has_value) file = argv[++i];
    else if (!strcmp(a, "--jobs") && has_value) {
      char *end;
      long j = strtol(argv[++i], &end, 10);
      if (*end || end == argv[i] || j < 1 || j > 64) rc = epee_errf(e, "--jobs '%s': expected 1 to 64", argv[i]);
      o.jobs = (int)j;
    } else if (!strcmp(a, "--sweep-best") && has_value) rc = sweep_best_parse(argv[++i], &o.best, e);
    else if (a[0] == '-') rc = epee_errf(e, "unknown option or missing value: '%s' (see --help)", a);
    else if (strchr(a, '=')) assign[n_assign++] = argv[i];
    else if (!config) config = a;
    else rc = epee_errf(e, "'%s': expected key=value (the config is %s)", a, config);
  }
  if (!rc && file && (sweep || config))
    rc = epee_errf(e, "--sweep-file takes the base config from the file: give either CONFIG --sweep ... or --sweep-file");
  if (!rc && !file && !config) rc = epee_errf(e, "--sweep needs a CONFIG.yaml");
  sweep_plan p;
  memset(&p, 0, sizeof p);
  if (!rc) rc = file ? sweep_plan_file(&p, file, e) : sweep_plan_args(&p, config, n_assign, assign, e);
  for (int i = 0; file && !rc && i < n_assign; i++) {
    char where[600];
    snprintf(where, sizeof where, "argument '%.560s'", assign[i]);
    rc = sweep_plan_add_fixed(&p, assign[i], where, e);
  }
  if (!rc) rc = sweep_plan_check(&p, o.overwrite, &o.threads, e);
  if (!rc) rc = sweep_run(&p, &o, e);
  sweep_plan_free(&p);
  free(assign);
  return rc;
}

int main(int argc, char **argv) {
  machine_gentle_openmp(argv); /* OpenMP that yields to other processes (core/machine.h) */
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(stdout);
    printf("\nConfig keys (YAML sections; override any with section.key=value):\n");
    cfg_print_help(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("epee-train %s\n", epee_version());
    return 0;
  }
  epee_err e = {{0}};
  int rc;
  int sweep = 0;
  for (int i = 1; i < argc; i++) sweep |= !strcmp(argv[i], "--sweep") || !strcmp(argv[i], "--sweep-file");
  if (sweep) {
    rc = sweep_main(argc, argv, &e);
  } else if (!strcmp(argv[1], "--calibrate")) {
    if (argc != 3) {
      fprintf(stderr, "epee-train: --calibrate takes exactly one RUN_DIR\n");
      return 2;
    }
    rc = trainer_calibrate_only(argv[2], &e);
  } else if (!strcmp(argv[1], "--resume")) {
    if (argc != 3) {
      fprintf(stderr, "epee-train: --resume takes exactly one RUN_DIR (its saved config.yaml is used as is)\n");
      return 2;
    }
    rc = trainer_resume(argv[2], &e);
  } else if (!strcmp(argv[1], "--export-hf")) {
    if (argc != 4) {
      fprintf(stderr, "epee-train: --export-hf takes RUN_DIR (its model file) and the folder to write\n");
      return 2;
    }
    rc = hf_export_run(argv[2], argv[3], &e);
  } else {
    int overwrite = !strcmp(argv[1], "--overwrite"), first = 1 + overwrite;
    if (first >= argc || argv[first][0] == '-') {
      fprintf(stderr, "epee-train: %s '%s' (see --help)\n", first >= argc ? "no CONFIG.yaml after" : "unknown option",
                      first >= argc ? argv[1] : argv[first]);
      return 2;
    }
    epee_config cfg;
    rc = cfg_load(argv[first], &cfg, &e);
    for (int i = first + 1; rc == 0 && i < argc; i++)
      rc = cfg_override(&cfg, strcmp(argv[i], "--profile") ? argv[i] : "run.profile=true", &e);
    if (rc == 0) rc = hf_init_config(&cfg, &e); /* model.init's config.json, tokenizer, preprocessing */
    if (rc == 0) rc = cfg_validate(&cfg, &e);
    if (rc == 0) rc = trainer_run(&cfg, overwrite ? TRAIN_OVERWRITE : TRAIN_NEW, &e);
    cfg_free(&cfg);
  }
  dw_shutdown();
  if (rc > 128) return rc; /* stopped by a signal, with a checkpoint: the shell's convention */
  if (rc == 1) return 1;    /* a sweep with failed trials: each named in its table and output */
  if (rc) {
    fprintf(stderr, "epee-train: %s\n", e.msg);
    return 1;
  }
  return 0;
}
