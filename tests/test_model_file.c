/* Model file: write then read is bit-exact (weights and every metadata field); every kind of broken,
 * foreign or inconsistent file gives -1 and ONE line naming the file and what is wrong, never a crash
 * (also under AddressSanitizer); the write is atomic. */
#define _GNU_SOURCE /* memmem */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "infer/model_file.h"

enum { V = 30, D = 16, NL = 3, C = 3, P = 12 };
static char dir[64], good[128];
static model m;
static model_meta meta;
static char *labels[C] = {"BP", "CC \"cellular\" component", "MF"};
static char *vocab[V];
static const bert_config cfg = {.vocab = V, .hidden = D, .layers = NL, .heads = 2, .intermediate = 24,
                                .max_position = P, .type_vocab = 2, .num_labels = C, .hidden_dropout = 0.1f,
                                .attention_dropout = 0.05f, .exit_dropout = 0.2f, .layer_norm_eps = 1e-12f,
                                .init_std = 0.02f};

static int setup(void) {
  snprintf(dir, sizeof dir, "/tmp/epee-mf-XXXXXX");
  if (!mkdtemp(dir)) return 1;
  snprintf(good, sizeof good, "%s/good.h5", dir);
  epee_err e;
  if (bert_create(&m, &cfg, PARAMS_SERVE, &e)) return 1;
  bert_init_weights(&m, 3);
  const char *special[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]"};
  for (int i = 0; i < V; i++) {
    vocab[i] = malloc(16);
    snprintf(vocab[i], 16, "%s", i < 4 ? special[i] : "");
    if (i >= 4) snprintf(vocab[i], 16, i % 2 ? "w%d" : "##p%d", i);
  }
  meta = (model_meta){.arch = "bert", .bert = cfg, .labels = labels, .n_labels = C, .vocab = vocab, .n_vocab = V,
                      .lowercase = 1, .max_length = 10, .policy = {EPEE_POLICY_EPEE, 0.03f, 2},
                      .metrics_json = "{\"test\":{\"accuracy\":0.75}}", .train_config_json = "{\"lr\":0.0003}"};
  if (model_file_write(good, &m, &meta, &e)) {
    fprintf(stderr, "setup: %s\n", e.msg);
    return 1;
  }
  return 0;
}

static int teardown(void) {
  model_free(&m);
  for (int i = 0; i < V; i++) free(vocab[i]);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) != 0;
}

static void test_round_trip(void) {
  model r;
  model_meta rm;
  epee_err e;
  CU_ASSERT_FATAL(model_file_read(good, &r, &rm, &e) == 0);
  CU_ASSERT_EQUAL_FATAL(r.ps.n, m.ps.n);
  CU_ASSERT(r.ps.grad == NULL && r.ps.m == NULL && r.ps.v == NULL); /* served: weights only */
  for (int i = 0; i < m.ps.n; i++) { /* by name: the file is keyed by names, not by position */
    tensor *a = m.ps.t[i], *b = params_find(&r.ps, a->name);
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_EQUAL(a->n, b->n);
    CU_ASSERT(memcmp(a->data, b->data, sizeof(float) * (size_t)a->n) == 0);
  }
  CU_ASSERT_STRING_EQUAL(rm.arch, "bert");
  CU_ASSERT(memcmp(&rm.bert, &cfg, sizeof cfg) == 0); /* every int and float field, bit for bit */
  CU_ASSERT_EQUAL_FATAL(rm.n_labels, C);
  for (int i = 0; i < C; i++) CU_ASSERT_STRING_EQUAL(rm.labels[i], labels[i]);
  CU_ASSERT_EQUAL_FATAL(rm.n_vocab, V);
  for (int i = 0; i < V; i++) CU_ASSERT_STRING_EQUAL(rm.vocab[i], vocab[i]);
  CU_ASSERT_EQUAL(rm.lowercase, 1);
  CU_ASSERT_EQUAL(rm.max_length, 10);
  CU_ASSERT_EQUAL(rm.policy.kind, EPEE_POLICY_EPEE);
  CU_ASSERT_EQUAL(rm.policy.tau, 0.03f);
  CU_ASSERT_EQUAL(rm.policy.patience, 2);
  CU_ASSERT_STRING_EQUAL(rm.metrics_json, meta.metrics_json);
  CU_ASSERT_STRING_EQUAL(rm.train_config_json, meta.train_config_json);
  wp_tokenizer *tok = model_meta_tokenizer(&rm, good, &e);
  CU_ASSERT_FATAL(tok != NULL);
  CU_ASSERT_EQUAL(wp_vocab_size(tok), V);
  CU_ASSERT_EQUAL(wp_token_id(tok, "w5"), 5);
  CU_ASSERT_EQUAL(wp_token_id(tok, "##p6"), 6);
  wp_free(tok);
  model_free(&r);
  model_meta_free(&rm);
}

/* What h5py relies on: float32 datasets named by the HF key, PyTorch shapes, checksummed. */
static void test_layout(void) {
  hid_t f = H5Fopen(good, H5F_ACC_RDONLY, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  hid_t ds = H5Dopen2(f, "weights/bert.encoder.layer.2.intermediate.dense.weight", H5P_DEFAULT);
  CU_ASSERT_FATAL(ds >= 0);
  hid_t sp = H5Dget_space(ds), t = H5Dget_type(ds), dcpl = H5Dget_create_plist(ds);
  hsize_t dims[2];
  CU_ASSERT_EQUAL(H5Sget_simple_extent_dims(sp, dims, NULL), 2);
  CU_ASSERT(dims[0] == 24 && dims[1] == D); /* [out, in] as torch.nn.Linear */
  CU_ASSERT(H5Tequal(t, H5T_IEEE_F32LE) > 0);
  unsigned flags, cd[4];
  size_t ncd = 4;
  CU_ASSERT_EQUAL(H5Pget_nfilters(dcpl), 1);
  CU_ASSERT_EQUAL(H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, 0, NULL, NULL), H5Z_FILTER_FLETCHER32);
  H5Pclose(dcpl), H5Tclose(t), H5Sclose(sp), H5Dclose(ds);
  for (int l = 0; l < NL; l++) {
    char name[64];
    snprintf(name, sizeof name, "weights/classifiers.%d.bias", l);
    CU_ASSERT(h5_exists(f, name));
  }
  H5Fclose(f);
}

/* weights_write / weights_read under any group (the trainer's checkpoints use them too) */
static void test_weights_group(void) {
  char path[160], tmp[4200];
  snprintf(path, sizeof path, "%s/ckpt.h5", dir);
  epee_err e;
  hid_t f = h5_create_tmp(path, tmp, sizeof tmp, &e);
  CU_ASSERT_FATAL(f >= 0);
  CU_ASSERT_FATAL(weights_write(f, &m.ps, "best/weights", &e) == 0);
  CU_ASSERT_FATAL(h5_commit(f, tmp, path, 1, &e) == 0);
  model r;
  CU_ASSERT_FATAL(bert_create(&r, &cfg, PARAMS_SERVE, &e) == 0);
  f = h5_open_read(path, &e);
  CU_ASSERT_FATAL(f >= 0);
  CU_ASSERT(weights_read(f, path, &r.ps, "best/weights", &e) == 0);
  CU_ASSERT(memcmp(r.ps.data, m.ps.data, sizeof(float) * (size_t)m.ps.total) == 0);
  CU_ASSERT(weights_read(f, path, &r.ps, "weights", &e) == -1); /* another group: missing, named */
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "'weights/bert.embeddings.word_embeddings.weight' is missing"));
  H5Fclose(f);
  model_free(&r);
}

static int count_tmp_files(void) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *de; d && (de = readdir(d));) n += strstr(de->d_name, ".tmp.") != NULL;
  if (d) closedir(d);
  return n;
}

static void test_atomic_write(void) {
  char path[160];
  epee_err e = {{0}};
  /* an existing file is replaced whole, and no temp file is left */
  snprintf(path, sizeof path, "%s/replaced.h5", dir);
  FILE *f = fopen(path, "w");
  fputs("old contents\n", f);
  fclose(f);
  CU_ASSERT(model_file_write(path, &m, &meta, &e) == 0);
  model r;
  model_meta rm;
  CU_ASSERT(model_file_read(path, &r, &rm, &e) == 0);
  model_free(&r), model_meta_free(&rm);
  CU_ASSERT_EQUAL(count_tmp_files(), 0);
  /* a directory that does not exist: -1, a message, nothing created */
  snprintf(path, sizeof path, "%s/no/such/dir/model.h5", dir);
  CU_ASSERT(model_file_write(path, &m, &meta, &e) == -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "cannot create"));
  /* meta that does not describe the model is refused before anything is written */
  snprintf(path, sizeof path, "%s/inconsistent.h5", dir);
  model_meta bad = meta;
  bad.n_labels = 2;
  CU_ASSERT(model_file_write(path, &m, &bad, &e) == -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "2 label names for 3 classes"));
  bad = meta;
  bad.max_length = P + 1;
  CU_ASSERT(model_file_write(path, &m, &bad, &e) == -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "max_length 13"));
  CU_ASSERT(access(path, F_OK) != 0);
  CU_ASSERT_EQUAL(count_tmp_files(), 0);
}

/* ---- broken files ---------------------------------------------------------------------------------- */

static char variant_path[160];

/* copies good.h5 to name and applies edit (may be NULL) with the copy open read-write */
static const char *variant(const char *name, void (*edit)(hid_t f)) {
  char cmd[400];
  snprintf(variant_path, sizeof variant_path, "%s/%s", dir, name);
  snprintf(cmd, sizeof cmd, "cp %s %s", good, variant_path);
  CU_ASSERT_FATAL(system(cmd) == 0);
  if (edit) {
    hid_t f = H5Fopen(variant_path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    edit(f);
    H5Fclose(f);
    epee_err e;
    CU_ASSERT_FATAL(h5_seal(variant_path, &e) == 0); /* so that the checks behind the seal are reached */
  }
  return variant_path;
}

/* -1, one line, naming the file and containing needle; nothing left to free */
static void expect_error(const char *path, const char *needle) {
  model r;
  model_meta rm;
  epee_err e = {{0}};
  int rc = model_file_read(path, &r, &rm, &e);
  printf("\n    %s", e.msg);
  CU_ASSERT_EQUAL(rc, -1);
  if (rc == 0) {
    model_free(&r), model_meta_free(&rm);
    return;
  }
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, needle));
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, path));
  CU_ASSERT_PTR_NULL(strchr(e.msg, '\n'));
  CU_ASSERT(r.impl == NULL && rm.labels == NULL && rm.vocab == NULL && rm.arch == NULL);
}

static void set_attr(hid_t f, const char *name, const char *value) {
  if (H5Aexists(f, name) > 0) H5Adelete(f, name);
  epee_err e;
  h5_write_attr_str(f, name, value, &e);
}

static void drop_weight(hid_t f) { H5Ldelete(f, "weights/bert.pooler.dense.bias", H5P_DEFAULT); }
static void drop_labels(hid_t f) { H5Ldelete(f, "labels", H5P_DEFAULT); }
static void drop_vocab(hid_t f) { H5Ldelete(f, "tokenizer/vocab", H5P_DEFAULT); }
static void wrong_shape(hid_t f) {
  H5Ldelete(f, "weights/classifiers.1.weight", H5P_DEFAULT);
  float z[4 * D] = {0};
  epee_err e;
  h5_write_floats(f, "weights/classifiers.1.weight", z, 2, (int[]){4, D}, &e);
}
static void int_weights(hid_t f) {
  H5Ldelete(f, "weights/classifiers.0.bias", H5P_DEFAULT);
  int32_t z[C] = {0};
  epee_err e;
  h5_write_ints(f, "weights/classifiers.0.bias", z, 1, (int[]){C}, &e);
}
static void two_labels(hid_t f) {
  drop_labels(f);
  epee_err e;
  h5_write_strings(f, "labels", labels, 2, &e);
}
static void dup_labels(hid_t f) {
  drop_labels(f);
  epee_err e;
  char *dup[C];
  for (int i = 0; i < C; i++) dup[i] = labels[i > 0 ? i - 1 : 0]; /* the first name twice */
  h5_write_strings(f, "labels", dup, C, &e);
}
/* crafted by hand, as fuzzing found them: a string attribute that is an array of three (H5Aread would write
 * three pointers into one), and a list of 2^32 + 3 strings (an int cast would make it 3) */
static void format_array(hid_t f) {
  H5Adelete(f, "format");
  hid_t t = h5_vlen_str(), sp = H5Screate_simple(1, (hsize_t[]){3}, NULL);
  const char *v[3] = {"epee-model", "x", "y"};
  hid_t a = H5Acreate2(f, "format", t, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, t, v);
  H5Aclose(a), H5Sclose(sp), H5Tclose(t);
}
static void huge_labels(hid_t f) {
  drop_labels(f);
  hid_t t = h5_vlen_str(), sp = H5Screate_simple(1, (hsize_t[]){(1ull << 32) + 3}, NULL);
  H5Dclose(H5Dcreate2(f, "labels", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)); /* never written: no space */
  H5Sclose(sp), H5Tclose(t);
}
static void nan_weight(hid_t f) {
  hid_t ds = H5Dopen2(f, "weights/bert.embeddings.LayerNorm.weight", H5P_DEFAULT);
  float x[D];
  H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
  x[5] = NAN;
  H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
  H5Dclose(ds);
}
static void no_format(hid_t f) { H5Adelete(f, "format"); }
static void other_format(hid_t f) { set_attr(f, "format", "epee-train-checkpoint"); }
static void new_version(hid_t f) { set_attr(f, "format_version", "3"); }
static void other_arch(hid_t f) { set_attr(f, "arch", "gpt2"); }
static void no_policy(hid_t f) { H5Adelete(f, "policy"); }
static void config_not_json(hid_t f) { set_attr(f, "model_config", "{\"vocab\": 30, hidden: 16}"); }
static void config_no_hidden(hid_t f) {
  set_attr(f, "model_config", "{\"vocab\":30,\"layers\":3,\"heads\":2,\"intermediate\":24,\"max_position\":12,"
                              "\"type_vocab\":2,\"num_labels\":3,\"layer_norm_eps\":1e-12}");
}
/* hidden 4096: (30 + 12 + 2) * 4096 + 3 * (4 * 4096^2 + 2 * 4096 * 24) = 202096640 weights at least, 808.4 MB:
 * refused before allocating */
static void config_big(hid_t f) {
  set_attr(f, "model_config", "{\"vocab\":30,\"hidden\":4096,\"layers\":3,\"heads\":2,\"intermediate\":24,"
                              "\"max_position\":12,\"type_vocab\":2,\"num_labels\":3,\"layer_norm_eps\":1e-12}");
}
static void long_max_length(hid_t f) {
  set_attr(f, "tokenizer_config", "{\"type\":\"wordpiece\",\"lowercase\":true,\"max_length\":64}");
}
static void bpe_tokenizer(hid_t f) {
  set_attr(f, "tokenizer_config", "{\"type\":\"bpe\",\"lowercase\":false,\"max_length\":8}");
}
static void policy_unknown(hid_t f) { set_attr(f, "policy", "{\"name\":\"fastest\",\"tau\":0.1,\"patience\":2}"); }
static void policy_zero_patience(hid_t f) { set_attr(f, "policy", "{\"name\":\"epee\",\"tau\":0.1,\"patience\":0}"); }
static void policy_edited(hid_t f) { set_attr(f, "policy", "{\"name\":\"epee\",\"tau\":0.5,\"patience\":2}"); }
static void policy_edited_unchecked(hid_t f) {
  policy_edited(f);
  H5Adelete(f, "checksum");
}

static void test_bad_files(void) {
  expect_error(variant("missing_weight.h5", drop_weight), "dataset 'weights/bert.pooler.dense.bias' is missing");
  expect_error(variant("missing_labels.h5", drop_labels), "dataset 'labels' is missing");
  expect_error(variant("missing_vocab.h5", drop_vocab), "dataset 'tokenizer/vocab' is missing");
  expect_error(variant("wrong_shape.h5", wrong_shape),
               "dataset 'weights/classifiers.1.weight': expected shape [3, 16], found [4, 16]");
  expect_error(variant("int_weights.h5", int_weights), "'weights/classifiers.0.bias': expected float data");
  expect_error(variant("two_labels.h5", two_labels), "dataset 'labels' has 2 names but the exits have 3 classes");
  expect_error(variant("dup_labels.h5", dup_labels), "dataset 'labels': name 1 is a duplicate");
  expect_error(variant("huge_labels.h5", huge_labels), "dataset 'labels': dimension 0 is 4294967299, above");
  expect_error(variant("format_array.h5", format_array), "attribute 'format': expected one variable-length string");
  expect_error(variant("nan.h5", nan_weight), "'weights/bert.embeddings.LayerNorm.weight': element 5 is nan");
  expect_error(variant("no_format.h5", no_format), "not an EPEE-C model file (no 'format' attribute)");
  expect_error(variant("checkpoint.h5", other_format), "format 'epee-train-checkpoint' is not 'epee-model'");
  expect_error(variant("version.h5", new_version), "format_version '3' is not supported (this build reads version 2)");
  expect_error(variant("arch.h5", other_arch), "arch 'gpt2' is not supported");
  expect_error(variant("no_policy.h5", no_policy), "attribute 'policy' is missing");
  expect_error(variant("config_json.h5", config_not_json), "attribute 'model_config': column 15");
  expect_error(variant("config_hidden.h5", config_no_hidden),
               "\"hidden\" must be an integer in [1, 65536], found nothing");
  expect_error(variant("config_big.h5", config_big), "describes at least 202133504 weights (808.5 MB)");
  expect_error(variant("max_length.h5", long_max_length), "\"max_length\" must be an integer in [2, 12], found '64'");
  expect_error(variant("bpe.h5", bpe_tokenizer), "\"type\" must be \"wordpiece\", found bpe");
  expect_error(variant("policy_name.h5", policy_unknown), "\"name\" must be none, entropy, patience, epee or pcee");
  expect_error(variant("policy_patience.h5", policy_zero_patience), "policy epee: patience 0");
  expect_error(variant("policy_edited.h5", policy_edited), "attribute 'checksum' fnv1a64:");

  /* an edit on purpose, with the checksum dropped, is served as edited */
  model r;
  model_meta rm;
  epee_err e;
  CU_ASSERT(model_file_read(variant("policy_edited_unchecked.h5", policy_edited_unchecked), &r, &rm, &e) == 0);
  CU_ASSERT_EQUAL(rm.policy.tau, 0.5f);
  model_free(&r), model_meta_free(&rm);

  char path[160];
  snprintf(path, sizeof path, "%s/does_not_exist.h5", dir);
  expect_error(path, "cannot read file");
  snprintf(path, sizeof path, "%s/text.h5", dir);
  FILE *f = fopen(path, "w");
  fputs("text\tlabel\nnot a model\tBP\n", f);
  fclose(f);
  expect_error(path, "not an HDF5 file");
  snprintf(path, sizeof path, "%s/empty.h5", dir);
  fclose(fopen(path, "w"));
  expect_error(path, "not an HDF5 file");
  printf("\n");
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  CU_ASSERT_FATAL(f != NULL);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  rewind(f);
  unsigned char *b = malloc(*n);
  CU_ASSERT_FATAL(fread(b, 1, *n, f) == *n);
  fclose(f);
  return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
  FILE *f = fopen(path, "wb");
  CU_ASSERT_FATAL(f != NULL);
  CU_ASSERT(fwrite(b, 1, n, f) == n);
  fclose(f);
}

/* Cut at every tenth of the file and at the last byte: every prefix is refused with the file named. */
static void test_truncated(void) {
  size_t n;
  unsigned char *b = slurp(good, &n);
  char path[160];
  snprintf(path, sizeof path, "%s/truncated.h5", dir);
  for (int k = 1; k <= 10; k++) {
    size_t cut = k < 10 ? n * (size_t)k / 10 : n - 1;
    spit(path, b, cut);
    expect_error(path, path);
  }
  printf("\n");
  free(b);
}

/* Writes b[n] to path, checks that the seal refuses it, then reseals it (as if the damage had happened before
 * sealing) so that the checks behind the seal are tested too. */
static void spit_refused_then_resealed(const char *path, const unsigned char *b, size_t n) {
  spit(path, b, n);
  expect_error(path, "does not match its seal");
  epee_err e;
  CU_ASSERT_FATAL(h5_seal(path, &e) == 0);
}

/* A file without a seal, and one edited after sealing, are refused before HDF5 reads them. */
static void test_seal(void) {
  size_t n;
  unsigned char *b = slurp(good, &n);
  char path[160];
  snprintf(path, sizeof path, "%s/unsealed.h5", dir);
  CU_ASSERT_FATAL(n > 512 && memcmp(b, "EPEE-C seal", 11) == 0);
  memset(b, 0, 512); /* what HDF5 writes in a user block nobody filled */
  spit(path, b, n);
  expect_error(path, "no EPEE-C seal in its first 512 bytes");
  hid_t f = H5Fopen(variant("edited.h5", NULL), H5F_ACC_RDWR, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  set_attr(f, "arch", "bert"); /* the same value, rewritten: the bytes move */
  H5Fclose(f);
  expect_error(variant_path, "does not match its seal");
  printf("\n");
  free(b);
}

/* Garbage over the bytes of one tensor: the Fletcher-32 checksum names it. */
static void test_corrupted_weight(void) {
  size_t n;
  unsigned char *b = slurp(good, &n);
  tensor *t = params_find(&m.ps, "classifiers.1.weight");
  size_t bytes = sizeof(float) * (size_t)t->n, at = 0;
  for (size_t i = 0; i + bytes <= n && !at; i++)
    if (memcmp(b + i, t->data, bytes) == 0) at = i; /* the tensor is stored raw, little-endian float32 */
  CU_ASSERT_FATAL(at > 0);
  for (size_t i = 0; i < 16; i++) b[at + bytes / 2 + i] ^= 0x5a;
  char path[160];
  snprintf(path, sizeof path, "%s/corrupt_weight.h5", dir);
  spit_refused_then_resealed(path, b, n);
  expect_error(path, "dataset 'weights/classifiers.1.weight': read failed (file truncated or corrupted?)");
  printf("\n");
  free(b);
}

/* One changed character of the vocabulary (HDF5 keeps no checksum on string data): the content checksum. */
static void test_corrupted_vocab(void) {
  size_t n;
  unsigned char *b = slurp(good, &n);
  unsigned char *at = memmem(b, n, "##p28", 5);
  CU_ASSERT_FATAL(at != NULL);
  at[3] = 'q';
  char path[160];
  snprintf(path, sizeof path, "%s/corrupt_vocab.h5", dir);
  spit_refused_then_resealed(path, b, n);
  expect_error(path, "does not match the file's strings");
  printf("\n");
  free(b);
}

/* In a child process: 0 = loaded exactly the original content, 1 = refused with one line naming the file,
 * 2 = loaded something else, 3 = refused with a bad message. A crash shows as a signal. The child ends
 * with _exit: HDF5 1.10 leaks an object header when it meets a corrupted one (its error path, not ours),
 * which must not fail the leak check of this process. */
static int read_in_child(const char *path) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    model r;
    model_meta rm;
    epee_err e = {{0}};
    if (model_file_read(path, &r, &rm, &e) != 0)
      _exit(strstr(e.msg, path) && !strchr(e.msg, '\n') ? 1 : 3);
    int same = r.ps.total == m.ps.total && memcmp(r.ps.data, m.ps.data, sizeof(float) * (size_t)m.ps.total) == 0 &&
               memcmp(&rm.bert, &cfg, sizeof cfg) == 0 && rm.policy.tau == meta.policy.tau &&
               rm.n_vocab == V && rm.n_labels == C;
    for (int i = 0; same && i < V; i++) same = strcmp(rm.vocab[i], vocab[i]) == 0;
    for (int i = 0; same && i < C; i++) same = strcmp(rm.labels[i], labels[i]) == 0;
    _exit(same ? 0 : 2);
  }
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* 64 garbage bytes at 40 places across the file: each read is refused with one line, or loads exactly the
 * original content (the bytes landed on space HDF5 does not use); none crashes. */
static void test_corrupted_anywhere(void) {
  size_t n;
  unsigned char *b = slurp(good, &n), *c = malloc(n);
  char path[160];
  snprintf(path, sizeof path, "%s/corrupt.h5", dir);
  int count[4] = {0}, places = 40;
  for (int k = 0; k < places; k++) {
    memcpy(c, b, n);
    size_t at = (n - 64) * (size_t)k / (size_t)(places - 1);
    for (size_t i = 0; i < 64; i++) c[at + i] ^= (unsigned char)(0xa5 + 7 * i);
    spit(path, c, n);
    int rc = read_in_child(path);
    CU_ASSERT(rc == 0 || rc == 1);
    if (rc > 1) printf("\n    garbage at byte %zu: child status %d", at, rc);
    if (rc < 4) count[rc]++;
  }
  printf("\n    %d of %d corrupted copies refused with one line, %d loaded the original content\n", count[1],
         places, count[0]);
  free(b), free(c);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("model_file", setup, teardown);
  CU_add_test(s, "write then read is bit-exact", test_round_trip);
  CU_add_test(s, "layout: HF names, PyTorch shapes, float32, checksummed", test_layout);
  CU_add_test(s, "weights under any group (checkpoints)", test_weights_group);
  CU_add_test(s, "atomic write; inconsistent meta refused", test_atomic_write);
  CU_add_test(s, "broken, foreign and inconsistent files: one clear line", test_bad_files);
  CU_add_test(s, "unsealed or edited after sealing: refused", test_seal);
  CU_add_test(s, "truncated at every tenth", test_truncated);
  CU_add_test(s, "corrupted tensor named by its checksum", test_corrupted_weight);
  CU_add_test(s, "corrupted vocabulary caught by the content checksum", test_corrupted_vocab);
  CU_add_test(s, "corrupted anywhere: refused or harmless, never a crash", test_corrupted_anywhere);
}
