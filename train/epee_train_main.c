/* epee-train: train a multi-exit transformer from a YAML config, calibrate its exit policy on dev,
 * evaluate on test and export one model file. */
#include <stdio.h>
#include <string.h>

#include "core/dnnl_wrap.h"
#include "train/trainer.h"

#define EPEE_VERSION "0.1.0"

static void usage(FILE *f) {
  fprintf(f,
          "usage: epee-train CONFIG.yaml [section.key=value ...]   train, calibrate, test, export\n"
          "       epee-train --resume RUN_DIR                         continue an interrupted run exactly\n"
          "       epee-train --calibrate RUN_DIR                      redo calibration, test and export only\n"
          "       epee-train --help | --version\n\n"
          "Outputs go to run.dir: config.yaml, metrics.jsonl, checkpoint.h5, summary.json,\n"
          "calibration.csv/.svg, results.md/.json, model.h5. Ctrl-C saves a checkpoint and exits.\n\n"
          "Config keys (YAML sections; override any with section.key=value):\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(stdout);
    cfg_print_help(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("epee-train %s\n", EPEE_VERSION);
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
  } else {
    const char *resume = NULL, *config = argv[1];
    char path[4096];
    if (!strcmp(argv[1], "--resume")) {
      if (argc != 3) {
        fprintf(stderr, "epee-train: --resume takes exactly one RUN_DIR (its saved config.yaml is used as is)\n");
        return 2;
      }
      resume = argv[2];
      snprintf(path, sizeof path, "%s/config.yaml", resume);
      config = path;
    } else if (argv[1][0] == '-') {
      fprintf(stderr, "epee-train: unknown option '%s' (see --help)\n", argv[1]);
      return 2;
    }
    epee_config cfg;
    rc = cfg_load(config, &cfg, &e);
    for (int i = 2; rc == 0 && !resume && i < argc; i++) rc = cfg_override(&cfg, argv[i], &e);
    if (rc == 0) rc = cfg_validate(&cfg, &e);
    if (rc == 0) rc = trainer_run(&cfg, resume, &e);
    cfg_free(&cfg);
  }
  dw_shutdown();
  if (rc == 130) return 130;
  if (rc) {
    fprintf(stderr, "epee-train: %s\n", e.msg);
    return 1;
  }
  return 0;
}
