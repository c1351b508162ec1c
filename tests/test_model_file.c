/* Model file: write then read is bit-exact (weights by name and every metadata field) for every backbone of the
 * registry (BERT; ALBERT with factorised embeddings and layer groups; GPT-2 with and without exit_norm, when the
 * bpe tokenizer kind is built); every kind of broken, foreign or inconsistent file gives -1 and ONE line naming
 * the file and what is wrong, never a crash (also under AddressSanitizer); the write is atomic. Broken files are
 * made from good ones with HDF5 C calls and resealed (h5_seal), so the checks behind the seal are reached. */
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

#include "data/wordpiece.h"
#include "infer/model_file.h"

enum { V = 30, D = 16, NL = 3, C = 3, P = 12 };
static char dir[64], good[128], albert_path[128];
static model m, albert; /* good.h5 (bert) and albert.h5 */
static model_meta meta, albert_meta;
static tokenizer *wp; /* the WordPiece tokenizer of vocab_txt, in both files */
static char *labels[C] = {"BP", "CC \"cellular\" component", "MF"};
static char *vocab[V];
static char vocab_txt[V * 16];
static size_t vocab_len;
/* BERT does not read embedding_size, hidden_groups or exit_norm: their values here must not reach the file */
static const model_config cfg = {.vocab = V, .hidden = D, .layers = NL, .heads = 2, .intermediate = 24,
                                 .max_position = P, .type_vocab = 2, .num_labels = C, .embedding_size = 99,
                                 .hidden_groups = 7, .exit_norm = 1, .hidden_dropout = 0.1f,
                                 .attention_dropout = 0.05f, .exit_dropout = 0.2f, .layer_norm_eps = 1e-12f,
                                 .init_std = 0.02f};
/* ALBERT: E 8, 4 layers in 2 groups; it reads no exit_norm */
static const model_config albert_cfg = {.vocab = V, .hidden = D, .layers = 4, .heads = 2, .intermediate = 24,
                                        .max_position = P, .type_vocab = 2, .num_labels = C, .embedding_size = 8,
                                        .hidden_groups = 2, .exit_norm = 1, .hidden_dropout = 0.1f,
                                        .attention_dropout = 0.0f, .exit_dropout = 0.15f, .layer_norm_eps = 1e-12f,
                                        .init_std = 0.03f};

static int build(model *dst, const char *arch, const model_config *c, uint64_t seed, epee_err *e) {
  const model_arch *a = model_find_arch(arch);
  if (!a) return epee_errf(e, "arch %s is not registered", arch);
  if (model_create(dst, a, c, PARAMS_SERVE, 0, e)) return -1;
  a->init(dst, seed);
  return 0;
}

static tokenizer *wordpiece_of(const char *txt, size_t len, epee_err *e) {
  return tok_load(&tok_wordpiece, (tok_asset[]){{"vocab.txt", (unsigned char *)txt, len}},
                  (const char *const[]){"test vocab"}, 1, e);
}

static int setup(void) {
  snprintf(dir, sizeof dir, "/tmp/epee-mf-XXXXXX");
  if (!mkdtemp(dir)) return 1;
  snprintf(good, sizeof good, "%s/good.h5", dir);
  snprintf(albert_path, sizeof albert_path, "%s/albert.h5", dir);
  const char *special[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]"};
  vocab_len = 0;
  for (int i = 0; i < V; i++) {
    vocab[i] = malloc(16);
    snprintf(vocab[i], 16, "%s", i < 4 ? special[i] : "");
    if (i >= 4) snprintf(vocab[i], 16, i % 2 ? "w%d" : "##p%d", i);
    vocab_len += (size_t)snprintf(vocab_txt + vocab_len, sizeof vocab_txt - vocab_len, "%s\n", vocab[i]);
  }
  epee_err e;
  if (!(wp = wordpiece_of(vocab_txt, vocab_len, &e)) || build(&m, "bert", &cfg, 3, &e) ||
      build(&albert, "albert", &albert_cfg, 4, &e)) {
    fprintf(stderr, "setup: %s\n", e.msg);
    return 1;
  }
  meta = (model_meta){.labels = labels, .n_labels = C, .tok = wp, .max_length = 10,
                      .policy = {EPEE_POLICY_EPEE, 0.03f, 2}, .metrics_json = "{\"test\":{\"accuracy\":0.75}}",
                      .train_config_json = "{\"lr\":0.0003}"};
  albert_meta = (model_meta){.labels = labels, .n_labels = C, .tok = wp, .max_length = P,
                             .policy = {EPEE_POLICY_PCEE, 0.1f, 1}}; /* metrics and train config: NULL -> "{}" */
  if (model_file_write(good, &m, &meta, &e) || model_file_write(albert_path, &albert, &albert_meta, &e)) {
    fprintf(stderr, "setup: %s\n", e.msg);
    return 1;
  }
  return 0;
}

static int teardown(void) {
  model_free(&m);
  model_free(&albert);
  tok_free(wp);
  for (int i = 0; i < V; i++) free(vocab[i]);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) != 0;
}

/* ---- GPT-2's tokenizer: a tiny byte-level BPE (data/bpe.h), when the kind is built -------------------------- */

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the 68 others (in byte order) for
 * U+0100.. */
static unsigned byte_char(int b) {
  int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  if (printable) return (unsigned)b;
  unsigned n = 0;
  for (int c = 0; c < b; c++) n += !((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF));
  return 0x100u + n;
}

/* vocab.json: the 256 byte tokens (id = byte), "ab" 256, "<|endoftext|>" 257; merges.txt: the one merge "a b" */
enum { BPE_VOCAB = 258, GPT2_V = 260 };
static char bpe_vocab[4096], bpe_merges[] = "#version: 0.2\na b\n";

static tokenizer *tiny_bpe(epee_err *e) {
  const tok_kind *k = tok_find_kind("bpe");
  if (!k) return NULL;
  size_t n = (size_t)snprintf(bpe_vocab, sizeof bpe_vocab, "{");
  for (int b = 0; b < 256; b++) {
    unsigned c = byte_char(b);
    char u[8];
    if (c == '"' || c == '\\') snprintf(u, sizeof u, "\\%c", (char)c);
    else if (c < 0x80) snprintf(u, sizeof u, "%c", (char)c);
    else snprintf(u, sizeof u, "%c%c", (char)(0xC0 | (c >> 6)), (char)(0x80 | (c & 0x3F)));
    n += (size_t)snprintf(bpe_vocab + n, sizeof bpe_vocab - n, "\"%s\": %d, ", u, b);
  }
  snprintf(bpe_vocab + n, sizeof bpe_vocab - n, "\"ab\": 256, \"<|endoftext|>\": 257}");
  tok_asset a[2] = {{"vocab.json", (unsigned char *)bpe_vocab, strlen(bpe_vocab)},
                    {"merges.txt", (unsigned char *)bpe_merges, strlen(bpe_merges)}};
  return tok_load(k, a, (const char *const[]){"test vocab.json", "test merges.txt"}, 0, e);
}

/* ---- round trips -------------------------------------------------------------------------------------- */

/* the fields the arch reads, bit for bit; the others read back as 0 (they are not in the file) */
static int same_config(const model_arch *a, const model_config *want, const model_config *got) {
  int same = 1;
  for (int i = 0; i < MF_COUNT; i++) {
    const model_field *f = &model_fields[i];
    const char *w = (const char *)want + f->offset, *g = (const char *)got + f->offset;
    static const char zero[sizeof(float) > sizeof(int) ? sizeof(float) : sizeof(int)] = {0};
    size_t n = f->type == MFT_FLOAT ? sizeof(float) : sizeof(int);
    int ok = (a->fields & MF_BIT(i)) ? memcmp(w, g, n) == 0 : memcmp(zero, g, n) == 0;
    if (!ok) printf("\n    %s: model_config field %s differs", a->name, f->name);
    same &= ok;
  }
  return same;
}

static char *read_attr(const char *path, const char *name) {
  epee_err e;
  hid_t f = h5_open_sealed(path, &e);
  CU_ASSERT_FATAL(f >= 0);
  char *v = h5_read_attr_str(f, path, name, &e);
  H5Fclose(f);
  CU_ASSERT_FATAL(v != NULL);
  return v;
}

/* path holds exactly src and src_meta: read back, every weight by name bit for bit, every metadata field */
static void check_round_trip(const char *path, const model *src, const model_meta *sm) {
  model r;
  model_meta rm;
  epee_err e;
  int rc = model_file_read(path, &r, &rm, &e);
  if (rc) printf("\n    %s", e.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_PTR_EQUAL(r.arch, src->arch); /* the registry's row */
  CU_ASSERT(r.n_layers == src->n_layers && r.n_labels == src->n_labels && r.hidden == src->hidden);
  CU_ASSERT(same_config(src->arch, &src->cfg, &r.cfg));
  CU_ASSERT_EQUAL_FATAL(r.ps.n, src->ps.n);
  CU_ASSERT_EQUAL(r.ps.total, src->ps.total);
  CU_ASSERT(r.ps.grad == NULL && r.ps.m == NULL && r.ps.v == NULL); /* served: weights only */
  for (int i = 0; i < src->ps.n; i++) { /* by name: the file is keyed by names, not by position */
    tensor *a = src->ps.t[i], *b = params_find(&r.ps, a->name);
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_EQUAL(a->ndim, b->ndim);
    CU_ASSERT(memcmp(a->shape, b->shape, sizeof(int) * (size_t)a->ndim) == 0);
    CU_ASSERT_EQUAL_FATAL(a->n, b->n);
    CU_ASSERT(memcmp(a->data, b->data, sizeof(float) * (size_t)a->n) == 0);
  }
  /* model_config holds the fields the arch reads and no other */
  char *mc = read_attr(path, "model_config"), *want = model_config_to_json(src);
  CU_ASSERT_STRING_EQUAL(mc, want);
  for (int i = 0; i < MF_COUNT; i++) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", model_fields[i].name);
    CU_ASSERT_EQUAL(strstr(mc, key) != NULL, (src->arch->fields & MF_BIT(i)) != 0);
  }
  free(mc), free(want);
  char *arch = read_attr(path, "arch"), *ver = read_attr(path, "format_version");
  CU_ASSERT_STRING_EQUAL(arch, src->arch->name);
  CU_ASSERT_STRING_EQUAL(ver, "3");
  free(arch), free(ver);
  CU_ASSERT_EQUAL_FATAL(rm.n_labels, sm->n_labels);
  for (int i = 0; i < sm->n_labels; i++) CU_ASSERT_STRING_EQUAL(rm.labels[i], sm->labels[i]);
  CU_ASSERT_EQUAL(rm.policy.kind, sm->policy.kind);
  CU_ASSERT_EQUAL(rm.policy.tau, sm->policy.tau);
  CU_ASSERT_EQUAL(rm.policy.patience, sm->policy.patience);
  CU_ASSERT_EQUAL_FATAL(r.temperature == NULL, src->temperature == NULL); /* none written: none read */
  for (int l = 0; src->temperature && l < src->n_layers; l++) CU_ASSERT_EQUAL(r.temperature[l], src->temperature[l]);
  CU_ASSERT_STRING_EQUAL(rm.metrics_json, sm->metrics_json ? sm->metrics_json : "{}");
  CU_ASSERT_STRING_EQUAL(rm.train_config_json, sm->train_config_json ? sm->train_config_json : "{}");
  if (src->arch->input == MODEL_INPUT_IMAGE) { /* no tokenizer: the normalisation, bit for bit, and the resize rule */
    CU_ASSERT_PTR_NULL(rm.tok);
    for (int c = 0; c < src->cfg.channels; c++)
      CU_ASSERT(rm.norm.mean[c] == sm->norm.mean[c] && rm.norm.std[c] == sm->norm.std[c]);
    CU_ASSERT_EQUAL(rm.resize, sm->resize);
    CU_ASSERT_EQUAL(rm.max_length, model_max_tokens(&r));
    model_free(&r);
    model_meta_free(&rm);
    return;
  }
  /* the tokenizer: its kind, lowercase and files byte for byte, and so its vocabulary and specials */
  const tokenizer *t = sm->tok, *u = rm.tok;
  CU_ASSERT_FATAL(u != NULL && u != t);
  CU_ASSERT_PTR_EQUAL(u->kind, t->kind);
  CU_ASSERT_EQUAL(u->lowercase, t->lowercase);
  CU_ASSERT_EQUAL(u->vocab_size, t->vocab_size);
  CU_ASSERT(u->sp.cls == t->sp.cls && u->sp.sep == t->sp.sep && u->sp.pad == t->sp.pad);
  for (int i = 0; i < t->kind->n_assets; i++) {
    CU_ASSERT_STRING_EQUAL(u->assets[i].name, t->assets[i].name);
    CU_ASSERT_EQUAL_FATAL(u->assets[i].len, t->assets[i].len);
    CU_ASSERT(memcmp(u->assets[i].data, t->assets[i].data, t->assets[i].len) == 0);
  }
  int pieces = 1;
  for (int id = 0; id < t->vocab_size; id++) {
    const char *x = t->kind->piece(t->impl, id), *y = u->kind->piece(u->impl, id);
    pieces &= x && y && strcmp(x, y) == 0;
  }
  CU_ASSERT(pieces);
  int32_t ia[P], ta[P], ib[P], tb[P];
  const char *text = "w5 ##p6 w7 ab ba";
  int na = tok_encode(t, text, NULL, sm->max_length, ia, ta, NULL);
  int nb = tok_encode(u, text, NULL, rm.max_length, ib, tb, NULL);
  CU_ASSERT(na == nb && memcmp(ia, ib, sizeof(int32_t) * (size_t)na) == 0 &&
            memcmp(ta, tb, sizeof(int32_t) * (size_t)na) == 0);
  CU_ASSERT_EQUAL(rm.max_length, sm->max_length);
  model_free(&r);
  model_meta_free(&rm);
  CU_ASSERT(rm.tok == NULL && rm.labels == NULL); /* zeroed */
}

static void test_round_trip(void) {
  check_round_trip(good, &m, &meta);
  /* the WordPiece ids as the file's tokenizer gives them */
  model r;
  model_meta rm;
  epee_err e;
  CU_ASSERT_FATAL(model_file_read(good, &r, &rm, &e) == 0);
  CU_ASSERT_PTR_EQUAL(rm.tok->kind, &tok_wordpiece);
  CU_ASSERT_EQUAL(rm.tok->vocab_size, V);
  CU_ASSERT_EQUAL(wp_token_id(rm.tok->impl, "w5"), 5);
  CU_ASSERT_EQUAL(wp_token_id(rm.tok->impl, "##p6"), 6);
  CU_ASSERT(rm.tok->sp.cls == 2 && rm.tok->sp.sep == 3 && rm.tok->sp.pad == 0);
  CU_ASSERT(rm.tok->assets[0].len == vocab_len && memcmp(rm.tok->assets[0].data, vocab_txt, vocab_len) == 0);
  model_free(&r);
  model_meta_free(&rm);
}

static void test_round_trip_albert(void) {
  check_round_trip(albert_path, &albert, &albert_meta);
  /* two groups of shared weights, E x H mapping, one exit per layer */
  CU_ASSERT_PTR_NOT_NULL(params_find(&albert.ps, "albert.encoder.albert_layer_groups.1.albert_layers.0.ffn.weight"));
  CU_ASSERT_PTR_NULL(params_find(&albert.ps, "albert.encoder.albert_layer_groups.2.albert_layers.0.ffn.weight"));
  CU_ASSERT_PTR_NOT_NULL(params_find(&albert.ps, "classifiers.3.bias"));
  hid_t f = H5Fopen(albert_path, H5F_ACC_RDONLY, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  epee_err e;
  int nd, sh[4];
  CU_ASSERT(h5_shape(f, albert_path, "weights/albert.encoder.embedding_hidden_mapping_in.weight", &nd, sh, &e) == 0);
  CU_ASSERT(nd == 2 && sh[0] == D && sh[1] == 8); /* [out H, in E] as torch.nn.Linear */
  CU_ASSERT(h5_exists(f, "tokenizer/vocab.txt"));
  H5Fclose(f);
}

static void test_round_trip_gpt2(void) {
  epee_err e = {{0}};
  tokenizer *bpe = tiny_bpe(&e);
  if (!bpe) {
    if (tok_find_kind("bpe")) printf("\n    tiny bpe: %s", e.msg);
    CU_ASSERT_PTR_NULL(tok_find_kind("bpe")); /* a bpe kind that refuses the tiny files is a failure */
    printf("\n    SKIP: bpe tokenizer kind not built yet: the GPT-2 round trips (exit_norm 0 and 1) did not run\n");
    return;
  }
  CU_ASSERT_EQUAL(bpe->vocab_size, BPE_VOCAB);
  for (int norm = 0; norm < 2; norm++) {
    /* GPT-2 reads no type_vocab, embedding_size or hidden_groups: not written */
    model_config c = {.vocab = GPT2_V, .hidden = D, .layers = NL, .heads = 2, .intermediate = 24, .max_position = P,
                      .type_vocab = 5, .num_labels = C, .embedding_size = 3, .hidden_groups = 2, .exit_norm = norm,
                      .hidden_dropout = 0.1f, .attention_dropout = 0.1f, .exit_dropout = 0.1f,
                      .layer_norm_eps = 1e-5f, .init_std = 0.02f};
    model g;
    CU_ASSERT_FATAL(build(&g, "gpt2", &c, 10 + (uint64_t)norm, &e) == 0);
    model_meta gm = {.labels = labels, .n_labels = C, .tok = bpe, .max_length = 9,
                     .policy = {EPEE_POLICY_ENTROPY, 0.25f, 0}, .metrics_json = "{\"dev\":{\"accuracy\":0.5}}",
                     .train_config_json = "{\"model\":{\"arch\":\"gpt2\"}}"};
    char path[160];
    snprintf(path, sizeof path, "%s/gpt2_norm%d.h5", dir, norm);
    CU_ASSERT_FATAL(model_file_write(path, &g, &gm, &e) == 0);
    check_round_trip(path, &g, &gm);
    char *mc = read_attr(path, "model_config"), *tc = read_attr(path, "tokenizer_config");
    CU_ASSERT_PTR_NOT_NULL(strstr(mc, norm ? "\"exit_norm\":true" : "\"exit_norm\":false"));
    CU_ASSERT_STRING_EQUAL(tc, "{\"type\":\"bpe\",\"lowercase\":false,\"max_length\":9}");
    free(mc), free(tc);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    int nd, sh[4];
    CU_ASSERT(h5_shape(f, path, "weights/transformer.h.0.attn.c_attn.weight", &nd, sh, &e) == 0);
    CU_ASSERT(nd == 2 && sh[0] == D && sh[1] == 3 * D); /* Conv1D: [in, out] as HF stores it */
    CU_ASSERT(h5_exists(f, "tokenizer/vocab.json") && h5_exists(f, "tokenizer/merges.txt"));
    H5Fclose(f);
    if (norm == 1) { /* a GPT-2 file without its merges is refused */
      char cmd[400], broken[200];
      snprintf(broken, sizeof broken, "%s/gpt2_no_merges.h5", dir);
      snprintf(cmd, sizeof cmd, "cp %s %s", path, broken);
      CU_ASSERT_FATAL(system(cmd) == 0);
      f = H5Fopen(broken, H5F_ACC_RDWR, H5P_DEFAULT);
      H5Ldelete(f, "tokenizer/merges.txt", H5P_DEFAULT);
      H5Fclose(f);
      CU_ASSERT_FATAL(h5_seal(broken, &e) == 0);
      model r;
      model_meta rm;
      CU_ASSERT(model_file_read(broken, &r, &rm, &e) == -1);
      printf("\n    %s", e.msg);
      CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "dataset 'tokenizer/merges.txt' is missing"));
      CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, broken));
    }
    model_free(&g);
  }
  tok_free(bpe);
  printf("\n");
}

static void expect_error(const char *path, const char *needle);
static void set_attr(hid_t f, const char *name, const char *value);

/* ViT: the image preprocessing instead of a tokenizer; a broken image_config is refused in one line */
static void set_image_config(const char *path, const char *json) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  set_attr(f, "image_config", json);
  H5Adelete(f, "checksum");
  H5Fclose(f);
  epee_err e;
  CU_ASSERT_FATAL(h5_seal(path, &e) == 0);
}

static void test_round_trip_vit(void) {
  model_config c = {.hidden = D, .layers = NL, .heads = 2, .intermediate = 24, .num_labels = C, .exit_norm = 1,
                    .image_size = 8, .patch_size = 4, .channels = 3, .vocab = 99, .max_position = 7,
                    .layer_norm_eps = 1e-12f, .init_std = 0.02f};
  model v;
  epee_err e = {{0}};
  CU_ASSERT_FATAL(build(&v, "vit", &c, 21, &e) == 0);
  model_meta vm = {.labels = labels, .n_labels = C, .norm = {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}},
                   .resize = 1, .policy = {EPEE_POLICY_EPEE, 0.05f, 2}};
  char path[160], cmd[400], broken[200];
  snprintf(path, sizeof path, "%s/vit.h5", dir);
  CU_ASSERT_FATAL(model_file_write(path, &v, &vm, &e) == 0);
  check_round_trip(path, &v, &vm); /* vocab and max_position are not ViT's: not written, read back as 0 */
  char *ic = read_attr(path, "image_config");
  CU_ASSERT_STRING_EQUAL(ic, "{\"image_mean\":[0.485,0.456,0.406],\"image_std\":[0.229,0.224,0.225],"
                             "\"resize\":\"bilinear\"}");
  free(ic);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  int nd, sh[4];
  CU_ASSERT(h5_shape(f, path, "weights/vit.embeddings.patch_embeddings.projection.weight", &nd, sh, &e) == 0);
  CU_ASSERT(nd == 4 && sh[0] == D && sh[1] == 3 && sh[2] == 4 && sh[3] == 4); /* Conv2d [D, C, P, P] */
  CU_ASSERT(h5_shape(f, path, "weights/vit.embeddings.position_embeddings", &nd, sh, &e) == 0);
  CU_ASSERT(nd == 3 && sh[0] == 1 && sh[1] == 5 && sh[2] == D); /* 4 patches + [CLS] */
  CU_ASSERT(!h5_exists(f, "tokenizer_config") && !h5_exists(f, "tokenizer"));
  H5Fclose(f);
  const struct {
    const char *json, *want;
  } bad[] = {
      {"{\"image_mean\":[0.5],\"image_std\":[0.5,0.5,0.5],\"resize\":\"refuse\"}",
       "\"image_mean\" must be an array of 3 numbers (model_config channels)"},
      {"{\"image_mean\":[0.5,0.5,0.5],\"image_std\":[0.5,0,0.5],\"resize\":\"refuse\"}",
       "\"image_std\"[1] must be a finite number above 0"},
      {"{\"image_mean\":[0.5,\"x\",0.5],\"image_std\":[0.5,0.5,0.5],\"resize\":\"refuse\"}",
       "\"image_mean\"[1] must be a finite number"},
      {"{\"image_mean\":[0.5,0.5,0.5],\"image_std\":[0.5,0.5,0.5],\"resize\":\"nearest\"}",
       "\"resize\" must be \"refuse\" or \"bilinear\""},
      {"[1, 2", "attribute 'image_config':1:5: ']' expected near end of file"},
      {"[1, 2]", "attribute 'image_config': expected a JSON object"},
  };
  snprintf(broken, sizeof broken, "%s/vit_broken.h5", dir);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(cmd, sizeof cmd, "cp %s %s", path, broken);
    CU_ASSERT_FATAL(system(cmd) == 0);
    set_image_config(broken, bad[i].json);
    expect_error(broken, bad[i].want);
  }
  /* not written: an image model with a std of 0 */
  vm.norm.std[2] = 0;
  CU_ASSERT_EQUAL(model_file_write(broken, &v, &vm, &e), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "image mean/std of channel 2"));
  model_free(&v);
}

/* A tokenizer kind the arch does not accept (GPT-2 takes only bpe) never gets served: refused when written, or
 * else when read, in one line. */
static void test_gpt2_refuses_wordpiece(void) {
  model_config c = {.vocab = V, .hidden = D, .layers = 2, .heads = 2, .intermediate = 24, .max_position = P,
                    .num_labels = C, .exit_norm = 1, .layer_norm_eps = 1e-5f, .init_std = 0.02f};
  model g;
  epee_err e = {{0}};
  CU_ASSERT_FATAL(build(&g, "gpt2", &c, 12, &e) == 0);
  model_meta gm = meta;
  char path[160];
  snprintf(path, sizeof path, "%s/gpt2_wordpiece.h5", dir);
  if (model_file_write(path, &g, &gm, &e) == 0) {
    model r;
    model_meta rm;
    CU_ASSERT_EQUAL(model_file_read(path, &r, &rm, &e), -1);
    printf("\n    written, refused when read: %s\n", e.msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "\"type\" 'wordpiece' is not a tokenizer of arch gpt2 (expected bpe)"));
  } else {
    printf("\n    refused when written: %s\n", e.msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "wordpiece"));
  }
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, path));
  CU_ASSERT_PTR_NULL(strchr(e.msg, '\n'));
  model_free(&g);
}

/* What h5py relies on: float32 datasets named by the HF key, PyTorch shapes, checksummed; the tokenizer's file
 * as bytes; the attributes as documented in infer/model_file.h. */
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
  /* the tokenizer's file byte for byte: 1-D uint8 under its HF name, checksummed */
  ds = H5Dopen2(f, "tokenizer/vocab.txt", H5P_DEFAULT);
  CU_ASSERT_FATAL(ds >= 0);
  sp = H5Dget_space(ds), t = H5Dget_type(ds), dcpl = H5Dget_create_plist(ds);
  CU_ASSERT_EQUAL(H5Sget_simple_extent_dims(sp, dims, NULL), 1);
  CU_ASSERT(dims[0] == vocab_len);
  CU_ASSERT(H5Tequal(t, H5T_STD_U8LE) > 0);
  ncd = 4;
  CU_ASSERT_EQUAL(H5Pget_nfilters(dcpl), 1);
  CU_ASSERT_EQUAL(H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, 0, NULL, NULL), H5Z_FILTER_FLETCHER32);
  unsigned char bytes[sizeof vocab_txt];
  CU_ASSERT(H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes) >= 0);
  CU_ASSERT(memcmp(bytes, vocab_txt, vocab_len) == 0);
  H5Pclose(dcpl), H5Tclose(t), H5Sclose(sp), H5Dclose(ds);
  CU_ASSERT(!h5_exists(f, "tokenizer/vocab")); /* no string list (format 2) */
  H5Fclose(f);
  /* the string attributes */
  const char *const want[][2] = {{"format", "epee-model"},
                                 {"format_version", "3"},
                                 {"arch", "bert"},
                                 {"tokenizer_config", "{\"type\":\"wordpiece\",\"lowercase\":true,\"max_length\":10}"},
                                 {"policy", "{\"name\":\"epee\",\"tau\":0.03,\"patience\":2}"},
                                 {"metrics", "{\"test\":{\"accuracy\":0.75}}"},
                                 {"train_config", "{\"lr\":0.0003}"}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    char *v = read_attr(good, want[i][0]);
    CU_ASSERT_STRING_EQUAL(v, want[i][1]);
    free(v);
  }
  char *mc = read_attr(good, "model_config"), *sum = read_attr(good, "checksum");
  CU_ASSERT_STRING_EQUAL(mc, "{\"vocab\":30,\"hidden\":16,\"layers\":3,\"heads\":2,\"intermediate\":24,"
                             "\"max_position\":12,\"type_vocab\":2,\"num_labels\":3,\"hidden_dropout\":0.1,"
                             "\"attention_dropout\":0.05,\"exit_dropout\":0.2,\"layer_norm_eps\":1e-12,"
                             "\"init_std\":0.02}");
  CU_ASSERT(strncmp(sum, "fnv1a64:", 8) == 0 && strlen(sum) == 8 + 16);
  free(mc), free(sum);
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
  CU_ASSERT_FATAL(model_create(&r, model_find_arch("bert"), &cfg, PARAMS_SERVE, 0, &e) == 0);
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
  bad.max_length = 1; /* no room for [CLS] [SEP] */
  CU_ASSERT(model_file_write(path, &m, &bad, &e) == -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "max_length 1 outside [2, max_position 12]"));
  bad = meta;
  bad.tok = NULL;
  CU_ASSERT(model_file_write(path, &m, &bad, &e) == -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "a tokenizer of 0 ids for a vocab of 30"));
  char big[V * 16 + 64];
  size_t n = (size_t)snprintf(big, sizeof big, "%sx1\nx2\n", vocab_txt); /* 32 ids for a vocab of 30 */
  bad.tok = wordpiece_of(big, n, &e);
  CU_ASSERT_FATAL(bad.tok != NULL);
  CU_ASSERT(model_file_write(path, &m, &bad, &e) == -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "a tokenizer of 32 ids for a vocab of 30"));
  tok_free(bad.tok);
  CU_ASSERT(access(path, F_OK) != 0);
  CU_ASSERT_EQUAL(count_tmp_files(), 0);
}

/* ---- broken files ---------------------------------------------------------------------------------- */

static char variant_path[160];

/* copies src to name and applies edit (may be NULL) with the copy open read-write */
static const char *variant_of(const char *src, const char *name, void (*edit)(hid_t f)) {
  char cmd[400];
  snprintf(variant_path, sizeof variant_path, "%s/%s", dir, name);
  snprintf(cmd, sizeof cmd, "cp %s %s", src, variant_path);
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
/* the same from good.h5 (bert) */
static const char *variant(const char *name, void (*edit)(hid_t f)) { return variant_of(good, name, edit); }

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
  CU_ASSERT(r.impl == NULL && r.arch == NULL && r.ps.n == 0 && rm.labels == NULL && rm.tok == NULL &&
            rm.metrics_json == NULL && rm.train_config_json == NULL);
}

static void set_attr(hid_t f, const char *name, const char *value) {
  if (H5Aexists(f, name) > 0) H5Adelete(f, name);
  epee_err e;
  h5_write_attr_str(f, name, value, &e);
}

static void drop_weight(hid_t f) { H5Ldelete(f, "weights/bert.pooler.dense.bias", H5P_DEFAULT); }
static void drop_labels(hid_t f) { H5Ldelete(f, "labels", H5P_DEFAULT); }
static void drop_vocab(hid_t f) { H5Ldelete(f, "tokenizer/vocab.txt", H5P_DEFAULT); }
static void put_vocab(hid_t f, const char *txt) {
  drop_vocab(f);
  epee_err e;
  h5_write_bytes(f, "tokenizer/vocab.txt", txt, strlen(txt), &e);
}
static void vocab_no_pad(hid_t f) { put_vocab(f, "[UNK]\n[CLS]\n[SEP]\nw1\n"); }
static void vocab_too_big(hid_t f) {
  char big[V * 16 + 64];
  snprintf(big, sizeof big, "%sx1\nx2\nx3\n", vocab_txt);
  put_vocab(f, big);
}
static void vocab_floats(hid_t f) {
  drop_vocab(f);
  float z[8] = {0};
  epee_err e;
  h5_write_floats(f, "tokenizer/vocab.txt", z, 1, (int[]){8}, &e);
}
static void vocab_int32(hid_t f) { /* integers, but not bytes: never narrowed silently */
  drop_vocab(f);
  int32_t z[8] = {0};
  epee_err e;
  h5_write_ints(f, "tokenizer/vocab.txt", z, 1, (int[]){8}, &e);
}
static void vocab_2d(hid_t f) {
  drop_vocab(f);
  int32_t z[2 * 8] = {0};
  epee_err e;
  h5_write_ints(f, "tokenizer/vocab.txt", z, 2, (int[]){2, 8}, &e);
}
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
static void latin1_label(hid_t f) { /* predictions name labels in JSON, which is UTF-8 */
  drop_labels(f);
  epee_err e;
  char *names[C];
  for (int i = 0; i < C; i++) names[i] = i == 1 ? "caf\xe9" : labels[i];
  h5_write_strings(f, "labels", names, C, &e);
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
static void old_version(hid_t f) { set_attr(f, "format_version", "2"); }
static void new_version(hid_t f) { set_attr(f, "format_version", "4"); }
static void vit_arch(hid_t f) { set_attr(f, "arch", "vit"); } /* a BERT file: no image_config */
static void unknown_arch(hid_t f) { set_attr(f, "arch", "vitt"); }
static void albert_arch(hid_t f) { set_attr(f, "arch", "albert"); } /* a BERT config: no embedding_size */
static void gpt2_arch(hid_t f) { set_attr(f, "arch", "gpt2"); }     /* a BERT config: no exit_norm */
/* albert.h5's model_config without embedding_size */
static void albert_no_embedding_size(hid_t f) {
  char *mc = model_config_to_json(&albert), *at = strstr(mc, "\"embedding_size\":8,");
  CU_ASSERT_FATAL(at != NULL);
  memmove(at, at + strlen("\"embedding_size\":8,"), strlen(at + strlen("\"embedding_size\":8,")) + 1);
  set_attr(f, "model_config", mc);
  free(mc);
}
static void albert_too_many_groups(hid_t f) {
  char *mc = model_config_to_json(&albert), *at = strstr(mc, "\"hidden_groups\":2");
  CU_ASSERT_FATAL(at != NULL);
  at[strlen("\"hidden_groups\":")] = '5';
  set_attr(f, "model_config", mc);
  free(mc);
}
static void config_no_type_vocab(hid_t f) {
  set_attr(f, "model_config", "{\"vocab\":30,\"hidden\":16,\"layers\":3,\"heads\":2,\"intermediate\":24,"
                              "\"max_position\":12,\"num_labels\":3,\"layer_norm_eps\":1e-12}");
}
static void no_policy(hid_t f) { H5Adelete(f, "policy"); }
static void config_not_json(hid_t f) { set_attr(f, "model_config", "{\"vocab\": 30, hidden: 16}"); }
static void config_no_hidden(hid_t f) {
  set_attr(f, "model_config", "{\"vocab\":30,\"layers\":3,\"heads\":2,\"intermediate\":24,\"max_position\":12,"
                              "\"type_vocab\":2,\"num_labels\":3,\"layer_norm_eps\":1e-12}");
}
/* hidden 4096, every BERT weight counted: embeddings (30 + 12 + 2) * 4096 + LayerNorm 2 * 4096; per layer
 * 4 * (4096^2 + 4096) + 24 * 4096 + 24 + 4096 * 24 + 4096 + 2 * 2 * 4096 = 67342360, times 3; pooler 4096^2 + 4096;
 * exits 3 * (3 * 4096 + 3): 219033681 weights, 876.1 MB, more than the file's size can hold: refused before
 * allocating */
static void config_big(hid_t f) {
  set_attr(f, "model_config", "{\"vocab\":30,\"hidden\":4096,\"layers\":3,\"heads\":2,\"intermediate\":24,"
                              "\"max_position\":12,\"type_vocab\":2,\"num_labels\":3,\"layer_norm_eps\":1e-12}");
}
static void long_max_length(hid_t f) {
  set_attr(f, "tokenizer_config", "{\"type\":\"wordpiece\",\"lowercase\":true,\"max_length\":64}");
}
static void short_max_length(hid_t f) {
  set_attr(f, "tokenizer_config", "{\"type\":\"wordpiece\",\"lowercase\":true,\"max_length\":1}");
}
static void bpe_tokenizer(hid_t f) {
  set_attr(f, "tokenizer_config", "{\"type\":\"bpe\",\"lowercase\":false,\"max_length\":8}");
}
static void unknown_tokenizer(hid_t f) {
  set_attr(f, "tokenizer_config", "{\"type\":\"word piece\",\"lowercase\":true,\"max_length\":8}");
}
static void untyped_tokenizer(hid_t f) { set_attr(f, "tokenizer_config", "{\"lowercase\":true,\"max_length\":8}"); }
static void cased_tokenizer(hid_t f) { /* a valid edit: the checksum goes with it */
  set_attr(f, "tokenizer_config", "{\"type\":\"wordpiece\",\"lowercase\":false,\"max_length\":10}");
  H5Adelete(f, "checksum");
}
static void policy_unknown(hid_t f) { set_attr(f, "policy", "{\"name\":\"fastest\",\"tau\":0.1,\"patience\":2}"); }
static void policy_zero_patience(hid_t f) { set_attr(f, "policy", "{\"name\":\"epee\",\"tau\":0.1,\"patience\":0}"); }
static void policy_edited(hid_t f) { set_attr(f, "policy", "{\"name\":\"epee\",\"tau\":0.5,\"patience\":2}"); }
static void policy_edited_unchecked(hid_t f) {
  policy_edited(f);
  H5Adelete(f, "checksum");
}

static void policy_temperature_count(hid_t f) {
  set_attr(f, "policy", "{\"name\":\"epee\",\"tau\":0.03,\"patience\":2,\"temperature\":[1,2]}");
}
static void policy_temperature_zero(hid_t f) {
  set_attr(f, "policy", "{\"name\":\"epee\",\"tau\":0.03,\"patience\":2,\"temperature\":[1,0,2]}");
}
static void policy_temperature_text(hid_t f) {
  set_attr(f, "policy", "{\"name\":\"epee\",\"tau\":0.03,\"patience\":2,\"temperature\":[1,\"2\",2]}");
}

/* Per-exit temperatures: stored in the policy attribute, read back bit for bit (a file without them reads with
 * none: test_round_trip); a bad one is neither written nor read. */
static void test_temperatures(void) {
  static const float temp[3] = {1.5f, 0.03f, 2.7182817f};
  char path[160];
  snprintf(path, sizeof path, "%s/temperatures.h5", dir);
  epee_err e;
  m.temperature = malloc(sizeof temp);
  memcpy(m.temperature, temp, sizeof temp);
  CU_ASSERT_FATAL(model_file_write(path, &m, &meta, &e) == 0);
  check_round_trip(path, &m, &meta);
  char *pc = read_attr(path, "policy");
  CU_ASSERT_STRING_EQUAL(pc, "{\"name\":\"epee\",\"tau\":0.03,\"patience\":2,\"temperature\":[1.5,0.03,2.7182817]}");
  free(pc);
  m.temperature[1] = 0;
  CU_ASSERT_EQUAL(model_file_write(path, &m, &meta, &e), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "not written: temperature of exit 2 is 0"));
  free(m.temperature);
  m.temperature = NULL;
  expect_error(variant("temperature_count.h5", policy_temperature_count),
               "attribute 'policy': \"temperature\" must be an array of 3 numbers (one per exit)");
  expect_error(variant("temperature_zero.h5", policy_temperature_zero),
               "attribute 'policy': \"temperature\"[1] must be a number in [0.001, 1000], found '0'");
  expect_error(variant("temperature_text.h5", policy_temperature_text), "\"temperature\"[1] must be a number");
}

static void test_bad_files(void) {
  expect_error(variant("missing_weight.h5", drop_weight), "dataset 'weights/bert.pooler.dense.bias' is missing");
  expect_error(variant("missing_labels.h5", drop_labels), "dataset 'labels' is missing");
  expect_error(variant("wrong_shape.h5", wrong_shape),
               "dataset 'weights/classifiers.1.weight': expected shape [3, 16], found [4, 16]");
  expect_error(variant("int_weights.h5", int_weights), "'weights/classifiers.0.bias': expected float data");
  expect_error(variant("two_labels.h5", two_labels), "dataset 'labels' has 2 names but the exits have 3 classes");
  expect_error(variant("dup_labels.h5", dup_labels), "dataset 'labels': name 1 is a duplicate");
  expect_error(variant("latin1_label.h5", latin1_label), "dataset 'labels': name 1 is not valid UTF-8");
  expect_error(variant("huge_labels.h5", huge_labels), "dataset 'labels': dimension 0 is 4294967299, above");
  expect_error(variant("format_array.h5", format_array), "attribute 'format': expected one variable-length string");
  expect_error(variant("nan.h5", nan_weight), "'weights/bert.embeddings.LayerNorm.weight': element 5 is nan");
  expect_error(variant("no_format.h5", no_format), "not an EPEE-C model file (no 'format' attribute)");
  expect_error(variant("checkpoint.h5", other_format), "format 'epee-train-checkpoint' is not 'epee-model'");
  /* versions: 2 (a string-list vocabulary, BERT only) and any later one are refused, naming this build's */
  expect_error(variant("version2.h5", old_version), "format_version '2' is not supported (this build reads version 3;");
  expect_error(variant("version4.h5", new_version), "format_version '4' is not supported (this build reads version 3;");
  /* the arch: one of the registry, with every model_config field it needs */
  expect_error(variant("arch_unknown.h5", unknown_arch), "arch 'vitt' is not supported by this build (bert, albert, gpt2, vit)");
  expect_error(variant("arch_vit.h5", vit_arch), "attribute 'image_config'");
  expect_error(variant("arch_albert.h5", albert_arch),
               "attribute 'model_config': \"embedding_size\" must be an integer in [1, 65536], found nothing");
  expect_error(variant("arch_gpt2.h5", gpt2_arch),
               "attribute 'model_config': \"exit_norm\" must be true or false, found nothing");
  expect_error(variant_of(albert_path, "albert_no_e.h5", albert_no_embedding_size),
               "attribute 'model_config': \"embedding_size\" must be an integer in [1, 65536], found nothing");
  expect_error(variant_of(albert_path, "albert_groups.h5", albert_too_many_groups),
               "albert: model hidden_groups 5 exceeds layers 4");
  expect_error(variant("no_type_vocab.h5", config_no_type_vocab),
               "\"type_vocab\" must be an integer in [1, 65536], found nothing");
  expect_error(variant("no_policy.h5", no_policy), "attribute 'policy' is missing");
  expect_error(variant("config_json.h5", config_not_json),
               "attribute 'model_config':1:20: string or '}' expected near 'hidden'");
  expect_error(variant("config_hidden.h5", config_no_hidden),
               "\"hidden\" must be an integer in [1, 65536], found nothing");
  expect_error(variant("config_big.h5", config_big), "the config describes 219033681 weights (876.1 MB) but at most");
  /* the tokenizer: a kind the arch accepts, its files present and valid, room for its specials */
  expect_error(variant("max_length.h5", long_max_length), "\"max_length\" must be an integer in [1, 12], found '64'");
  expect_error(variant("max_length1.h5", short_max_length),
               "\"max_length\" 1 leaves no room for the wordpiece tokenizer's specials (at least 2)");
  expect_error(variant("bpe.h5", bpe_tokenizer),
               "attribute 'tokenizer_config': \"type\" 'bpe' is not a tokenizer of arch bert (expected wordpiece, "
               "sentencepiece)");
  expect_error(variant("tok_unknown.h5", unknown_tokenizer), "\"type\" 'word piece' is not a tokenizer of arch bert");
  expect_error(variant("tok_untyped.h5", untyped_tokenizer), "\"type\" nothing is not a tokenizer of arch bert");
  { /* a cased WordPiece (lowercase false, e.g. an imported bert-base-cased) is a valid model file */
    model r;
    model_meta rm;
    epee_err e = {{0}};
    int rc = model_file_read(variant("tok_cased.h5", cased_tokenizer), &r, &rm, &e);
    if (rc) printf("\n    %s", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(rm.tok->lowercase, 0);
    model_free(&r);
    model_meta_free(&rm);
  }
  expect_error(variant("missing_vocab.h5", drop_vocab), "dataset 'tokenizer/vocab.txt' is missing");
  expect_error(variant("vocab_no_pad.h5", vocab_no_pad), "dataset 'tokenizer/vocab.txt': vocabulary has no [PAD] line");
  expect_error(variant("vocab_big.h5", vocab_too_big),
               "the wordpiece tokenizer has 33 ids but model_config says vocab 30");
  expect_error(variant("vocab_floats.h5", vocab_floats), "dataset 'tokenizer/vocab.txt': expected unsigned 8-bit");
  expect_error(variant("vocab_int32.h5", vocab_int32), "dataset 'tokenizer/vocab.txt': expected unsigned 8-bit");
  expect_error(variant("vocab_2d.h5", vocab_2d), "dataset 'tokenizer/vocab.txt': expected 1 to ");
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

/* One changed character of the vocabulary file: the tokenizer's files carry HDF5's Fletcher-32 checksum. */
static void test_corrupted_vocab(void) {
  size_t n;
  unsigned char *b = slurp(good, &n);
  unsigned char *at = memmem(b, n, "##p28", 5);
  CU_ASSERT_FATAL(at != NULL);
  at[3] = 'q';
  char path[160];
  snprintf(path, sizeof path, "%s/corrupt_vocab.h5", dir);
  spit_refused_then_resealed(path, b, n);
  expect_error(path, "dataset 'tokenizer/vocab.txt': read failed (file truncated or corrupted?)");
  printf("\n");
  free(b);
}

/* One changed character of a label (HDF5 keeps no checksum on string data): the content checksum. */
static void test_corrupted_label(void) {
  size_t n;
  unsigned char *b = slurp(good, &n);
  unsigned char *at = memmem(b, n, "cellular", 8);
  CU_ASSERT_FATAL(at != NULL);
  CU_ASSERT_PTR_NULL(memmem(at + 8, n - (size_t)(at + 8 - b), "cellular", 8)); /* stored once */
  at[0] = 'k';
  char path[160];
  snprintf(path, sizeof path, "%s/corrupt_label.h5", dir);
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
               r.arch == m.arch && rm.policy.kind == meta.policy.kind && rm.policy.tau == meta.policy.tau &&
               rm.policy.patience == meta.policy.patience && rm.max_length == meta.max_length && rm.n_labels == C &&
               rm.tok && rm.tok->kind == wp->kind && rm.tok->assets[0].len == vocab_len &&
               memcmp(rm.tok->assets[0].data, vocab_txt, vocab_len) == 0 &&
               !strcmp(rm.metrics_json, meta.metrics_json) && !strcmp(rm.train_config_json, meta.train_config_json);
    for (int i = 0; i < MF_COUNT; i++) /* every config field the arch reads (printing nothing in the child) */
      if (m.arch->fields & MF_BIT(i))
        same &= memcmp((const char *)&r.cfg + model_fields[i].offset, (const char *)&m.cfg + model_fields[i].offset,
                       model_fields[i].type == MFT_FLOAT ? sizeof(float) : sizeof(int)) == 0;
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
  CU_add_test(s, "write then read is bit-exact (bert)", test_round_trip);
  CU_add_test(s, "write then read is bit-exact (albert: E 8, 2 groups, 4 layers)", test_round_trip_albert);
  CU_add_test(s, "write then read is bit-exact (gpt2: exit_norm 0 and 1, bpe)", test_round_trip_gpt2);
  CU_add_test(s, "gpt2 with a WordPiece tokenizer is never served", test_gpt2_refuses_wordpiece);
  CU_add_test(s, "write then read is bit-exact (vit: image_config, no tokenizer); broken image_config refused",
              test_round_trip_vit);
  CU_add_test(s, "layout: HF names, PyTorch shapes, float32, checksummed", test_layout);
  CU_add_test(s, "weights under any group (checkpoints)", test_weights_group);
  CU_add_test(s, "atomic write; inconsistent meta refused", test_atomic_write);
  CU_add_test(s, "broken, foreign and inconsistent files: one clear line", test_bad_files);
  CU_add_test(s, "per-exit temperatures: round trip, bad ones refused", test_temperatures);
  CU_add_test(s, "unsealed or edited after sealing: refused", test_seal);
  CU_add_test(s, "truncated at every tenth", test_truncated);
  CU_add_test(s, "corrupted tensor named by its checksum", test_corrupted_weight);
  CU_add_test(s, "corrupted vocabulary file named by its checksum", test_corrupted_vocab);
  CU_add_test(s, "corrupted label caught by the content checksum", test_corrupted_label);
  CU_add_test(s, "corrupted anywhere: refused or harmless, never a crash", test_corrupted_anywhere);
}
