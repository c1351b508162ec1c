/* HuggingFace import and export (core/safetensors.h, models/hf_config.c, infer/hf_folder.h, train/hf_init.h).
 *
 * Suite "safetensors": F16/BF16 conversions against their definitions on every 16-bit pattern, write/read round
 *   trips, and hostile files: each refused in one line naming what is wrong.
 * Suite "folders": the tiny HF folders the PyTorch twin wrote (tests/twin/hf_fixtures.py: F32 with the "bert."
 *   prefix, F16 without a prefix, BF16 with "transformer.", F32 ViT) import with logits equal to the twin's within
 *   1e-5; the load report names the unused and the new keys; import -> export -> import is bit-exact; a few
 *   fine-tuning steps from the import lower the loss; hostile config.json files and shape mismatches are refused;
 *   the training config takes model.* from config.json and refuses an explicit key that disagrees. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/adamw.h"
#include "core/h5io.h"
#include "core/json.h"
#include "core/safetensors.h"
#include "infer/hf_folder.h"
#include "train/hf_init.h"
#include "train/multi_exit_loss.h"

static const char *const archs[] = {"bert", "albert", "gpt2", "vit"};
/* the twin's HF folder of archs[a] */
static const char *const dirs[] = {"tests/fixtures/hf/bert", "tests/fixtures/hf/albert", "tests/fixtures/hf/gpt2",
                                   "tests/fixtures/hf/vit"};
#define N_ARCHS 4
#define TOL 1e-5

/* ---- safetensors ---- */

static double f16_reference(uint16_t h) {
  int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
  return s ? -v : v;
}

static void test_conversions(void) {
  int bad = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    double r = f16_reference((uint16_t)h);
    float x = st_f16_to_f32((uint16_t)h);
    if (isnan(r) ? !isnan(x) : (double)x != r || !signbit(x) != !signbit(r)) bad++;
    if (!isnan(r) && st_f32_to_f16(x) != h) bad++; /* every f16 survives the way back */
    uint32_t bits = h << 16;
    float b;
    memcpy(&b, &bits, sizeof b);
    float y = st_bf16_to_f32((uint16_t)h);
    if (memcmp(&y, &b, sizeof b) || (!isnan(b) && st_f32_to_bf16(b) != h)) bad++;
  }
  CU_ASSERT_EQUAL(bad, 0);
  /* round to nearest, ties to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10 */
  CU_ASSERT_EQUAL(st_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
  CU_ASSERT_EQUAL(st_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
  CU_ASSERT_EQUAL(st_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
  CU_ASSERT_EQUAL(st_f32_to_f16(65520.0f), 0x7c00);      /* rounds past the largest half: inf */
  CU_ASSERT_EQUAL(st_f32_to_f16(0x1p-25f), 0x0000);      /* halfway to the smallest subnormal: even, 0 */
  CU_ASSERT_EQUAL(st_f32_to_f16(0x1.8p-25f), 0x0001);
  CU_ASSERT_EQUAL(st_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80); /* tie to even */
  CU_ASSERT_EQUAL(st_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
}

static char tmpdir[64];
static int suite_init(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/epee_test_hf.%ld", (long)getpid());
  char cmd[192];
  snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", tmpdir, tmpdir);
  return system(cmd) != 0;
}
static int suite_clean(void) {
  char cmd[192];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  return system(cmd) != 0;
}

static void test_round_trip(void) {
  float a[6] = {1, -2.5f, 3.25f, 0, 1e-3f, 65504}, b[3] = {0.1f, 0.2f, 0.3f}, out[6];
  st_out t[2] = {{"a", a, 2, (int[]){2, 3}}, {"b.bias", b, 1, (int[]){3}}};
  const char *meta[] = {"format", "pt", "note", "x", NULL};
  static const st_dtype dts[] = {ST_F32, ST_F16, ST_BF16};
  for (int d = 0; d < 3; d++) {
    char path[128];
    epee_err e = {{0}};
    snprintf(path, sizeof path, "%s/rt%d.safetensors", tmpdir, d);
    CU_ASSERT_EQUAL_FATAL(st_write(path, t, 2, dts[d], meta, &e), 0);
    st_file f;
    CU_ASSERT_EQUAL_FATAL(st_open(&f, path, &e), 0);
    CU_ASSERT_EQUAL(f.n, 2);
    CU_ASSERT_EQUAL(f.data % 8, 0);
    CU_ASSERT_STRING_EQUAL(st_meta(&f, "note"), "x");
    const st_tensor *ta = st_find(&f, "a");
    CU_ASSERT_FATAL(ta != NULL);
    CU_ASSERT(ta->ndim == 2 && ta->shape[0] == 2 && ta->shape[1] == 3 && ta->dtype == dts[d]);
    CU_ASSERT_EQUAL(st_read_f32(&f, ta, out, &e), 0);
    for (int i = 0; i < 6; i++) {
      float want = dts[d] == ST_F32 ? a[i] : dts[d] == ST_F16 ? st_f16_to_f32(st_f32_to_f16(a[i]))
                                                              : st_bf16_to_f32(st_f32_to_bf16(a[i]));
      CU_ASSERT_EQUAL(out[i], want);
    }
    st_close(&f);
  }
}

/* A file of 8-byte length + header + data_len zero bytes; NULL header = the raw bytes of `raw` instead. */
static int parse_text(const char *header, size_t data_len, epee_err *e) {
  size_t h = strlen(header), n = 8 + h + data_len;
  unsigned char *buf = calloc(n, 1);
  uint64_t len = h;
  memcpy(buf, &len, 8);
  memcpy(buf + 8, header, h);
  st_file f;
  int rc = st_parse(&f, "x.safetensors", buf, n, e);
  if (!rc) st_close(&f);
  free(buf);
  return rc;
}

static void test_hostile(void) {
  static const struct {
    const char *header;
    size_t data;
    const char *expect;
  } cases[] = {
      {"{}", 0, NULL},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  ", 8, NULL},
      {"{nope", 0, "not one JSON object"},
      {"[1]", 0, "does not start with '{'"},
      {"{} x", 0, "not one JSON object"},
      {"{\"a\":{\"dtype\":\"F12\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'F12'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
       "\"data_offsets\":[4,8]}}", 8, "duplicate object key near '\"a\"'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],"
       "\"data_offsets\":[4,8]}}", 8, "overlaps"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 4, "pass the end of the data"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "span 8 bytes but F32 x 1"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "more bytes than the file"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "belong to no tensor"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "belong to no tensor"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape[0] is not a whole number"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "shape[0] is not a whole number"},
      {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,4]}}", 4,
       "more bytes than the file"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "BEGIN <= END"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, "unknown field 'x'"},
      {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "expected \"dtype\""},
      {"{\"__metadata__\":{\"k\":1}}", 0, "expected a string value"},
      {"{\"a\":[]}", 0, "expected an object"},
      {"{}", 4, "no tensor"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    epee_err e = {{0}};
    int rc = parse_text(cases[i].header, cases[i].data, &e);
    if (!cases[i].expect) {
      CU_ASSERT_EQUAL(rc, 0);
      continue;
    }
    CU_ASSERT_EQUAL(rc, -1);
    if (!strstr(e.msg, cases[i].expect) || strchr(e.msg, '\n') || strncmp(e.msg, "x.safetensors: ", 15))
      printf("\n  case %zu: got '%s', expected '%s'", i, e.msg, cases[i].expect);
    CU_ASSERT(strstr(e.msg, cases[i].expect) != NULL && !strncmp(e.msg, "x.safetensors: ", 15));
  }
  /* the header length itself: past the file, and a file shorter than the length field */
  unsigned char buf[16] = {0};
  uint64_t big = 1000;
  memcpy(buf, &big, 8);
  st_file f;
  epee_err e = {{0}};
  CU_ASSERT_EQUAL(st_parse(&f, "x.safetensors", buf, sizeof buf, &e), -1);
  CU_ASSERT(strstr(e.msg, "header length 1000 passes the end of the file (16 bytes)") != NULL);
  CU_ASSERT_EQUAL(st_parse(&f, "x.safetensors", buf, 5, &e), -1);
  CU_ASSERT(strstr(e.msg, "too short") != NULL);
  CU_ASSERT_EQUAL(st_open(&f, "/nonexistent.safetensors", &e), -1);
  CU_ASSERT(strstr(e.msg, "/nonexistent.safetensors: cannot open") != NULL);
}

/* ---- folders ---- */

typedef struct {
  int B, T, n_pix;
  int32_t *ids, *type_ids, *labels;
  float *mask, *pixels, *logits; /* logits [L, B, C] */
} expected;

static void expected_free(expected *x) {
  free(x->ids), free(x->type_ids), free(x->labels), free(x->mask), free(x->pixels), free(x->logits);
}

static int expected_read(const char *arch, const model *m, expected *x) {
  memset(x, 0, sizeof *x);
  char path[128];
  snprintf(path, sizeof path, "tests/fixtures/hf/%s_expected.h5", arch);
  epee_err e = {{0}};
  hid_t f = h5_open_read(path, &e);
  if (f < 0) return -1;
  int nd, sh[4], L = m->n_layers, C = m->n_labels, rc;
  if (h5_exists(f, "inputs/pixels")) {
    rc = h5_shape(f, path, "inputs/pixels", &nd, sh, &e);
    x->B = sh[0];
    int g = m->cfg.image_size / m->cfg.patch_size;
    x->T = g * g + 1;
    x->n_pix = sh[0] * sh[1] * sh[2] * sh[3];
    x->pixels = malloc(sizeof(float) * (size_t)x->n_pix);
    if (!rc) rc = h5_read_floats(f, path, "inputs/pixels", x->pixels, 4, sh, &e);
  } else {
    rc = h5_shape(f, path, "inputs/ids", &nd, sh, &e);
    x->B = sh[0], x->T = sh[1];
    size_t n = (size_t)x->B * x->T;
    x->ids = malloc(4 * n), x->type_ids = malloc(4 * n);
    if (!rc) rc = h5_read_ints(f, path, "inputs/ids", x->ids, 2, sh, &e);
    if (!rc) rc = h5_read_ints(f, path, "inputs/type_ids", x->type_ids, 2, sh, &e);
  }
  x->mask = malloc(sizeof(float) * (size_t)x->B * x->T);
  for (int i = 0; i < x->B * x->T; i++) x->mask[i] = 1;
  if (!rc && x->ids) rc = h5_read_floats(f, path, "inputs/mask", x->mask, 2, sh, &e);
  x->labels = malloc(4 * (size_t)x->B);
  x->logits = malloc(sizeof(float) * (size_t)L * x->B * C);
  int lsh[3] = {L, x->B, C};
  if (!rc) rc = h5_read_ints(f, path, "inputs/labels", x->labels, 1, &x->B, &e);
  if (!rc) rc = h5_read_floats(f, path, "logits", x->logits, 3, lsh, &e);
  H5Fclose(f);
  if (rc) printf("\n  %s\n", e.msg);
  return rc;
}

static model_batch batch_of(const expected *x) {
  return (model_batch){.B = x->B, .T = x->T, .ids = x->ids, .type_ids = x->type_ids, .mask = x->mask,
                       .pixels = x->pixels};
}

/* largest |C logits - twin logits| over every exit */
static double logits_error(model *m, const expected *x) {
  epee_ctx c;
  ctx_init(&c, 0, 1);
  c.grad_mode = 0;
  tensor *logits[m->n_layers];
  model_batch mb = batch_of(x);
  model_forward_all(&c, m, &mb, logits);
  double err = 0;
  int n = x->B * m->n_labels;
  for (int l = 0; l < m->n_layers; l++)
    for (int i = 0; i < n; i++) err = fmax(err, fabs(logits[l]->data[i] - x->logits[l * n + i]));
  ctx_free(&c);
  return err;
}

static int has(char **v, int n, const char *s) {
  for (int i = 0; i < n; i++)
    if (!strcmp(v[i], s)) return 1;
  return 0;
}

/* the folder of arch into *m (num_labels from its exits: 3), its report in *r */
static int import(const char *dir, model *m, hf_source *s, hf_report *r, params_use use, int exits, epee_err *e) {
  memset(m, 0, sizeof *m);
  memset(r, 0, sizeof *r);
  if (hf_source_open(dir, s, e)) return -1;
  s->cfg.num_labels = 3;
  if (model_create(m, s->arch, &s->cfg, use, 0, e)) return -1;
  s->arch->init(m, 7);
  return hf_load_weights(m, s->weights, exits, r, e);
}

/* the tokenizer of the arch's default kind from s's folder (NULL, printed, when it does not load) */
static tokenizer *folder_tokenizer(const hf_source *s) {
  const tok_kind *k = tok_find_kind(s->arch->tokenizers[0]);
  char paths[TOK_MAX_ASSETS][4200];
  const char *p[TOK_MAX_ASSETS] = {paths[0], paths[1]};
  epee_err e = {{0}};
  tokenizer *t = hf_tokenizer_paths(s, k, paths, &e) ? NULL
                 : tok_load_files(k, p, s->lowercase >= 0 ? s->lowercase : k->hf_lowercase, &e);
  if (!t) printf("\n  %s", e.msg);
  return t;
}

static void test_import_matches_twin(void) {
  for (int a = 0; a < N_ARCHS; a++) {
    model m;
    hf_source s;
    hf_report r;
    expected x;
    epee_err e = {{0}};
    int rc = import(dirs[a], &m, &s, &r, PARAMS_SERVE, 1, &e);
    if (rc) printf("\n  %s: %s", archs[a], e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(s.arch->name, archs[a]);
    CU_ASSERT_EQUAL(r.n_fresh, 0);
    CU_ASSERT_EQUAL(r.n_loaded, m.ps.n);
    CU_ASSERT_EQUAL_FATAL(expected_read(archs[a], &m, &x), 0);
    double err = logits_error(&m, &x);
    printf("\n  %s: %d tensors loaded, %d unused; max |logit - twin| %.2e", archs[a], r.n_loaded, r.n_unused, err);
    CU_ASSERT(err <= TOL);
    if (a == 0) CU_ASSERT(has(r.unused, r.n_unused, "cls.predictions.bias") &&
                          has(r.unused, r.n_unused, "bert.embeddings.position_ids"));
    if (a == 2) CU_ASSERT(has(r.unused, r.n_unused, "lm_head.weight") &&
                          has(r.unused, r.n_unused, "transformer.h.0.attn.bias"));
    if (a == 3) CU_ASSERT(has(r.unused, r.n_unused, "pooler.dense.weight") && s.n_mean == 3 && s.image_size == 8);
    if (s.arch->input == MODEL_INPUT_TEXT) { /* the folder's tokenizer, sized to the embeddings */
      tokenizer *t = folder_tokenizer(&s);
      CU_ASSERT(t && t->vocab_size == m.cfg.vocab);
      tok_free(t);
    }
    expected_free(&x);
    hf_report_free(&r);
    model_free(&m);
  }
}

static void test_export_round_trip(void) {
  for (int a = 0; a < N_ARCHS; a++) {
    char out[160];
    snprintf(out, sizeof out, "%s/export_%s", tmpdir, archs[a]);
    model m, m2;
    hf_source s, s2;
    hf_report r, r2;
    epee_err e = {{0}};
    CU_ASSERT_EQUAL_FATAL(import(dirs[a], &m, &s, &r, PARAMS_SERVE, 1, &e), 0);
    char *labels[3] = {"a", "b\"quoted", "c"};
    model_meta meta = {.labels = labels, .n_labels = 3, .max_length = 16, .policy = {EPEE_POLICY_EPEE, 0.05f, 2},
                       .norm = {{0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}}};
    if (s.arch->input == MODEL_INPUT_TEXT) meta.tok = folder_tokenizer(&s);
    int rc = hf_export(&m, &meta, out, &e);
    if (rc) printf("\n  %s", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(hf_export(&m, &meta, out, &e), 0); /* an earlier export is replaced */
    rc = import(out, &m2, &s2, &r2, PARAMS_SERVE, 1, &e);
    if (rc) printf("\n  %s", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(r2.n_unused, 0);
    CU_ASSERT_EQUAL(r2.n_fresh, 0);
    CU_ASSERT(memcmp(&s.cfg, &s2.cfg, sizeof s.cfg) == 0); /* config.json written as read */
    CU_ASSERT_EQUAL(m.ps.total, m2.ps.total);
    CU_ASSERT(memcmp(m.ps.data, m2.ps.data, sizeof(float) * (size_t)m.ps.total) == 0);
    tok_free(meta.tok);
    hf_report_free(&r), hf_report_free(&r2);
    model_free(&m), model_free(&m2);
  }
  /* a folder that is not an earlier export is never replaced */
  model m;
  hf_source s;
  hf_report r;
  epee_err e = {{0}};
  CU_ASSERT_EQUAL_FATAL(import("tests/fixtures/hf/vit", &m, &s, &r, PARAMS_SERVE, 1, &e), 0);
  char *labels[3] = {"a", "b", "c"};
  model_meta meta = {.labels = labels, .n_labels = 3, .norm = {{0.5f}, {0.5f}}};
  CU_ASSERT_EQUAL(hf_export(&m, &meta, tmpdir, &e), -1);
  CU_ASSERT(strstr(e.msg, "is not an EPEE export") != NULL);
  hf_report_free(&r);
  model_free(&m);
}

/* A few AdamW steps on the twin's batch from the imported weights lower the multi-exit loss. */
static void test_fine_tune_steps(void) {
  for (int a = 0; a < N_ARCHS; a++) {
    model m;
    hf_source s;
    hf_report r;
    expected x;
    epee_err e = {{0}};
    CU_ASSERT_EQUAL_FATAL(import(dirs[a], &m, &s, &r, PARAMS_TRAIN, 0, &e), 0);
    CU_ASSERT_EQUAL(r.n_fresh, 2 * m.n_layers); /* new exits */
    CU_ASSERT_EQUAL_FATAL(expected_read(archs[a], &m, &x), 0);
    int L = m.n_layers;
    float w[16];
    for (int l = 0; l < L; l++) w[l] = (float)(l + 1);
    adamw opt = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    adamw_group g[PG_COUNT] = {{1e-2f, 0}, {1e-2f, 0}, {1e-2f, 0}, {1e-2f, 0}};
    epee_ctx c;
    ctx_init(&c, 0, 3);
    double first = 0, last = 0;
    for (int step = 0; step < 5; step++) {
      ctx_reset(&c);
      tensor *logits[16];
      model_batch mb = batch_of(&x);
      model_forward_all(&c, &m, &mb, logits);
      tensor *loss = multi_exit_loss(&c, L, logits, x.labels, w, NULL);
      if (step == 0) first = loss->data[0];
      last = loss->data[0];
      tape_backward(&c, loss, NULL); /* adamw_step left the grads zero */
      adamw_step(&opt, &m.ps, g, 1.0f);
    }
    printf("\n  %s: fine-tuning loss %.4f -> %.4f in 5 steps", archs[a], first, last);
    CU_ASSERT(isfinite(last) && last < first);
    ctx_free(&c);
    expected_free(&x);
    hf_report_free(&r);
    model_free(&m);
  }
}

/* json read as config.json is (strictly: a key twice is a parse error) and mapped onto arch */
static int config_error(const char *arch, const char *json, const char *expect) {
  model_config c = {0};
  unsigned got;
  epee_err e = {{0}};
  json_t *j = epee_json_parse(json, strlen(json), "config.json", 1, &e);
  int rc = j ? hf_config_read(model_find_arch(arch), j, "config.json", &c, &got, &e) : -1;
  json_decref(j);
  if (rc != -1 || !strstr(e.msg, expect) || strncmp(e.msg, "config.json:", 12))
    printf("\n  %s: got rc %d '%s', expected '%s'", json, rc, e.msg, expect);
  return rc == -1 && strstr(e.msg, expect) != NULL;
}

static void test_hostile_config(void) {
#define BERT(x) "{\"model_type\":\"bert\",\"vocab_size\":40,\"num_attention_heads\":2," \
                "\"intermediate_size\":24,\"max_position_embeddings\":20" x "}"
  CU_ASSERT(config_error("bert", BERT(",\"hidden_size\":16"), "missing \"num_hidden_layers\""));
  CU_ASSERT(config_error("bert", BERT(",\"hidden_size\":16,\"num_hidden_layers\":1000000000"), "\"num_hidden_layers\" is 1e+09"));
  CU_ASSERT(config_error("bert", BERT(",\"num_hidden_layers\":2,\"hidden_size\":0"), "\"hidden_size\" is 0"));
  CU_ASSERT(config_error("bert", BERT(",\"num_hidden_layers\":2,\"hidden_size\":15"), "not a multiple of the 2"));
  CU_ASSERT(config_error("bert", BERT(",\"hidden_size\":16,\"num_hidden_layers\":2.5"), "expected a whole number"));
  CU_ASSERT(config_error("bert", BERT(",\"hidden_size\":16,\"num_hidden_layers\":\"2\""), "\"num_hidden_layers\": expected a number"));
  CU_ASSERT(config_error("bert", BERT(",\"hidden_size\":16,\"num_hidden_layers\":2,\"hidden_act\":\"relu\""),
                         "\"hidden_act\" is relu; this build's bert implements only gelu"));
  CU_ASSERT(config_error("bert", BERT(",\"hidden_size\":16,\"num_hidden_layers\":2,\"hidden_size\":16"),
                         "duplicate object key near '\"hidden_size\"'"));
  CU_ASSERT(config_error("albert", BERT(",\"hidden_size\":16,\"num_hidden_layers\":2"), "\"model_type\" is \"bert\"; expected \"albert\""));
  CU_ASSERT(config_error("gpt2", "{\"n_embd\":16,\"n_layer\":2,\"n_head\":2,\"n_positions\":8,\"vocab_size\":9,"
                                 "\"scale_attn_by_inverse_layer_idx\":true}", "implements only false"));
  CU_ASSERT(config_error("bert", "[1]", "expected a JSON object"));
  /* GPT-2's n_inner: null means 4 x n_embd */
  json_t *j = json_loads("{\"n_embd\":16,\"n_layer\":2,\"n_head\":2,\"n_positions\":8,\"vocab_size\":9,"
                         "\"n_inner\":null}", 0, NULL);
  model_config c = {0};
  unsigned got;
  epee_err e = {{0}};
  CU_ASSERT_EQUAL(hf_config_read(model_find_arch("gpt2"), j, "config.json", &c, &got, &e), 0);
  CU_ASSERT_EQUAL(c.intermediate, 64);
  CU_ASSERT_EQUAL(c.layer_norm_eps, 1e-5f);
  json_decref(j);
}

static void test_shape_mismatch(void) {
  hf_source s;
  epee_err e = {{0}};
  CU_ASSERT_EQUAL_FATAL(hf_source_open("tests/fixtures/hf/bert", &s, &e), 0);
  s.cfg.num_labels = 3;
  s.cfg.intermediate = 32; /* config and weights disagree */
  model m;
  hf_report r;
  CU_ASSERT_EQUAL_FATAL(model_create(&m, s.arch, &s.cfg, PARAMS_SERVE, 0, &e), 0);
  CU_ASSERT_EQUAL(hf_load_weights(&m, s.weights, 1, &r, &e), -1);
  CU_ASSERT(strstr(e.msg, "tensor 'bert.encoder.layer.0.intermediate.dense.weight' is [24, 16] but the model's "
                          "bert.encoder.layer.0.intermediate.dense.weight is [32, 16]") != NULL);
  hf_report_free(&r);
  model_free(&m);
  /* a lone .safetensors without the pooler: the pooler is newly initialised, and reported so */
  CU_ASSERT_EQUAL_FATAL(hf_source_open("tests/fixtures/hf/bert", &s, &e), 0);
  s.cfg.num_labels = 3;
  CU_ASSERT_EQUAL_FATAL(model_create(&m, s.arch, &s.cfg, PARAMS_SERVE, 0, &e), 0);
  st_out t[1] = {{"embeddings.word_embeddings.weight", m.ps.t[0]->data, 2, m.ps.t[0]->shape}};
  char path[128];
  snprintf(path, sizeof path, "%s/lone.safetensors", tmpdir);
  CU_ASSERT_EQUAL_FATAL(st_write(path, t, 1, ST_F32, NULL, &e), 0);
  CU_ASSERT_EQUAL(hf_source_open(path, &s, &e), 0);
  CU_ASSERT(s.arch == NULL && s.dir[0] == 0);
  CU_ASSERT_EQUAL(hf_load_weights(&m, path, 0, &r, &e), 0);
  CU_ASSERT(r.n_loaded == 1 && has(r.fresh, r.n_fresh, "bert.pooler.dense.weight"));
  hf_report_free(&r);
  model_free(&m);
  CU_ASSERT_EQUAL(hf_source_open("tests/fixtures/hf", &s, &e), -1);
  CU_ASSERT(strstr(e.msg, "tests/fixtures/hf: no model.safetensors") != NULL);
}

/* model.init merges config.json into the run's config; an explicit key that disagrees is refused naming both */
static void test_init_config(void) {
  epee_config c;
  epee_err e = {{0}};
  cfg_defaults(&c);
  CU_ASSERT_EQUAL(cfg_override(&c, "model.init=tests/fixtures/hf/gpt2", &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "model.hidden_dropout=0.3", &e), 0); /* a training choice: kept */
  CU_ASSERT_EQUAL_FATAL(hf_init_config(&c, &e), 0);
  CU_ASSERT_STRING_EQUAL(model_arch_names[c.model.arch], "gpt2");
  CU_ASSERT(c.model.hidden == 16 && c.model.layers == 3 && c.model.intermediate == 24 && c.model.max_position == 20);
  CU_ASSERT(fabs(c.model.layer_norm_eps - 1e-5) < 1e-12 && c.model.hidden_dropout == 0.3);
  CU_ASSERT(strstr(c.tokenizer.vocab, "tests/fixtures/hf/gpt2/vocab.json") != NULL && !c.tokenizer.lowercase);
  cfg_free(&c);
  /* a key config.json omits takes HF's default for it, not the YAML default: GPT-2's eps 1e-5, not 1e-12 */
  char cmd[512], over[300];
  snprintf(cmd, sizeof cmd, "cp -r tests/fixtures/hf/gpt2 %s/g && sed -i '/layer_norm_epsilon/d' %s/g/config.json",
           tmpdir, tmpdir);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  cfg_defaults(&c);
  snprintf(over, sizeof over, "model.init=%s/g", tmpdir);
  CU_ASSERT_EQUAL(cfg_override(&c, over, &e), 0);
  CU_ASSERT_EQUAL_FATAL(hf_init_config(&c, &e), 0);
  CU_ASSERT(fabs(c.model.layer_norm_eps - 1e-5) < 1e-12);
  cfg_free(&c);
  cfg_defaults(&c);
  CU_ASSERT_EQUAL(cfg_override(&c, "model.init=tests/fixtures/hf/bert", &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "model.hidden=32", &e), 0);
  CU_ASSERT_EQUAL(hf_init_config(&c, &e), -1);
  CU_ASSERT(strstr(e.msg, "model.hidden is given in the config but tests/fixtures/hf/bert/config.json (hidden) says "
                          "16") != NULL);
  cfg_free(&c);
  cfg_defaults(&c);
  CU_ASSERT_EQUAL(cfg_override(&c, "model.init=tests/fixtures/hf/vit", &e), 0);
  CU_ASSERT_EQUAL(cfg_override(&c, "image.mean=[0.1]", &e), 0);
  CU_ASSERT_EQUAL(hf_init_config(&c, &e), -1);
  CU_ASSERT(strstr(e.msg, "image.mean is given") != NULL);
  cfg_free(&c);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("safetensors", suite_init, suite_clean);
  CU_add_test(s, "F16 and BF16 conversions, every bit pattern", test_conversions);
  CU_add_test(s, "write and read back, F32 / F16 / BF16", test_round_trip);
  CU_add_test(s, "hostile files: one line each", test_hostile);
  s = CU_add_suite("folders", suite_init, suite_clean);
  CU_add_test(s, "every arch imports with the twin's logits", test_import_matches_twin);
  CU_add_test(s, "import -> export -> import is bit-exact", test_export_round_trip);
  CU_add_test(s, "fine-tuning steps from an import", test_fine_tune_steps);
  CU_add_test(s, "hostile config.json", test_hostile_config);
  CU_add_test(s, "shape mismatch; a lone file; fresh pooler", test_shape_mismatch);
  CU_add_test(s, "model.init merges into the run config", test_init_config);
}
