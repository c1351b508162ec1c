/* Config: defaults, loading, every error kind at its exact line:column (worked out by counting characters
 * in the YAML below; libyaml's own messages taken from its source), overrides, lists, both forms of
 * weights, validation rules, write -> load round trip, help, the shipped configs, and garbage input. */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/machine.h"
#include "models/model.h"
#include "train/config.h"

static char dir[64];
static char path[128]; /* the YAML file every test writes */

static int suite_init(void) {
  strcpy(dir, "/tmp/epee_test_config_XXXXXX");
  if (!mkdtemp(dir)) return -1;
  snprintf(path, sizeof path, "%s/c.yaml", dir);
  return 0;
}

static int suite_clean(void) {
  char p[160];
  snprintf(p, sizeof p, "%s/out.yaml", dir);
  unlink(p);
  unlink(path);
  return rmdir(dir);
}

static void write_text(const char *text) {
  FILE *f = fopen(path, "wb");
  CU_ASSERT_FATAL(f != NULL);
  fputs(text, f);
  fclose(f);
}

/* Loads `text`; returns cfg_load's result, the config in *c (caller frees). */
static int load_text(const char *text, epee_config *c, epee_err *e) {
  write_text(text);
  return cfg_load(path, c, e);
}

static void expect_msg(const char *got, const char *want, int line) {
  if (strcmp(got, want)) printf("\n  test line %d\n    got:  %s\n    want: %s\n", line, got, want);
  CU_ASSERT_STRING_EQUAL(got, want);
}

/* Loading `text` must fail with "path:" + want. */
static void load_fails_(const char *text, const char *want, int line) {
  epee_config c;
  epee_err e = {{0}};
  CU_ASSERT_EQUAL(load_text(text, &c, &e), -1);
  char full[1200];
  snprintf(full, sizeof full, "%s:%s", path, want);
  expect_msg(e.msg, full, line);
  cfg_free(&c);
}
#define load_fails(text, want) load_fails_(text, want, __LINE__)

static void override_fails_(epee_config *c, const char *a, const char *want, int line) {
  epee_err e = {{0}};
  CU_ASSERT_EQUAL(cfg_override(c, a, &e), -1);
  expect_msg(e.msg, want, line);
}
#define override_fails(c, a, want) override_fails_(c, a, want, __LINE__)

static void validate_fails_(const epee_config *c, const char *want, int line) {
  epee_err e = {{0}};
  CU_ASSERT_EQUAL(cfg_validate(c, &e), -1);
  expect_msg(e.msg, want, line);
}
#define validate_fails(c, want) validate_fails_(c, want, __LINE__)

/* model.arch is an index into the backbone registry's names */
static int arch_index(const char *name) {
  for (int i = 0; model_arch_names[i]; i++)
    if (!strcmp(model_arch_names[i], name)) return i;
  CU_FAIL("arch not in model_arch_names");
  return -1;
}

#define REQUIRED_YAML "data:\n  train: a.tsv\n  dev: b.tsv\n  test: c.tsv\nrun:\n  dir: runs/x\n"

static void test_defaults(void) {
  epee_config c;
  cfg_defaults(&c);
  CU_ASSERT_EQUAL(c.model.arch, arch_index("bert"));
  CU_ASSERT_STRING_EQUAL(model_arch_names[c.model.arch], "bert");
  CU_ASSERT_EQUAL(c.model.hidden, 256);
  CU_ASSERT_EQUAL(c.model.layers, 6);
  CU_ASSERT_EQUAL(c.model.heads, 4);
  CU_ASSERT_EQUAL(c.model.intermediate, 1024);
  CU_ASSERT_EQUAL(c.model.max_position, 512);
  CU_ASSERT_EQUAL(c.model.type_vocab, 2);
  CU_ASSERT_EQUAL(c.model.embedding_size, 128);
  CU_ASSERT_EQUAL(c.model.hidden_groups, 1);
  CU_ASSERT_TRUE(c.model.exit_norm);
  CU_ASSERT_EQUAL(c.model.hidden_dropout, 0.1);
  CU_ASSERT_EQUAL(c.model.attention_dropout, 0.1);
  CU_ASSERT_EQUAL(c.model.exit_dropout, 0.1);
  CU_ASSERT_EQUAL(c.model.layer_norm_eps, 1e-12);
  CU_ASSERT_EQUAL(c.model.init_std, 0.02);
  CU_ASSERT_EQUAL(c.model.num_labels, 0);
  CU_ASSERT_STRING_EQUAL(c.tokenizer.kind, "");
  CU_ASSERT_STRING_EQUAL(cfg_tokenizer_kind(&c), "wordpiece"); /* "" = the arch's own */
  CU_ASSERT_STRING_EQUAL(c.tokenizer.vocab, "data/cache/vocab/vocab.txt");
  CU_ASSERT_STRING_EQUAL(c.tokenizer.merges, "");
  CU_ASSERT_TRUE(c.tokenizer.lowercase);
  CU_ASSERT_EQUAL(c.tokenizer.max_length, 128);
  CU_ASSERT_STRING_EQUAL(c.data.train, "");
  CU_ASSERT_STRING_EQUAL(c.data.dev, "");
  CU_ASSERT_STRING_EQUAL(c.data.test, "");
  CU_ASSERT_EQUAL(c.data.format, CFG_FORMAT_AUTO);
  CU_ASSERT_STRING_EQUAL(c.data.text_column, "text");
  CU_ASSERT_STRING_EQUAL(c.data.text_b_column, "");
  CU_ASSERT_STRING_EQUAL(c.data.label_column, "label");
  CU_ASSERT_EQUAL(c.data.labels.n, 0);
  CU_ASSERT_EQUAL(c.train.epochs, 3);
  CU_ASSERT_EQUAL(c.train.max_steps, 0);
  CU_ASSERT_EQUAL(c.train.batch_size, 32);
  CU_ASSERT_EQUAL(c.train.lr, 1e-4);
  CU_ASSERT_EQUAL(c.train.exit_lr, 0.0);
  CU_ASSERT_EQUAL(c.train.weight_decay, 0.01);
  CU_ASSERT_EQUAL(c.train.warmup, 0.1);
  CU_ASSERT_EQUAL(c.train.clip, 1.0);
  CU_ASSERT_EQUAL(c.train.adam_beta1, 0.9);
  CU_ASSERT_EQUAL(c.train.adam_beta2, 0.999);
  CU_ASSERT_EQUAL(c.train.adam_eps, 1e-8);
  CU_ASSERT_EQUAL(c.train.loss_weights.kind, CFG_WEIGHTS_ASC);
  CU_ASSERT_EQUAL(c.train.eval_every, 200);
  CU_ASSERT_EQUAL(c.train.best_metric, CFG_BEST_LAST_ACC);
  CU_ASSERT_EQUAL(c.train.early_stop, 0);
  CU_ASSERT_EQUAL(c.train.log_every, 20);
  const char *policies[] = {"none", "entropy", "patience", "epee", "pcee"};
  CU_ASSERT_EQUAL_FATAL(c.calibrate.policies.n, 5);
  for (int i = 0; i < 5; i++) CU_ASSERT_STRING_EQUAL(c.calibrate.policies.v[i], policies[i]);
  const double tau[] = {0.001, 0.005, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1};
  CU_ASSERT_EQUAL_FATAL(c.calibrate.tau.n, 11);
  for (int i = 0; i < 11; i++) CU_ASSERT_EQUAL(c.calibrate.tau.v[i], tau[i]);
  CU_ASSERT_EQUAL(c.calibrate.tau_range.n, 0);
  CU_ASSERT_EQUAL(c.calibrate.metric, CFG_METRIC_ACCURACY);
  CU_ASSERT_EQUAL(c.calibrate.max_recall_drop, 1.0);
  CU_ASSERT_EQUAL(c.calibrate.risk, CFG_RISK_DISAGREEMENT);
  CU_ASSERT_EQUAL(c.calibrate.epsilon, 0.005);
  CU_ASSERT_EQUAL(c.calibrate.delta, 0.1);
  CU_ASSERT_FALSE(c.calibrate.temperature);
  CU_ASSERT_EQUAL(c.calibrate.patience.n, 0);
  CU_ASSERT_EQUAL(c.calibrate.rule, CFG_RULE_FASTEST_WITHIN);
  CU_ASSERT_EQUAL(c.calibrate.within, 0.005);
  CU_ASSERT_EQUAL(c.calibrate.layer_budget, 0.0);
  CU_ASSERT_EQUAL(c.calibrate.batch, 64);
  CU_ASSERT_STRING_EQUAL(c.export.path, "model.h5");
  CU_ASSERT_TRUE(c.export.enabled);
  CU_ASSERT_STRING_EQUAL(c.run.dir, "");
  CU_ASSERT_EQUAL(c.run.seed, 1234);
  CU_ASSERT_EQUAL(c.run.threads, 0);
  CU_ASSERT_EQUAL(cfg_threads(&c), machine_cores()); /* 0: the cores this process may use */
  c.run.threads = 3;
  CU_ASSERT_EQUAL(cfg_threads(&c), 3);
  c.run.threads = 0;
  CU_ASSERT_FALSE(c.run.profile);
  /* defaults alone lack the required paths */
  validate_fails(&c, "config: missing required key 'data.train'");
  cfg_free(&c);
  cfg_free(&c); /* twice is harmless */
}

static void test_load_values(void) {
  epee_config c;
  epee_err e = {{0}};
  int rc = load_text("# comment\n" REQUIRED_YAML "model:\n  arch: albert\n  layers: 3\n  hidden_dropout: 0\n"
                               "  layer_norm_eps: 1.0e-6\ntokenizer:\n  lowercase: false\n"
                               "train:\n  lr: 3e-4\n  best_metric: mean_acc\nexport:\n",
                 &c, &e);
  if (rc) printf("\n  %s\n", e.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_STRING_EQUAL(c.data.train, "a.tsv");
  CU_ASSERT_STRING_EQUAL(c.data.dev, "b.tsv");
  CU_ASSERT_STRING_EQUAL(c.data.test, "c.tsv");
  CU_ASSERT_STRING_EQUAL(c.run.dir, "runs/x"); /* relative path kept as written */
  CU_ASSERT_EQUAL(c.model.arch, arch_index("albert"));
  CU_ASSERT_STRING_EQUAL(cfg_tokenizer_kind(&c), "sentencepiece"); /* ALBERT's own kind */
  CU_ASSERT_EQUAL(c.model.layers, 3);
  CU_ASSERT_EQUAL(c.model.hidden_dropout, 0.0);
  CU_ASSERT_EQUAL(c.model.layer_norm_eps, 1e-6);
  CU_ASSERT_FALSE(c.tokenizer.lowercase);
  CU_ASSERT_EQUAL(c.train.lr, 3e-4);
  CU_ASSERT_EQUAL(c.train.best_metric, CFG_BEST_MEAN_ACC);
  CU_ASSERT_EQUAL(c.model.hidden, 256); /* untouched keys keep their defaults */
  CU_ASSERT_TRUE(c.export.enabled);     /* empty section */
  CU_ASSERT_EQUAL(cfg_validate(&c, &e), 0);
  cfg_free(&c);
}

static void test_errors(void) {
  /* unknown keys and sections, with suggestions */
  load_fails("model:\n  hiden: 256\n", "2:3: unknown key 'hiden' in section 'model' (did you mean 'hidden'?)");
  load_fails("model:\n  layers: 2\ntrian:\n  lr: 0.1\n", "3:1: unknown section 'trian' (did you mean 'train'?)");
  load_fails("train:\n  seed: 1\n", "2:3: unknown key 'seed' in section 'train' (did you mean 'run.seed'?)");
  load_fails("lr: 0.1\n", "1:1: unknown section 'lr' (did you mean 'train.lr'?)");
  load_fails("model:\n  foo_bar_baz: 1\n", "2:3: unknown key 'foo_bar_baz' in section 'model'");
  /* wrong types: the column is the value's */
  load_fails("train:\n  epochs: abc\n", "2:11: train.epochs: expected int, got 'abc'");
  load_fails("train:\n  lr: fast\n", "2:7: train.lr: expected float, got 'fast'");
  load_fails("model:\n  layers: 2.5\n", "2:11: model.layers: expected int, got '2.5'");
  load_fails("model:\n  hidden: [1, 2]\n", "2:11: model.hidden: expected int, got a list");
  load_fails("tokenizer:\n  lowercase: yes\n",
             "2:14: tokenizer.lowercase: expected bool (true or false), got 'yes'");
  load_fails("calibrate:\n  tau: 0.1\n", "2:8: calibrate.tau: expected a list like [a, b], got a scalar");
  load_fails("calibrate:\n  patience: [1, x]\n", "2:17: calibrate.patience[1]: expected int, got 'x'");
  /* out of range */
  load_fails("run:\n  threads: -1\n", "2:12: run.threads: must be in [0, 256], got -1");
  load_fails("model:\n  hidden_dropout: 1.0\n", "2:19: model.hidden_dropout: must be in [0, 1), got 1.0");
  load_fails("train:\n  max_steps: 99999999999\n",
             "2:14: train.max_steps: must be in [0, 2147483647], got 99999999999");
  load_fails("train:\n  clip: -1\n", "2:9: train.clip: must be >= 0, got -1");
  load_fails("calibrate:\n  tau: [0.1, 1.5]\n", "2:14: calibrate.tau[1]: must be in [0, 1], got 1.5");
  /* missing required keys: at the section, or at 1:1 when the section is absent */
  load_fails("model:\n  layers: 2\n", "1:1: missing required key 'data.train'");
  load_fails("", "1:1: missing required key 'data.train'");
  load_fails("model:\n  layers: 2\ndata:\n  train: a.tsv\n  test: c.tsv\nrun:\n  dir: x\n",
             "3:1: missing required key 'data.dev'");
  load_fails("data:\n  train: \"\"\n", "2:10: data.train: must not be empty");
  /* duplicates */
  load_fails("train:\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n", "4:3: duplicate key 'train.lr' (first at line 2)");
  load_fails("run:\n  seed: 1\nmodel:\n  layers: 2\nrun:\n  seed: 2\n",
             "5:1: duplicate section 'run' (first at line 1)");
  /* invalid enum values list the choices */
  load_fails("model:\n  arch: bret\n", "2:9: model.arch: invalid value 'bret', expected one of: bert, albert, gpt2, vit");
  load_fails("calibrate:\n  policies: [none, pabee]\n",
             "2:20: calibrate.policies[1]: invalid value 'pabee', expected one of: none, entropy, patience, epee, pcee");
  load_fails("train:\n  loss_weights: ascending\n",
             "2:17: train.loss_weights: expected asc, uniform, desc or a list of floats, got 'ascending'");
  load_fails("train:\n  loss_weights: [1, -2, 3]\n", "2:21: train.loss_weights[1]: must be >= 0, got -2");
  /* structure */
  load_fails("- a\n- b\n", "1:1: expected a mapping of sections (model:, data:, ...), got a list");
  load_fails("model: 3\n", "1:8: section 'model': expected a mapping of keys, got a scalar");
  load_fails("run:\n  seed: 1\n---\nrun:\n  seed: 2\n", "3:1: expected one YAML document, found a second one");
  /* YAML syntax (libyaml scanner: a tab cannot start a token; reader: byte 15 is not UTF-8) */
  load_fails("model:\n\thidden: 2\n", "2:1: YAML syntax error: found character that cannot start any token "
                                      "(while scanning for the next token at line 2, column 1)");
  load_fails("model:\n  arch: \xff\n", "2:9: YAML syntax error: invalid leading UTF-8 octet");
  /* a file that does not exist */
  epee_config c;
  epee_err e = {{0}};
  CU_ASSERT_EQUAL(cfg_load("/nonexistent/epee.yaml", &c, &e), -1);
  expect_msg(e.msg, "/nonexistent/epee.yaml: cannot open config: No such file or directory", __LINE__);
  cfg_free(&c);
}

static void test_overrides(void) {
  epee_config c;
  epee_err e = {{0}};
  CU_ASSERT_EQUAL_FATAL(load_text(REQUIRED_YAML, &c, &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "train.lr=3e-4", &e), 0);
  CU_ASSERT_EQUAL(c.train.lr, 3e-4);
  CU_ASSERT_EQUAL(cfg_override(&c, "model.arch=gpt2", &e), 0);
  CU_ASSERT_EQUAL(c.model.arch, arch_index("gpt2"));
  CU_ASSERT_STRING_EQUAL(cfg_tokenizer_kind(&c), "bpe");
  CU_ASSERT_EQUAL(cfg_override(&c, "run.dir=runs/y z", &e), 0);
  CU_ASSERT_STRING_EQUAL(c.run.dir, "runs/y z");
  CU_ASSERT_EQUAL(cfg_override(&c, "data.text_b_column=", &e), 0);
  CU_ASSERT_STRING_EQUAL(c.data.text_b_column, "");
  CU_ASSERT_EQUAL(cfg_override(&c, "data.label_column=\"a=b\"", &e), 0); /* only the first '=' splits */
  CU_ASSERT_STRING_EQUAL(c.data.label_column, "a=b");
  CU_ASSERT_EQUAL(cfg_override(&c, "export.enabled=false", &e), 0);
  CU_ASSERT_FALSE(c.export.enabled);
  CU_ASSERT_EQUAL(cfg_override(&c, "calibrate.tau=[0.5, 0.25]", &e), 0);
  CU_ASSERT_EQUAL_FATAL(c.calibrate.tau.n, 2);
  CU_ASSERT_EQUAL(c.calibrate.tau.v[0], 0.5);
  CU_ASSERT_EQUAL(c.calibrate.tau.v[1], 0.25);
  CU_ASSERT_EQUAL(cfg_override(&c, "calibrate.tau=[]", &e), 0);
  CU_ASSERT_EQUAL(c.calibrate.tau.n, 0);

  override_fails(&c, "train.lr=abc", "override 'train.lr=abc': train.lr: expected float, got 'abc'");
  CU_ASSERT_EQUAL(c.train.lr, 3e-4); /* unchanged by a failed override */
  override_fails(&c, "run.threads=300", "override 'run.threads=300': run.threads: must be in [0, 256], got 300");
  override_fails(&c, "trian.lr=1", "override 'trian.lr=1': unknown section 'trian' (did you mean 'train'?)");
  override_fails(&c, "train.lrr=1", "override 'train.lrr=1': unknown key 'lrr' in section 'train' (did you mean 'lr'?)");
  override_fails(&c, "lr=1", "override 'lr=1': expected section.key=value");
  override_fails(&c, "train.lr", "override 'train.lr': expected section.key=value");
  override_fails(&c, "model.arch=bret", "override 'model.arch=bret': model.arch: invalid value 'bret', expected one "
                                        "of: bert, albert, gpt2, vit");
  CU_ASSERT_EQUAL(c.model.arch, arch_index("gpt2")); /* unchanged */
  override_fails(&c, "model.hidden=a: b", "override 'model.hidden=a: b': model.hidden: expected int, got a mapping");
  override_fails(&c, "run.dir=", "override 'run.dir=': run.dir: must not be empty");
  CU_ASSERT_STRING_EQUAL(c.run.dir, "runs/y z");
  /* libyaml parser: a flow sequence opened at 1:1 and never closed */
  override_fails(&c, "calibrate.tau=[0.1",
                 "override 'calibrate.tau=[0.1': YAML syntax error: did not find expected ',' or ']' "
                 "(while parsing a flow sequence at line 1, column 1)");
  override_fails(&c, "calibrate.patience=[1, [2]]",
                 "override 'calibrate.patience=[1, [2]]': calibrate.patience[1]: expected int, got a list");
  cfg_free(&c);
}

static void test_lists_and_weights(void) {
  epee_config c;
  epee_err e = {{0}};
  int rc = load_text("data:\n  train: a\n  dev: b\n  test: c\n  labels:\n    - BP\n    - MF\n    - \"C C\"\n"
                 "run:\n  dir: r\nmodel:\n  layers: 4\n"
                 "train:\n  loss_weights: [0.5, 1, 1.5, 2]\n"
                 "calibrate:\n  policies: [epee]\n  patience: [1, 3]\n  tau: [0.01]\n",
                 &c, &e);
  if (rc) printf("\n  %s\n", e.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL_FATAL(c.data.labels.n, 3);
  CU_ASSERT_STRING_EQUAL(c.data.labels.v[0], "BP");
  CU_ASSERT_STRING_EQUAL(c.data.labels.v[1], "MF");
  CU_ASSERT_STRING_EQUAL(c.data.labels.v[2], "C C");
  CU_ASSERT_EQUAL_FATAL(c.calibrate.policies.n, 1);
  CU_ASSERT_STRING_EQUAL(c.calibrate.policies.v[0], "epee");
  CU_ASSERT_EQUAL_FATAL(c.calibrate.patience.n, 2);
  CU_ASSERT_EQUAL(c.calibrate.patience.v[0], 1);
  CU_ASSERT_EQUAL(c.calibrate.patience.v[1], 3);
  CU_ASSERT_EQUAL(c.train.loss_weights.kind, CFG_WEIGHTS_LIST);
  double w[4];
  cfg_loss_weights(&c.train.loss_weights, 4, w);
  CU_ASSERT_EQUAL(w[0], 0.5);
  CU_ASSERT_EQUAL(w[1], 1.0);
  CU_ASSERT_EQUAL(w[2], 1.5);
  CU_ASSERT_EQUAL(w[3], 2.0);
  CU_ASSERT_EQUAL(cfg_validate(&c, &e), 0);

  /* presets: asc w_i = i, uniform 1, desc L + 1 - i, for L = 4 */
  CU_ASSERT_EQUAL(cfg_override(&c, "train.loss_weights=asc", &e), 0);
  CU_ASSERT_EQUAL(c.train.loss_weights.kind, CFG_WEIGHTS_ASC);
  cfg_loss_weights(&c.train.loss_weights, 4, w);
  CU_ASSERT(w[0] == 1 && w[1] == 2 && w[2] == 3 && w[3] == 4);
  CU_ASSERT_EQUAL(cfg_override(&c, "train.loss_weights=uniform", &e), 0);
  cfg_loss_weights(&c.train.loss_weights, 4, w);
  CU_ASSERT(w[0] == 1 && w[1] == 1 && w[2] == 1 && w[3] == 1);
  CU_ASSERT_EQUAL(cfg_override(&c, "train.loss_weights=desc", &e), 0);
  cfg_loss_weights(&c.train.loss_weights, 4, w);
  CU_ASSERT(w[0] == 4 && w[1] == 3 && w[2] == 2 && w[3] == 1);
  CU_ASSERT_EQUAL(cfg_override(&c, "train.loss_weights=[3, 2, 1, 0]", &e), 0);
  CU_ASSERT_EQUAL(c.train.loss_weights.kind, CFG_WEIGHTS_LIST);
  CU_ASSERT_EQUAL(c.train.loss_weights.list.n, 4);
  cfg_free(&c);
}

static epee_config valid_config(void) {
  epee_config c;
  epee_err e = {{0}};
  CU_ASSERT_EQUAL(load_text(REQUIRED_YAML, &c, &e), 0);
  CU_ASSERT_EQUAL(cfg_validate(&c, &e), 0);
  return c;
}

static void test_validate(void) {
  epee_config c = valid_config();
  epee_err e = {{0}};
  c.model.hidden = 250;
  validate_fails(&c, "config: model.hidden (250) must be a multiple of model.heads (4)");
  c.model.hidden = 256;
  c.tokenizer.max_length = 600;
  validate_fails(&c, "config: tokenizer.max_length (600) exceeds model.max_position (512)");
  for (int a = 0; model_arch_names[a]; a++) { /* the rule holds for every backbone that reads text */
    c.model.arch = a;
    if (model_find_arch(model_arch_names[a])->input == MODEL_INPUT_TEXT)
      validate_fails(&c, "config: tokenizer.max_length (600) exceeds model.max_position (512)");
  }
  c.model.arch = 4; /* past the registry */
  validate_fails(&c, "config: model.arch: invalid enum value 4");
  c.model.arch = arch_index("bert");
  c.tokenizer.max_length = 128;
  CU_ASSERT_EQUAL(cfg_validate(&c, &e), 0);

  /* an image backbone: no tokenizer; channels, patches, normalisation and crop must fit the images */
  c.model.arch = arch_index("vit");
  CU_ASSERT_EQUAL(cfg_validate(&c, &e), 0); /* defaults: 28x28 grey, 4x4 patches */
  free(c.tokenizer.kind);
  c.tokenizer.kind = strdup("wordpiece");
  validate_fails(&c, "config: tokenizer.kind 'wordpiece' given, but model.arch vit reads images");
  c.tokenizer.kind[0] = '\0';
  c.model.patch_size = 5;
  validate_fails(&c, "config: model.image_size (28) must be a multiple of model.patch_size (5)");
  c.model.patch_size = 4;
  c.model.channels = 2;
  validate_fails(&c, "config: model.channels is 2; expected 1 (grey) or 3 (RGB)");
  c.model.channels = 3;
  CU_ASSERT_EQUAL(cfg_override(&c, "image.mean=[0.1, 0.2]", &e), 0);
  validate_fails(&c, "config: image.mean has 2 values; expected 1 or model.channels (3)");
  CU_ASSERT_EQUAL(cfg_override(&c, "image.mean=[0.1, 0.2, 0.3]", &e), 0);
  CU_ASSERT_EQUAL(cfg_validate(&c, &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "image.std=[0]", &e), -1); /* std > 0 */
  CU_ASSERT_EQUAL(cfg_override(&c, "image.crop_padding=14", &e), 0);
  validate_fails(&c, "config: image.crop_padding (14) must be below half of model.image_size (28)");
  CU_ASSERT_EQUAL(cfg_override(&c, "image.crop_padding=2", &e), 0);
  c.model.channels = 1;
  CU_ASSERT_EQUAL(cfg_override(&c, "image.mean=[0.5]", &e), 0);
  c.model.arch = arch_index("bert");
  CU_ASSERT_EQUAL(cfg_validate(&c, &e), 0);

  /* tokenizer.kind: "" = the arch's own; another kind only if the arch's registry row accepts it */
  const struct {
    const char *arch, *kind, *err; /* err NULL: valid */
  } kinds[] = {
      {"bert", "", NULL},
      {"bert", "sentencepiece", NULL},
      {"bert", "bpe", "config: tokenizer.kind 'bpe' is not one of model.arch bert's (wordpiece, sentencepiece)"},
      {"albert", "", NULL},
      {"albert", "wordpiece", NULL},
      {"albert", "bpe", "config: tokenizer.kind 'bpe' is not one of model.arch albert's (sentencepiece, wordpiece)"},
      {"gpt2", "", NULL},
      {"gpt2", "bpe", NULL},
      {"gpt2", "wordpiece", "config: tokenizer.kind 'wordpiece' is not one of model.arch gpt2's (bpe)"},
      {"bert", "wordpeice",
       "config: tokenizer.kind 'wordpeice' is not one of model.arch bert's (wordpiece, sentencepiece)"},
  };
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    char a[64], k[64];
    snprintf(a, sizeof a, "model.arch=%s", kinds[i].arch);
    snprintf(k, sizeof k, "tokenizer.kind=\"%s\"", kinds[i].kind);
    CU_ASSERT_EQUAL(cfg_override(&c, a, &e), 0);
    CU_ASSERT_EQUAL(cfg_override(&c, k, &e), 0);
    CU_ASSERT_STRING_EQUAL(cfg_tokenizer_kind(&c), kinds[i].kind[0] ? kinds[i].kind
                                                   : model_find_arch(kinds[i].arch)->tokenizers[0]);
    if (kinds[i].err)
      validate_fails(&c, kinds[i].err);
    else
      CU_ASSERT_EQUAL(cfg_validate(&c, &e), 0);
  }
  CU_ASSERT_EQUAL(cfg_override(&c, "tokenizer.kind=\"\"", &e), 0);

  /* ALBERT: every group needs a layer; archs without groups ignore the key */
  CU_ASSERT_EQUAL(cfg_override(&c, "model.hidden_groups=7", &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "model.arch=albert", &e), 0);
  validate_fails(&c, "config: model.hidden_groups (7) exceeds model.layers (6)");
  CU_ASSERT_EQUAL(cfg_override(&c, "model.hidden_groups=6", &e), 0);
  CU_ASSERT_EQUAL(cfg_validate(&c, &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "model.hidden_groups=7", &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "model.arch=bert", &e), 0);
  CU_ASSERT_EQUAL(cfg_validate(&c, &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "model.hidden_groups=1", &e), 0);

  /* text pairs need two token types only where the arch has token types (GPT-2 separates by a token) */
  CU_ASSERT_EQUAL(cfg_override(&c, "data.text_b_column=b", &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "model.type_vocab=1", &e), 0);
  validate_fails(&c, "config: data.text_b_column 'b' makes text pairs, which need model.type_vocab >= 2 (found 1)");
  CU_ASSERT_EQUAL(cfg_override(&c, "model.arch=albert", &e), 0);
  validate_fails(&c, "config: data.text_b_column 'b' makes text pairs, which need model.type_vocab >= 2 (found 1)");
  CU_ASSERT_EQUAL(cfg_override(&c, "model.arch=gpt2", &e), 0);
  CU_ASSERT_EQUAL(cfg_validate(&c, &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "model.arch=bert", &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "model.type_vocab=2", &e), 0);
  CU_ASSERT_EQUAL(cfg_validate(&c, &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "data.text_b_column=", &e), 0);
  c.run.threads = -1; /* changed by code, not by a file */
  validate_fails(&c, "config: run.threads: must be in [0, 256], got -1");
  c.run.threads = 2;
  CU_ASSERT_EQUAL(cfg_override(&c, "train.loss_weights=[1, 2, 3]", &e), 0);
  validate_fails(&c, "config: train.loss_weights has 3 weights for 6 layers (model.layers)");
  CU_ASSERT_EQUAL(cfg_override(&c, "train.loss_weights=[0, 0, 0, 0, 0, 0]", &e), 0);
  validate_fails(&c, "config: train.loss_weights must not all be 0");
  CU_ASSERT_EQUAL(cfg_override(&c, "train.loss_weights=asc", &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "calibrate.patience=[1, 6]", &e), 0);
  validate_fails(&c, "config: calibrate.patience[1] = 6 must be below model.layers (6)");
  CU_ASSERT_EQUAL(cfg_override(&c, "calibrate.patience=[1, 5]", &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "calibrate.rule=layer_budget", &e), 0);
  validate_fails(&c, "config: calibrate.rule layer_budget needs calibrate.layer_budget > 0");
  CU_ASSERT_EQUAL(cfg_override(&c, "calibrate.layer_budget=7.5", &e), 0);
  validate_fails(&c, "config: calibrate.layer_budget (7.5) exceeds model.layers (6)");
  CU_ASSERT_EQUAL(cfg_override(&c, "calibrate.layer_budget=3.5", &e), 0);
  CU_ASSERT_EQUAL(cfg_validate(&c, &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "data.labels=[a, b, a]", &e), 0);
  validate_fails(&c, "config: data.labels: 'a' appears twice");
  CU_ASSERT_EQUAL(cfg_override(&c, "data.labels=[a, b]", &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "model.num_labels=3", &e), 0);
  validate_fails(&c, "config: model.num_labels (3) differs from the 2 names in data.labels");
  free(c.run.dir);
  c.run.dir = NULL;
  validate_fails(&c, "config: missing required key 'run.dir'");
  cfg_free(&c);
}

static void test_round_trip(void) {
  epee_config a = valid_config(), b;
  epee_err e = {{0}};
  const char *sets[] = {
      "model.arch=albert", "model.hidden=48", "model.heads=3", "model.init_std=0.1",
      "model.embedding_size=24", "model.hidden_groups=3", "model.exit_norm=false", "tokenizer.kind=wordpiece",
      "tokenizer.merges=merges \\ \"quoted\".txt",
      "model.layer_norm_eps=1e-5", "train.lr=0.00030000000000000003", "train.warmup=0.3333333333333333",
      "train.loss_weights=[0.1, 0.2, 0.7, 1e-9, 0, 2]", "tokenizer.lowercase=false",
      "data.text_b_column='it''s \"quoted\" # not a comment: really\\'",
      "data.labels=[\"tab\\there\", \"caf\xc3\xa9\", \"[x]\", \"\"]", "calibrate.patience=[1, 2, 5]",
      "calibrate.policies=[pcee, none]", "calibrate.tau=[]", "export.enabled=false", "run.seed=0",
  };
  for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
    int rc = cfg_override(&a, sets[i], &e);
    if (rc) printf("\n  %s\n", e.msg);
    CU_ASSERT_EQUAL(rc, 0);
  }
  CU_ASSERT_STRING_EQUAL(a.data.text_b_column, "it's \"quoted\" # not a comment: really\\");
  CU_ASSERT_STRING_EQUAL(a.data.labels.v[0], "tab\there");
  char out[160];
  snprintf(out, sizeof out, "%s/out.yaml", dir);
  CU_ASSERT_EQUAL_FATAL(cfg_write(&a, out, &e), 0);
  int rc = cfg_load(out, &b, &e);
  if (rc) printf("\n  %s\n", e.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  /* field by field on the tricky ones, then everything via the JSON form */
  CU_ASSERT_EQUAL(b.model.arch, arch_index("albert"));
  CU_ASSERT_EQUAL(b.model.embedding_size, 24);
  CU_ASSERT_EQUAL(b.model.hidden_groups, 3);
  CU_ASSERT_FALSE(b.model.exit_norm);
  CU_ASSERT_STRING_EQUAL(b.tokenizer.kind, "wordpiece");
  CU_ASSERT_STRING_EQUAL(b.tokenizer.merges, "merges \\ \"quoted\".txt");
  CU_ASSERT_EQUAL(cfg_validate(&b, &e), 0);
  CU_ASSERT_EQUAL(b.train.lr, 0.00030000000000000003);
  CU_ASSERT_EQUAL(b.train.warmup, 0.3333333333333333);
  CU_ASSERT_EQUAL(b.model.layer_norm_eps, 1e-5);
  CU_ASSERT_EQUAL_FATAL(b.train.loss_weights.list.n, 6);
  CU_ASSERT_EQUAL(b.train.loss_weights.list.v[3], 1e-9);
  CU_ASSERT_STRING_EQUAL(b.data.text_b_column, a.data.text_b_column);
  CU_ASSERT_EQUAL_FATAL(b.data.labels.n, 4);
  for (int i = 0; i < 4; i++) CU_ASSERT_STRING_EQUAL(b.data.labels.v[i], a.data.labels.v[i]);
  CU_ASSERT_EQUAL(b.calibrate.tau.n, 0);
  CU_ASSERT_FALSE(b.export.enabled);
  char *ja = cfg_to_json(&a), *jb = cfg_to_json(&b);
  CU_ASSERT_STRING_EQUAL(ja, jb);
  free(ja);
  free(jb);
  cfg_free(&b);
  /* the preset form of the weights survives too */
  CU_ASSERT_EQUAL(cfg_override(&a, "train.loss_weights=desc", &e), 0);
  CU_ASSERT_EQUAL_FATAL(cfg_write(&a, out, &e), 0);
  CU_ASSERT_EQUAL_FATAL(cfg_load(out, &b, &e), 0);
  CU_ASSERT_EQUAL(b.train.loss_weights.kind, CFG_WEIGHTS_DESC);
  cfg_free(&b);
  /* an unwritable place fails with the path */
  CU_ASSERT_EQUAL(cfg_write(&a, "/nonexistent/dir/c.yaml", &e), -1);
  CU_ASSERT_EQUAL(strncmp(e.msg, "/nonexistent/dir/c.yaml: cannot write config", 44), 0);
  cfg_free(&a);
}

static void test_json(void) {
  epee_config c;
  cfg_defaults(&c);
  char *j = cfg_to_json(&c);
  /* the start, written by hand from the defaults in the task, and a few values further in */
  const char *head = "{\"model\":{\"arch\":\"bert\",\"hidden\":256,\"layers\":6,\"heads\":4,\"intermediate\":1024,"
                     "\"max_position\":512,\"type_vocab\":2,\"embedding_size\":128,\"hidden_groups\":1,"
                     "\"exit_norm\":true,\"image_size\":28,\"patch_size\":4,\"channels\":1,\"hidden_dropout\":0.1,\"attention_dropout\":0.1,"
                     "\"exit_dropout\":0.1,\"layer_norm_eps\":1e-12,\"init_std\":0.02,\"num_labels\":0,"
                     "\"init\":\"\",\"init_exits\":false},"
                     "\"tokenizer\":{\"kind\":\"\",\"vocab\":\"data/cache/vocab/vocab.txt\",\"merges\":\"\","
                     "\"lowercase\":true,\"max_length\":128},";
  CU_ASSERT_EQUAL(strncmp(j, head, strlen(head)), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"lr\":0.0001,"));
  CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"clip\":1.0,"));
  CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"loss_weights\":\"asc\","));
  CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"tau\":[0.001,0.005,0.01,0.03,0.05,0.1,0.2,0.3,0.5,0.7,1.0],"));
  CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"patience\":[],"));
  CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"run\":{\"dir\":\"\",\"seed\":1234,\"threads\":0,\"profile\":false}}"));
  CU_ASSERT_EQUAL(j[strlen(j) - 1], '}');
  free(j);
  cfg_free(&c);
}

static void test_help(void) {
  /* every key of the task's list, written out independently of the schema table */
  const char *keys[] = {
      "model.arch", "model.hidden", "model.layers", "model.heads", "model.intermediate", "model.max_position",
      "model.type_vocab", "model.embedding_size", "model.hidden_groups", "model.exit_norm", "model.image_size",
      "model.patch_size", "model.channels", "model.hidden_dropout",
      "model.attention_dropout", "model.exit_dropout", "model.layer_norm_eps", "model.init_std", "model.num_labels",
      "model.init", "model.init_exits",
      "tokenizer.kind", "tokenizer.vocab", "tokenizer.merges", "tokenizer.lowercase", "tokenizer.max_length",
      "data.train", "data.dev", "data.test", "data.format", "data.text_column",
      "data.text_b_column", "data.label_column", "data.labels", "image.mean", "image.std", "image.resize",
      "image.crop_padding", "image.hflip", "train.epochs", "train.max_steps",
      "train.batch_size", "train.lr", "train.exit_lr", "train.weight_decay", "train.warmup", "train.clip",
      "train.adam_beta1", "train.adam_beta2", "train.adam_eps", "train.loss_weights", "train.eval_every",
      "train.best_metric", "train.early_stop", "train.log_every", "train.checkpoint_every_s",
      "calibrate.policies", "calibrate.tau", "calibrate.tau_range",
      "calibrate.patience", "calibrate.rule", "calibrate.metric", "calibrate.within", "calibrate.max_recall_drop",
      "calibrate.layer_budget", "calibrate.risk", "calibrate.epsilon", "calibrate.delta", "calibrate.temperature",
      "calibrate.batch",
      "export.path", "export.enabled", "export.hf", "run.dir", "run.seed", "run.threads", "run.profile",
  };
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  CU_ASSERT_FATAL(f != NULL);
  cfg_print_help(f);
  fclose(f);
  int lines = 0;
  for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
  int nkeys = (int)(sizeof keys / sizeof keys[0]);
  CU_ASSERT_EQUAL(lines, 2 + nkeys); /* two header lines, then one per key */
  for (int i = 0; i < nkeys; i++) {
    char needle[64];
    snprintf(needle, sizeof needle, "\n  %s ", keys[i]);
    if (!strstr(text, needle)) printf("\n  help lacks %s\n", keys[i]);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, needle));
  }
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "one of bert|albert|gpt2|vit; default bert"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "[0, 256]"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "training split; required\n"));
  free(text);
}

static void test_shipped_configs(void) {
  const char *files[] = {"configs/bert_go.yaml", "configs/bert_i2b2.yaml"};
  for (int i = 0; i < 2; i++) {
    epee_config c;
    epee_err e = {{0}};
    int rc = cfg_load(files[i], &c, &e);
    if (!rc) rc = cfg_validate(&c, &e);
    if (rc) printf("\n  %s\n", e.msg);
    CU_ASSERT_EQUAL(rc, 0);
    if (i == 0) {
      CU_ASSERT(c.model.layers == 6 && c.model.hidden == 256 && c.model.heads == 4);
      CU_ASSERT(c.model.intermediate == 1024 && c.tokenizer.max_length == 64 && c.train.epochs == 1);
      CU_ASSERT_STRING_EQUAL(c.data.train, "data/cache/go/train.tsv");
      CU_ASSERT_STRING_EQUAL(c.run.dir, "runs/bert_go");
    } else {
      /* a fine-tuning config: the model's shape comes from model.init's config.json (tests/test_hf.c) */
      CU_ASSERT_STRING_EQUAL(c.model.init, "data/pretrained/bert-base-uncased");
      CU_ASSERT(c.train.lr == 3e-5 && c.train.exit_lr == 1e-4 && c.tokenizer.max_length == 128);
      CU_ASSERT_STRING_EQUAL(c.export.hf, "hf");
      CU_ASSERT_STRING_EQUAL(c.data.test, "data/i2b2/test.tsv");
    }
    cfg_free(&c);
  }
  /* every shipped config: loads, validates, is for the arch its name starts with, and gives its tokenizer kind
   * the files it needs (bpe: merges too, and cased) */
  DIR *d = opendir("configs");
  CU_ASSERT_FATAL(d != NULL);
  int n = 0;
  for (struct dirent *de; (de = readdir(d));) {
    size_t len = strlen(de->d_name);
    if (len < 6 || strcmp(de->d_name + len - 5, ".yaml")) continue;
    char file[300];
    snprintf(file, sizeof file, "configs/%s", de->d_name);
    epee_config c;
    epee_err e = {{0}};
    int rc = cfg_load(file, &c, &e);
    if (!rc) rc = cfg_validate(&c, &e);
    if (rc) printf("\n  %s\n", e.msg);
    CU_ASSERT_EQUAL(rc, 0);
    if (!rc) {
      const char *arch = model_arch_names[c.model.arch];
      int named = strncmp(de->d_name, arch, strlen(arch)) == 0 && de->d_name[strlen(arch)] == '_';
      if (!named) printf("\n  %s: model.arch %s\n", file, arch);
      CU_ASSERT(named);
      CU_ASSERT(c.tokenizer.vocab[0] != 0);
      if (!strcmp(cfg_tokenizer_kind(&c), "bpe")) CU_ASSERT(c.tokenizer.merges[0] && !c.tokenizer.lowercase);
    }
    cfg_free(&c);
    n++;
  }
  closedir(d);
  printf("  %d shipped configs ", n);
  CU_ASSERT(n >= 2);
}

/* Random byte edits of a valid file and deeply nested input: every load ends in 0 or one message with
 * the path, never a crash (the Sanitize build checks memory). */
static void test_garbage(void) {
  const char *base = REQUIRED_YAML "model:\n  arch: gpt2\n  layers: 4\ntrain:\n  loss_weights: [1, 2, 3, 4]\n"
                                   "calibrate:\n  policies: [epee, none]\n  tau: [0.1, 0.2]\n";
  size_t n = strlen(base);
  char *buf = malloc(n + 1);
  const char alphabet[] = "[]{}:,-#&*!|>'\"%@` \t\n\\?ab01.~";
  uint64_t s = 42;
  int failures = 0;
  for (int iter = 0; iter < 3000; iter++) {
    memcpy(buf, base, n + 1);
    for (int k = 0; k < 1 + iter % 4; k++) {
      s = s * 6364136223846793005ULL + 1442695040888963407ULL;
      size_t pos = (size_t)(s >> 33) % n;
      buf[pos] = alphabet[(s >> 20) % (sizeof alphabet - 1)];
    }
    epee_config c;
    epee_err e = {{0}};
    int rc = load_text(buf, &c, &e);
    if (rc) failures += strncmp(e.msg, path, strlen(path)) != 0 || strchr(e.msg, '\n') != NULL;
    cfg_free(&c);
  }
  CU_ASSERT_EQUAL(failures, 0);
  free(buf);
  /* 100k '[' (40 s in libyaml's loader, quadratic) are refused at the first level too deep, at once */
  size_t deep = 100000;
  char *nest = malloc(deep + 32);
  strcpy(nest, "model:\n  hidden: ");
  memset(nest + strlen(nest), '[', deep);
  nest[17 + deep] = 0;
  epee_config c;
  epee_err e = {{0}};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CU_ASSERT_EQUAL(load_text(nest, &c, &e), -1);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  printf("  100k [ refused in %.3f s: %s\n", secs, e.msg);
  CU_ASSERT(secs < 2.0);
  expect_msg(e.msg + strlen(path), ":2:25: nested deeper than 16 levels", __LINE__);
  cfg_free(&c);
  free(nest);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("config", suite_init, suite_clean);
  CU_add_test(s, "defaults", test_defaults);
  CU_add_test(s, "load values", test_load_values);
  CU_add_test(s, "errors at line:col", test_errors);
  CU_add_test(s, "overrides", test_overrides);
  CU_add_test(s, "lists and weights", test_lists_and_weights);
  CU_add_test(s, "validate", test_validate);
  CU_add_test(s, "write -> load round trip", test_round_trip);
  CU_add_test(s, "json", test_json);
  CU_add_test(s, "help lists every key", test_help);
  CU_add_test(s, "shipped configs", test_shipped_configs);
  CU_add_test(s, "garbage input", test_garbage);
}
