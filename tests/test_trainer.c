/* The trainer end to end on a tiny synthetic text task: a run writes every output; a run stopped by
 * Ctrl-C and resumed logs exactly the losses of an uninterrupted run; a NaN stops the run naming the
 * step and the last good checkpoint, and no NaN checkpoint is written; early stopping ends the run at the
 * evaluation it should. */
#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/rng.h"
#include "train/trainer.h"

static char dir[64];

static void write_file(const char *name, const char *text) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  fputs(text, f);
  fclose(f);
}

/* words w0..w19; label A when the first word is w0..w9, else B */
static void write_split(const char *name, int n, uint64_t stream) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  fprintf(f, "text\tlabel\n");
  for (int i = 0; i < n; i++) {
    int len = 3 + (int)(rng_hash(3, stream, (uint64_t)i * 97) % 6), first = 0;
    for (int k = 0; k < len; k++) {
      int w = (int)(rng_hash(3, stream, (uint64_t)i * 97 + 1 + (uint64_t)k) % 20);
      if (k == 0) first = w;
      fprintf(f, "%sw%d", k ? " " : "", w);
    }
    fprintf(f, "\t%s\n", first < 10 ? "A" : "B");
  }
  fclose(f);
}

static int setup(void) {
  snprintf(dir, sizeof dir, "/tmp/epee-trainer-XXXXXX");
  if (!mkdtemp(dir)) return 1;
  char vocab[1024] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (int i = 0; i < 20; i++) snprintf(vocab + strlen(vocab), sizeof vocab - strlen(vocab), "w%d\n", i);
  write_file("vocab.txt", vocab);
  write_split("train.tsv", 96, 1);
  write_split("dev.tsv", 40, 2);
  write_split("test.tsv", 40, 3);
  return 0;
}

static int teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) != 0;
}

static void tiny_config(epee_config *c, const char *run) {
  char kv[512];
  cfg_defaults(c);
  const char *sets[] = {"model.layers=3", "model.hidden=16", "model.heads=2", "model.intermediate=32",
                        "model.max_position=16", "tokenizer.max_length=12", "train.batch_size=8",
                        "train.max_steps=12", "train.eval_every=4", "train.log_every=1", "train.lr=0.003",
                        "calibrate.batch=16", "run.threads=2"};
  epee_err e;
  for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) CU_ASSERT_FATAL(cfg_override(c, sets[i], &e) == 0);
  snprintf(kv, sizeof kv, "tokenizer.vocab=%s/vocab.txt", dir);
  CU_ASSERT_FATAL(cfg_override(c, kv, &e) == 0);
  const char *splits[] = {"train", "dev", "test"};
  for (int s = 0; s < 3; s++) {
    snprintf(kv, sizeof kv, "data.%s=%s/%s.tsv", splits[s], dir, splits[s]);
    CU_ASSERT_FATAL(cfg_override(c, kv, &e) == 0);
  }
  snprintf(kv, sizeof kv, "run.dir=%s/%s", dir, run);
  CU_ASSERT_FATAL(cfg_override(c, kv, &e) == 0);
  CU_ASSERT_FATAL(cfg_validate(c, &e) == 0);
}

/* the "loss" and "loss_exits" of each step line of metrics.jsonl, concatenated */
static char *losses(const char *run) {
  char p[256], line[4096];
  snprintf(p, sizeof p, "%s/%s/metrics.jsonl", dir, run);
  FILE *f = fopen(p, "r");
  if (!f) return strdup("");
  size_t cap = 1 << 16, n = 0;
  char *out = calloc(cap, 1);
  while (fgets(line, sizeof line, f)) {
    char *a = strstr(line, "\"loss\""), *b = strstr(line, ",\"lr\"");
    if (!a || !b || strstr(line, "\"eval\"")) continue;
    n += (size_t)snprintf(out + n, cap - n, "%.*s\n", (int)(b - a), a);
  }
  fclose(f);
  return out;
}

static int exists(const char *run, const char *file) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s/%s", dir, run, file);
  return access(p, R_OK) == 0;
}

static void stop_at_6(long step, param_store *ps) {
  (void)ps;
  if (step == 6) raise(SIGINT);
}

static void test_run_and_resume(void) {
  epee_config c;
  epee_err e = {{0}};
  tiny_config(&c, "full");
  trainer_after_step = NULL;
  int rc = trainer_run(&c, NULL, &e);
  if (rc) printf("  trainer: %s\n", e.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  const char *outs[] = {"config.yaml", "metrics.jsonl", "checkpoint.h5", "summary.json", "calibration.csv",
                        "calibration.svg", "results.md", "results.json", "model.h5"};
  for (size_t i = 0; i < sizeof outs / sizeof *outs; i++) CU_ASSERT(exists("full", outs[i]));
  /* every policy's engine run agrees with its simulation on all 40 test rows */
  char p[256], json[8192] = "";
  snprintf(p, sizeof p, "%s/full/results.json", dir);
  FILE *f = fopen(p, "r");
  CU_ASSERT_FATAL(f != NULL);
  size_t got = fread(json, 1, sizeof json - 1, f);
  fclose(f);
  json[got] = '\0';
  int policies = 0, agree = 0;
  for (const char *q = json; (q = strstr(q, "\"tau\"")); q++) policies++;
  for (const char *q = json; (q = strstr(q, "\"engine_equals_simulation\":40}")); q++) agree++;
  CU_ASSERT(policies >= 4 && agree == policies);
  cfg_free(&c);

  tiny_config(&c, "resumed");
  trainer_after_step = stop_at_6;
  CU_ASSERT_EQUAL(trainer_run(&c, NULL, &e), 130);
  trainer_after_step = NULL;
  CU_ASSERT_EQUAL(trainer_run(&c, c.run.dir, &e), 0);
  char *a = losses("full"), *b = losses("resumed");
  printf("  uninterrupted vs stopped at step 6 and resumed: %zu bytes of loss lines, %s\n", strlen(a),
         strcmp(a, b) == 0 ? "identical" : "DIFFERENT");
  CU_ASSERT(strlen(a) > 100);
  CU_ASSERT_STRING_EQUAL(a, b);
  free(a), free(b);
  cfg_free(&c);
}

static void poison_at_6(long step, param_store *ps) {
  if (step == 6) ps->t[0]->data[2 * 16] = NAN; /* the word embedding of [CLS] (id 2): every row uses it */
}

static void test_nan_stops(void) {
  epee_config c;
  epee_err e = {{0}};
  tiny_config(&c, "nan");
  trainer_after_step = poison_at_6;
  int rc = trainer_run(&c, NULL, &e);
  trainer_after_step = NULL;
  printf("  trainer: %s\n", e.msg);
  CU_ASSERT_EQUAL(rc, -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "step 7"));
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "checkpoint.h5 (step 4)"));
  CU_ASSERT_FALSE(exists("nan", "model.h5"));
  cfg_free(&c);
}

/* the largest "step" of metrics.jsonl and how many dev evaluations it records */
static long last_step(const char *run, int *evals) {
  char p[256], line[4096];
  snprintf(p, sizeof p, "%s/%s/metrics.jsonl", dir, run);
  FILE *f = fopen(p, "r");
  long last = -1;
  *evals = 0;
  while (f && fgets(line, sizeof line, f)) {
    long s = strtol(line + strlen("{\"step\":"), NULL, 10);
    if (s > last) last = s;
    *evals += strstr(line, "\"eval\"") != NULL;
  }
  if (f) fclose(f);
  return last;
}

/* lr 0: the first evaluation is the best and nothing improves after it, so early_stop=2 ends the run at the
 * third evaluation (step 6 of 12), and calibration and export still follow. */
static void test_early_stop(void) {
  epee_config c;
  epee_err e = {{0}};
  tiny_config(&c, "early");
  const char *sets[] = {"train.lr=0", "train.eval_every=2", "train.early_stop=2"};
  for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) CU_ASSERT_FATAL(cfg_override(&c, sets[i], &e) == 0);
  trainer_after_step = NULL;
  CU_ASSERT_EQUAL(trainer_run(&c, NULL, &e), 0);
  int evals = 0;
  CU_ASSERT_EQUAL(last_step("early", &evals), 6);
  CU_ASSERT_EQUAL(evals, 3);
  CU_ASSERT(exists("early", "model.h5") && exists("early", "results.json"));
  cfg_free(&c);

  tiny_config(&c, "no_early"); /* the same run without early_stop goes the whole way */
  CU_ASSERT_FATAL(cfg_override(&c, "train.lr=0", &e) == 0 && cfg_override(&c, "train.eval_every=2", &e) == 0);
  CU_ASSERT_EQUAL(trainer_run(&c, NULL, &e), 0);
  CU_ASSERT_EQUAL(last_step("no_early", &evals), 12);
  CU_ASSERT_EQUAL(evals, 6);
  cfg_free(&c);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("trainer", setup, teardown);
  CU_add_test(s, "a run writes every output; stop + resume = uninterrupted", test_run_and_resume);
  CU_add_test(s, "NaN stops the run naming the step and the last good checkpoint", test_nan_stops);
  CU_add_test(s, "early stop after train.early_stop evaluations without improvement", test_early_stop);
}
