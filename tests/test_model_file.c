/* Model file: export then load is bit-exact; broken, foreign and mismatched files give one clear line
 * and -1, never a crash (also under AddressSanitizer). */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "infer/model_file.h"

static char dir[64], good[128];
static model m;
static model_meta meta;
static char *labels[] = {"BP", "CC", "MF"};
static char *vocab[30];

static int setup(void) {
  snprintf(dir, sizeof dir, "/tmp/epee-mf-XXXXXX");
  if (!mkdtemp(dir)) return 1;
  snprintf(good, sizeof good, "%s/good.h5", dir);
  bert_config cfg = {.vocab = 30, .hidden = 16, .layers = 3, .heads = 2, .intermediate = 24, .max_position = 12,
                     .type_vocab = 2, .num_labels = 3, .layer_norm_eps = 1e-12f, .init_std = 0.02f};
  epee_err e;
  if (bert_create(&m, &cfg, &e)) return 1;
  bert_init_weights(&m, 3);
  for (int i = 0; i < 30; i++) {
    vocab[i] = malloc(16);
    snprintf(vocab[i], 16, i == 0 ? "[PAD]" : "tok%d", i);
  }
  meta = (model_meta){.arch = "bert", .bert = cfg, .labels = labels, .n_labels = 3, .vocab = vocab, .n_vocab = 30,
                      .lowercase = 1, .max_length = 12, .policy = {EPEE_POLICY_EPEE, 0.03f, 2},
                      .metrics_json = "{\"x\":1}", .train_config_json = "{}"};
  return model_file_write(good, &m, &meta, &e);
}

static int teardown(void) {
  model_free(&m);
  for (int i = 0; i < 30; i++) free(vocab[i]);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) != 0;
}

static void test_round_trip(void) {
  model r;
  model_meta rm;
  epee_err e;
  CU_ASSERT_FATAL(model_file_read(good, &r, &rm, &e) == 0);
  CU_ASSERT_EQUAL(r.ps.n, m.ps.n);
  CU_ASSERT_EQUAL(r.ps.total, m.ps.total);
  CU_ASSERT(memcmp(r.ps.data, m.ps.data, sizeof(float) * (size_t)m.ps.total) == 0);
  CU_ASSERT_STRING_EQUAL(rm.labels[2], "MF");
  CU_ASSERT_STRING_EQUAL(rm.vocab[5], "tok5");
  CU_ASSERT_EQUAL(rm.policy.kind, EPEE_POLICY_EPEE);
  CU_ASSERT_EQUAL(rm.policy.patience, 2);
  CU_ASSERT_EQUAL(rm.policy.tau, 0.03f);
  CU_ASSERT_EQUAL(rm.max_length, 12);
  CU_ASSERT_STRING_EQUAL(rm.metrics_json, "{\"x\":1}");
  model_free(&r);
  model_meta_free(&rm);
}

/* copies good.h5 to name, applies edit (may be NULL) with the file open read-write */
static const char *variant(const char *name, void (*edit)(hid_t f)) {
  static char path[160];
  char cmd[400];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  snprintf(cmd, sizeof cmd, "cp %s %s", good, path);
  CU_ASSERT_FATAL(system(cmd) == 0);
  if (edit) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    edit(f);
    H5Fclose(f);
  }
  return path;
}

static void expect_error(const char *path, const char *needle) {
  model r;
  model_meta rm;
  epee_err e = {{0}};
  int rc = model_file_read(path, &r, &rm, &e);
  printf("  %-22s -> %s\n", strrchr(path, '/') + 1, e.msg);
  CU_ASSERT_EQUAL(rc, -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, needle));
  CU_ASSERT_PTR_NULL(strchr(e.msg, '\n'));
}

static void drop_weight(hid_t f) { H5Ldelete(f, "weights/bert.pooler.dense.bias", H5P_DEFAULT); }
static void wrong_shape(hid_t f) {
  H5Ldelete(f, "weights/classifiers.1.weight", H5P_DEFAULT);
  float z[4 * 16] = {0};
  epee_err e;
  h5_write_floats(f, "weights/classifiers.1.weight", z, 2, (int[]){4, 16}, &e);
}
static void new_version(hid_t f) {
  H5Adelete(f, "format_version");
  epee_err e;
  h5_write_attr_str(f, "format_version", "99", &e);
}
static void no_format(hid_t f) { H5Adelete(f, "format"); }
static void drop_label(hid_t f) {
  H5Ldelete(f, "labels", H5P_DEFAULT);
  epee_err e;
  h5_write_strings(f, "labels", labels, 2, &e);
}

static void test_bad_files(void) {
  char path[160], cmd[1024];
  expect_error(variant("missing_weight.h5", drop_weight), "weights/bert.pooler.dense.bias");
  expect_error(variant("wrong_shape.h5", wrong_shape), "expected shape [3, 16], found [4, 16]");
  expect_error(variant("version.h5", new_version), "version '99'");
  expect_error(variant("foreign.h5", no_format), "not an EPEE-C model file");
  expect_error(variant("labels.h5", drop_label), "num_labels 3");
  snprintf(path, sizeof path, "%s/missing.h5", dir);
  expect_error(path, "cannot read");
  snprintf(path, sizeof path, "%s/text.h5", dir);
  FILE *f = fopen(path, "w");
  fputs("not hdf5\n", f);
  fclose(f);
  expect_error(path, "not an HDF5 file");
  /* truncated: the first half of a good file */
  snprintf(path, sizeof path, "%s/truncated.h5", dir);
  snprintf(cmd, sizeof cmd, "head -c $(( $(stat -c %%s %s) / 2 )) %s > %s", good, good, path);
  CU_ASSERT_FATAL(system(cmd) == 0);
  model r;
  model_meta rm;
  epee_err e = {{0}};
  CU_ASSERT_EQUAL(model_file_read(path, &r, &rm, &e), -1);
  printf("  %-22s -> %s\n", "truncated.h5", e.msg);
  /* corrupted: 4 KB of garbage in the middle */
  snprintf(path, sizeof path, "%s/corrupt.h5", dir);
  snprintf(cmd, sizeof cmd, "cp %s %s && dd if=/dev/urandom of=%s bs=1 seek=$(( $(stat -c %%s %s) / 3 )) count=4096 "
                            "conv=notrunc status=none", good, path, path, good);
  CU_ASSERT_FATAL(system(cmd) == 0);
  int rc = model_file_read(path, &r, &rm, &e);
  printf("  %-22s -> %s\n", "corrupt.h5", rc ? e.msg : "(garbage landed in weight data: loads)");
  if (rc == 0) model_free(&r), model_meta_free(&rm);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("model_file", setup, teardown);
  CU_add_test(s, "export then load is bit-exact", test_round_trip);
  CU_add_test(s, "broken, foreign and mismatched files: one clear line", test_bad_files);
}
