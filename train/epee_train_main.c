/* epee-train: train a multi-exit transformer from a YAML config, calibrate its exit policy on dev,
 * evaluate on test and export one model file. */
#include <stdio.h>
#include <string.h>

#include "core/dnnl_wrap.h"
#include "infer/epee.h"
#include "train/hf_init.h"
#include "train/trainer.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: epee-train [--overwrite] CONFIG.yaml [section.key=value ...]   train, calibrate, test, export\n"
          "       epee-train --resume RUN_DIR       continue an interrupted run exactly\n"
          "       epee-train --calibrate RUN_DIR    redo calibration, test and export only\n"
          "       epee-train --export-hf RUN_DIR DIR  write RUN_DIR's model as a HuggingFace folder DIR\n"
          "       epee-train --help | --version\n\n"
          "Outputs go to run.dir: config.yaml, metrics.jsonl, checkpoint.h5, summary.json,\n"
          "calibration.csv/.svg, results.md/.json, model.h5. A run.dir that already holds a run is refused\n"
          "unless --overwrite; one process at a time works in a run folder (its .lock names the holder).\n"
          "Ctrl-C, SIGTERM and SIGHUP save a checkpoint and exit; RUN_DIR is the run folder wherever it now is.\n");
}

int main(int argc, char **argv) {
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
  if (!strcmp(argv[1], "--calibrate")) {
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
    for (int i = first + 1; rc == 0 && i < argc; i++) rc = cfg_override(&cfg, argv[i], &e);
    if (rc == 0) rc = hf_init_config(&cfg, &e); /* model.init's config.json, tokenizer, preprocessing */
    if (rc == 0) rc = cfg_validate(&cfg, &e);
    if (rc == 0) rc = trainer_run(&cfg, overwrite ? TRAIN_OVERWRITE : TRAIN_NEW, &e);
    cfg_free(&cfg);
  }
  dw_shutdown();
  if (rc > 128) return rc; /* stopped by a signal, with a checkpoint: the shell's convention */
  if (rc) {
    fprintf(stderr, "epee-train: %s\n", e.msg);
    return 1;
  }
  return 0;
}
