/* Sweeps without running a trial: grid and range expansion from the command line, random search from a file
 * (seeded, reproducible), folder names, every error before anything runs (with the value's FILE:LINE:COL or
 * argument), a trial folder holding another config, the report (CSV, Markdown, SVG, Pareto front, best rules,
 * best_model.h5) and its atomic writes. tests/sweep_cli.sh runs real sweeps. */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "train/config.h"
#include "train/sweep.h"

static char dir[64], base[128], sweepf[128], sweepdir[128];

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

static int suite_init(void) {
  strcpy(dir, "/tmp/epee_test_sweep_XXXXXX");
  if (!mkdtemp(dir)) return -1;
  snprintf(base, sizeof base, "%s/base.yaml", dir);
  snprintf(sweepf, sizeof sweepf, "%s/s.yaml", dir);
  snprintf(sweepdir, sizeof sweepdir, "%s/sw", dir);
  char text[512];
  snprintf(text, sizeof text,
           "data: {train: t.tsv, dev: d.tsv, test: d.tsv}\n"
           "train: {max_steps: 10}\n"
           "run: {dir: %s}\n",
           sweepdir);
  return write_file(base, text);
}

static int suite_clean(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd);
}

static void expect_msg(const char *got, const char *want, int line) {
  if (strcmp(got, want)) printf("\n  test line %d\n    got:  %s\n    want: %s\n", line, got, want);
  CU_ASSERT_STRING_EQUAL(got, want);
}

/* The message of a failing sweep_plan_args, without the temp folder's name. */
static void args_fail_(char *const *argv, int argc, const char *want, int line) {
  sweep_plan p;
  epee_err e = {{0}};
  CU_ASSERT_EQUAL(sweep_plan_args(&p, base, argc, argv, &e), -1);
  expect_msg(e.msg, want, line);
  sweep_plan_free(&p);
}
#define ARGS_FAIL(want, ...) \
  args_fail_((char *const[]){__VA_ARGS__}, sizeof((char *const[]){__VA_ARGS__}) / sizeof(char *), want, __LINE__)

/* sweep file text -> plan; then the check; the first error with the file's path cut off, or "" when both pass. */
static const char *file_result(const char *text, sweep_plan *p, epee_err *e) {
  CU_ASSERT_FATAL(write_file(sweepf, text) == 0);
  int threads;
  if (sweep_plan_file(p, sweepf, e) || sweep_plan_check(p, 0, &threads, e))
    return strncmp(e->msg, sweepf, strlen(sweepf)) ? e->msg : e->msg + strlen(sweepf);
  return "";
}

static void test_grid_args(void) {
  sweep_plan p;
  epee_err e = {{0}};
  char *argv[] = {"train.lr=1e-3,3e-3", "model.layers=range(2,5)", "train.warmup=0.2", "calibrate.tau=[0.1,0.2]"};
  CU_ASSERT_EQUAL_FATAL(sweep_plan_args(&p, base, 4, argv, &e), 0);
  CU_ASSERT_EQUAL(p.n_params, 2);
  CU_ASSERT_EQUAL(p.n_fixed, 2); /* a single value, and a list value, are fixed */
  CU_ASSERT_STRING_EQUAL(p.fixed[1], "calibrate.tau=[0.1,0.2]");
  CU_ASSERT_STRING_EQUAL(p.dir, sweepdir); /* the base config's run.dir */
  CU_ASSERT_EQUAL_FATAL(p.n_trials, 6);
  CU_ASSERT_STRING_EQUAL(p.trials[0].name, "train.lr=1e-3,model.layers=2");
  CU_ASSERT_STRING_EQUAL(p.trials[1].name, "train.lr=1e-3,model.layers=3"); /* the last parameter fastest */
  CU_ASSERT_STRING_EQUAL(p.trials[5].name, "train.lr=3e-3,model.layers=4");
  CU_ASSERT_STRING_EQUAL(p.trials[5].set[1], "model.layers=4");
  int threads = 0;
  CU_ASSERT_EQUAL(sweep_plan_check(&p, 0, &threads, &e), 0);
  CU_ASSERT_EQUAL(threads, 2);
  struct stat st;
  CU_ASSERT_NOT_EQUAL(stat(sweepdir, &st), 0); /* checking creates nothing */
  sweep_plan_free(&p);

  char *floats[] = {"train.warmup=range(0,0.3,0.1)", "model.exit_dropout=range(0.3,0,-0.15)"};
  CU_ASSERT_EQUAL_FATAL(sweep_plan_args(&p, base, 2, floats, &e), 0);
  CU_ASSERT_EQUAL_FATAL(p.n_trials, 6);
  CU_ASSERT_STRING_EQUAL(p.params[0].values[1], "0.1"); /* not 0.10000000000000001 */
  CU_ASSERT_STRING_EQUAL(p.params[0].values[2], "0.2");
  CU_ASSERT_STRING_EQUAL(p.params[1].values[1], "0.15");
  sweep_plan_free(&p);
}

static void test_arg_errors(void) {
  ARGS_FAIL("--sweep argument 'train.lrr=1,2': 'train.lrr' is not a config key (see epee-train --help)",
            "train.lrr=1,2");
  ARGS_FAIL("--sweep argument 'run.dir=a,b': run.dir cannot be swept: each trial's folder is made inside the sweep "
            "folder",
            "run.dir=a,b");
  ARGS_FAIL("--sweep argument 'train.lr=3,4': train.lr is swept twice", "train.lr=1,2", "train.lr=3,4");
  ARGS_FAIL("--sweep argument 'train.lr=uniform(0,1)': random search needs a sweep file (method: random, trials, "
            "seed): --sweep-file",
            "train.lr=uniform(0,1)");
  ARGS_FAIL("--sweep argument 'model.layers=range(4,2)': range(4, 2, 1) is empty", "model.layers=range(4,2)");
  ARGS_FAIL("--sweep argument 'model.layers=range(1)': expected range(a, b[, step]) with numbers",
            "model.layers=range(1)");
  ARGS_FAIL("--sweep argument 'lr': expected section.key=value (or values a,b,c or range(a,b))", "lr");
  ARGS_FAIL("command line: nothing to sweep (give a key a list of values: key=a,b or range(a,b))", "train.lr=1e-3");
  /* a bad value is found by the check, before anything runs: the 2nd trial of 2 */
  sweep_plan p;
  epee_err e = {{0}};
  char *argv[] = {"train.lr=1e-3,abc"};
  CU_ASSERT_EQUAL_FATAL(sweep_plan_args(&p, base, 1, argv, &e), 0);
  int threads;
  CU_ASSERT_EQUAL(sweep_plan_check(&p, 0, &threads, &e), -1);
  expect_msg(e.msg, "--sweep argument 'train.lr=1e-3,abc': override 'train.lr=abc': train.lr: expected float, got 'abc'",
             __LINE__);
  sweep_plan_free(&p);
  char *rule[] = {"model.layers=2,3", "train.loss_weights=[1,2]"}; /* valid values, a rule between keys broken */
  CU_ASSERT_EQUAL_FATAL(sweep_plan_args(&p, base, 2, rule, &e), 0);
  CU_ASSERT_EQUAL(sweep_plan_check(&p, 0, &threads, &e), -1);
  expect_msg(e.msg, "command line: trial model.layers=3: config: train.loss_weights has 2 weights for 3 layers "
                    "(model.layers)", __LINE__);
  sweep_plan_free(&p);
}

static void test_file(void) {
  sweep_plan p;
  epee_err e = {{0}};
  char text[1024];
  snprintf(text, sizeof text,
           "config: %s\n"
           "dir: %s/other\n"
           "overrides:\n"
           "  train.warmup: 0.2\n"
           "parameters:\n"
           "  train.loss_weights: [asc, uniform, desc]\n"
           "  train.lr: {values: [1.0e-4, 3.0e-4]}\n"
           "  data.labels: [[a, b], ['x y', z]]\n",
           base, dir);
  expect_msg(file_result(text, &p, &e), "", __LINE__);
  CU_ASSERT_EQUAL(p.n_trials, 12);
  CU_ASSERT_EQUAL(p.n_fixed, 1);
  CU_ASSERT(strstr(p.dir, "/other") != NULL);
  CU_ASSERT_STRING_EQUAL(p.trials[0].set[2], "data.labels=[a, b]");
  CU_ASSERT_STRING_EQUAL(p.trials[1].set[2], "data.labels=['x y', z]");
  sweep_plan_free(&p);

  /* errors at the value's line:col; the check finds the bad value of the 3rd trial before any runs */
  snprintf(text, sizeof text, "config: %s\nparameters:\n  train.lr: [1.0e-4, 2.0e-4,\n     x]\n", base);
  expect_msg(file_result(text, &p, &e), ":4:6: override 'train.lr=x': train.lr: expected float, got 'x'", __LINE__);
  sweep_plan_free(&p);
  snprintf(text, sizeof text, "config: %s\nparameters:\n  train.lr: {uniform: [0, 1]}\n", base);
  expect_msg(file_result(text, &p, &e), ":3:13: train.lr: uniform and loguniform need method: random", __LINE__);
  sweep_plan_free(&p);
  snprintf(text, sizeof text, "config: %s\nmethod: random\ntrials: 3\nparameters:\n  train.lr: {loguniform: [0, 1]}\n",
           base);
  expect_msg(file_result(text, &p, &e), ":5:26: loguniform needs low > 0", __LINE__);
  sweep_plan_free(&p);
  snprintf(text, sizeof text, "config: %s\nparameter:\n  train.lr: [1, 2]\n", base);
  expect_msg(file_result(text, &p, &e),
             ":2:1: unknown key 'parameter' (expected config, dir, method, trials, seed, overrides, parameters)",
             __LINE__);
  sweep_plan_free(&p);
  snprintf(text, sizeof text, "config: %s\nparameters:\n  train.lr: 3\n", base);
  expect_msg(file_result(text, &p, &e),
             ":3:13: train.lr: expected a list of values, or one of {values: [...]}, {range: [start, stop, step]}, "
             "{uniform: [low, high]}, {loguniform: [low, high]}",
             __LINE__);
  sweep_plan_free(&p);
  snprintf(text, sizeof text, "config: %s\nmethod: random\nparameters:\n  train.lr: [1, 2]\n", base);
  expect_msg(file_result(text, &p, &e), ": method: random needs trials: N", __LINE__);
  sweep_plan_free(&p);
  snprintf(text, sizeof text, "config: %s\noverrides: {train.lr: 0.1}\nparameters:\n  train.epochs: [1, 0]\n", base);
  expect_msg(file_result(text, &p, &e), ":4:21: override 'train.epochs=0': train.epochs: must be in [1, 1048576], got 0",
             __LINE__);
  sweep_plan_free(&p);
  snprintf(text, sizeof text, "config: %s\nparameters:\n  train.lr: [1, [2\n", base);
  const char *msg = file_result(text, &p, &e);
  CU_ASSERT(strstr(msg, "YAML syntax error") != NULL);
  sweep_plan_free(&p);
}

static void test_random(void) {
  char text[1024];
  snprintf(text, sizeof text,
           "config: %s\nmethod: random\ntrials: 20\nseed: 5\nparameters:\n"
           "  train.lr: {loguniform: [1.0e-5, 1.0e-3]}\n"
           "  model.layers: {uniform: [2, 8]}\n"
           "  train.loss_weights: [asc, desc]\n"
           "  model.exit_dropout: {range: [0, 0.3, 0.1]}\n",
           base);
  sweep_plan a, b;
  epee_err e = {{0}};
  expect_msg(file_result(text, &a, &e), "", __LINE__);
  expect_msg(file_result(text, &b, &e), "", __LINE__);
  CU_ASSERT_EQUAL_FATAL(a.n_trials, b.n_trials);
  CU_ASSERT(a.n_trials >= 18); /* a repeated draw runs once; 20 draws of a continuous lr hardly repeat */
  int lo = 99, hi = 0, asc = 0;
  for (int t = 0; t < a.n_trials; t++) {
    CU_ASSERT_STRING_EQUAL(a.trials[t].name, b.trials[t].name); /* the same seed, the same trials */
    double lr = atof(strchr(a.trials[t].set[0], '=') + 1);
    CU_ASSERT(lr >= 1e-5 && lr <= 1e-3);
    const char *layers = strchr(a.trials[t].set[1], '=') + 1;
    CU_ASSERT(strspn(layers, "0123456789") == strlen(layers)); /* an int key draws integers */
    int l = atoi(layers);
    lo = l < lo ? l : lo, hi = l > hi ? l : hi;
    asc += strstr(a.trials[t].set[2], "asc") != NULL;
  }
  CU_ASSERT(lo >= 2 && hi <= 8 && hi > lo);
  CU_ASSERT(asc > 0 && asc < a.n_trials);
  sweep_plan_free(&b);
  char *seed6 = strstr(text, "seed: 5");
  seed6[6] = '6';
  expect_msg(file_result(text, &b, &e), "", __LINE__);
  CU_ASSERT_STRING_NOT_EQUAL(a.trials[0].name, b.trials[0].name);
  sweep_plan_free(&a), sweep_plan_free(&b);
}

static void test_names(void) {
  char *plain[] = {"train.lr=3e-4", "train.loss_weights=asc"};
  char *n = sweep_trial_name(plain, 2);
  CU_ASSERT_STRING_EQUAL(n, "train.lr=3e-4,train.loss_weights=asc");
  free(n);
  char *path1[] = {"data.train=/a b/c.tsv"}, *path2[] = {"data.train=/a_b/c.tsv"};
  char *n1 = sweep_trial_name(path1, 1), *n2 = sweep_trial_name(path2, 1), *n1again = sweep_trial_name(path1, 1);
  CU_ASSERT(strpbrk(n1, "/ ") == NULL);
  CU_ASSERT(strncmp(n1, "data.train=_a_b_c.tsv~", 22) == 0);
  CU_ASSERT_STRING_NOT_EQUAL(n1, n2); /* same after replacing, different texts */
  CU_ASSERT_STRING_EQUAL(n1, n1again);
  free(n1), free(n2), free(n1again);
  char longv[400] = "data.labels=[";
  for (int i = 0; i < 60; i++) strcat(longv, "ab,");
  strcat(longv, "c]");
  char *lv[] = {longv};
  n = sweep_trial_name(lv, 1);
  CU_ASSERT(strlen(n) <= 120);
  free(n);
}

static void test_existing_folder(void) {
  sweep_plan p;
  epee_err e = {{0}};
  char *argv[] = {"train.lr=1e-3,3e-3"};
  CU_ASSERT_EQUAL_FATAL(sweep_plan_args(&p, base, 1, argv, &e), 0);
  epee_config c;
  CU_ASSERT_EQUAL_FATAL(cfg_load(base, &c, &e), 0);
  char *tdir = sweep_trial_dir(&p, 1), path[512];
  CU_ASSERT_EQUAL(cfg_override(&c, "train.lr=3e-3", &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "train.max_steps=20", &e), 0); /* someone changed the base config since */
  mkdir(sweepdir, 0777), mkdir(tdir, 0777);
  snprintf(path, sizeof path, "%s/config.yaml", tdir);
  CU_ASSERT_EQUAL(cfg_write(&c, path, &e), 0);
  int threads;
  CU_ASSERT_EQUAL(sweep_plan_check(&p, 0, &threads, &e), -1);
  CU_ASSERT(strstr(e.msg, "train.lr=3e-3: holds a run of another config (train.max_steps: 10 in the sweep, 20 in the "
                          "folder); remove it, or rerun with --overwrite") != NULL);
  CU_ASSERT_EQUAL(sweep_plan_check(&p, 1, &threads, &e), 0); /* --overwrite */
  CU_ASSERT_EQUAL(cfg_override(&c, "train.max_steps=10", &e), 0); /* the same config: a trial to resume */
  CU_ASSERT_EQUAL(cfg_write(&c, path, &e), 0);
  CU_ASSERT_EQUAL(sweep_plan_check(&p, 0, &threads, &e), 0);
  cfg_free(&c);
  free(tdir);
  sweep_plan_free(&p);
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf %s", sweepdir);
  CU_ASSERT_EQUAL(system(cmd), 0);
}

static int count_tmp(const char *d) {
  DIR *dp = opendir(d);
  int n = 0;
  for (struct dirent *de; dp && (de = readdir(dp));) n += strstr(de->d_name, ".tmp") != NULL;
  if (dp) closedir(dp);
  return n;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return calloc(1, 1);
  char *s = calloc(1, 1 << 16);
  size_t n = fread(s, 1, (1 << 16) - 1, f);
  s[n] = 0;
  fclose(f);
  return s;
}

static void test_report(void) {
  sweep_plan p;
  epee_err e = {{0}};
  char *argv[] = {"train.lr=1,2,3,4"};
  CU_ASSERT_EQUAL_FATAL(sweep_plan_args(&p, base, 1, argv, &e), 0);
  mkdir(sweepdir, 0777);
  trial_result r[4] = {0};
  /* dev acc, wall speed-up: #1 (0.90, 3.0) #2 (0.95, 2.0) #3 (0.94, 4.0) #4 failed; #1 is dominated by #3 */
  const double acc[3] = {0.90, 0.95, 0.94}, wall[3] = {3.0, 2.0, 4.0};
  for (int t = 0; t < 3; t++)
    r[t] = (trial_result){.status = TRIAL_DONE, .seconds = 10, .dev_acc = acc[t], .dev_f1 = acc[t], .has_epee = 1,
                          .tau = 0.1, .patience = 2, .epee_dev_acc = acc[t], .mean_exit = 2, .layer_speedup = 3,
                          .wall_speedup = wall[t], .test_acc = 0.5, .epee_test_acc = 0.5};
  r[3] = (trial_result){.status = TRIAL_FAILED, .dev_acc = NAN, .dev_f1 = NAN, .epee_dev_acc = NAN, .mean_exit = NAN,
                        .layer_speedup = NAN, .wall_speedup = NAN, .test_acc = NAN, .epee_test_acc = NAN};
  strcpy(r[3].error, "data.train: x.tsv: cannot read it, \"quoted\"");
  sweep_best_rule rule;
  CU_ASSERT_EQUAL(sweep_best_parse("dev-accuracy", &rule, &e), 0);
  int best;
  CU_ASSERT_EQUAL(sweep_report(&p, &rule, r, &best, &e), 0);
  CU_ASSERT_EQUAL(best, 1);
  char path[256], target[256] = "";
  snprintf(path, sizeof path, "%s/best_model.h5", sweepdir);
  CU_ASSERT(readlink(path, target, sizeof target - 1) > 0);
  CU_ASSERT_STRING_EQUAL(target, "train.lr=2/model.h5");
  CU_ASSERT_EQUAL(sweep_best_parse("fastest-within=1.5%", &rule, &e), 0);
  CU_ASSERT_EQUAL(sweep_report(&p, &rule, r, &best, &e), 0);
  CU_ASSERT_EQUAL(best, 2); /* 0.94 is within 0.015 of 0.95, and faster */
  CU_ASSERT_EQUAL(sweep_best_parse("fastest-within=0.005", &rule, &e), 0);
  CU_ASSERT_EQUAL(sweep_report(&p, &rule, r, &best, &e), 0);
  CU_ASSERT_EQUAL(best, 1);
  CU_ASSERT_EQUAL(sweep_best_parse("fastest", &rule, &e), -1);
  CU_ASSERT_EQUAL(count_tmp(sweepdir), 0);

  snprintf(path, sizeof path, "%s/sweep.csv", sweepdir);
  char *csv = slurp(path);
  CU_ASSERT(strncmp(csv, "trial,folder,train.lr,status,seconds,dev_acc_last", 49) == 0);
  CU_ASSERT(strstr(csv, "\n2,train.lr=2,2,done,10.0,0.9500,0.9500,0.1,2,0.9500,2.00,3.00,2.00,0.5000,0.5000,\n") != NULL);
  CU_ASSERT(strstr(csv, "\n4,train.lr=4,4,failed,,,,,,,,,,,,\"data.train: x.tsv: cannot read it, \"\"quoted\"\"\"\n") != NULL);
  free(csv);
  snprintf(path, sizeof path, "%s/sweep.md", sweepdir);
  char *md = slurp(path);
  CU_ASSERT(strstr(md, "4 trials (grid), 3 done, 1 failed") != NULL);
  CU_ASSERT(strstr(md, "| 1 | 1 | done |") != NULL && strstr(md, "| 2 (best) | 2 | done |") != NULL);
  CU_ASSERT(strstr(md, "| 0.5000 | 0.5000 |  |\n| 2 (best)") != NULL); /* #1 is not on the front */
  CU_ASSERT(strstr(md, "| 0.5000 | 0.5000 | * |\n| 3 |") != NULL);     /* #2 is (the most accurate) */
  CU_ASSERT(strstr(md, "Trial 4 (train.lr=4) failed: data.train: x.tsv") != NULL);
  free(md);
  snprintf(path, sizeof path, "%s/sweep.svg", sweepdir);
  char *svg = slurp(path);
  CU_ASSERT(strstr(svg, ">#3</text>") != NULL && strstr(svg, "Pareto front") != NULL && strstr(svg, "class=\"ring\"") != NULL);
  CU_ASSERT(strstr(svg, ">#4</text>") == NULL); /* a failed trial has no point */
  free(svg);

  for (int t = 0; t < 3; t++) r[t].status = TRIAL_PENDING;
  CU_ASSERT_EQUAL(sweep_report(&p, &rule, r, &best, &e), 0);
  CU_ASSERT_EQUAL(best, -1);
  snprintf(path, sizeof path, "%s/best_model.h5", sweepdir);
  CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0); /* no stale choice */
  sweep_plan_free(&p);
}

static void test_atomic(void) {
  char path[160];
  snprintf(path, sizeof path, "%s/a.txt", dir);
  epee_err e = {{0}};
  CU_ASSERT_EQUAL(atomic_write_text(path, "first", &e), 0);
  atomic_file a;
  CU_ASSERT_FATAL(atomic_open(&a, path, &e) != NULL);
  fputs("half a fi", a.f);
  char *mid = slurp(path);
  CU_ASSERT_STRING_EQUAL(mid, "first\n"); /* readers see the old file while the new one is written */
  free(mid);
  atomic_abort(&a);
  char *after = slurp(path);
  CU_ASSERT_STRING_EQUAL(after, "first\n");
  free(after);
  CU_ASSERT_EQUAL(count_tmp(dir), 0);
  snprintf(path, sizeof path, "%s/none/a.txt", dir);
  CU_ASSERT_EQUAL(atomic_write_text(path, "x", &e), -1);
  CU_ASSERT(strstr(e.msg, "none/a.txt.tmp.") != NULL);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("sweep", suite_init, suite_clean);
  CU_add_test(s, "grid and ranges from the command line", test_grid_args);
  CU_add_test(s, "command-line errors, before any run", test_arg_errors);
  CU_add_test(s, "sweep file and its errors at line:col", test_file);
  CU_add_test(s, "random search is seeded and reproducible", test_random);
  CU_add_test(s, "folder names", test_names);
  CU_add_test(s, "a trial folder holding another config", test_existing_folder);
  CU_add_test(s, "report: csv, md, svg, Pareto, best", test_report);
  CU_add_test(s, "atomic writes", test_atomic);
}
