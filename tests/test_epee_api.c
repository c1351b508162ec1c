/* The public API (infer/epee.h) and the epee-infer CLI, end to end on a tiny model file written here:
 *  - texts through the API == the same texts tokenised by hand and run through the engine one by one;
 *  - chunking above max_batch, NULL optional outputs, per-call policies, bad arguments refused whole;
 *  - threads sharing one model through their own sessions get the sequential answers;
 *  - the CLI's predictions (file, stdin, JSON Lines) equal the API's, in input order; bad input files and
 *    options give one line and the documented exit status. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/json.h"
#include "core/progress.h"
#include "core/rng.h"
#include "data/wordpiece.h"
#include "infer/engine.h"
#include "infer/epee.h"
#include "infer/model_file.h"

enum { L = 4, C = 3, MAXLEN = 12, NT = 10 };
static const char *words[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cell", "membrane", "protein", "binding",
                              "process", "of", "##s", "glucose", "reaction", "a", "to", ".", ",", "any", "that",
                              "involving", "chemical", "activity", "complex", "transport", "nucleus", "dna",
                              "repair", "mitochondrial", "genome"};
#define V ((int)(sizeof words / sizeof words[0]))
static const char *label_names[C] = {"BP", "CC", "MF"};
static const char *texts[NT] = {
    "The chemical reactions involving glucose.", "Binding to a protein.", "Any process that", "DNA repair",
    "The mitochondrial genome, the nucleus and the membrane of the cell", "complex",
    "Transport of proteins to the nucleus.",
    "", "activity activity activity", "The cell membrane binding activity of a protein complex involving DNA"};
static char dir[64], model_path[128];
static epee_model *em;

static int setup(void) {
  snprintf(dir, sizeof dir, "/tmp/epee-api-XXXXXX");
  if (!mkdtemp(dir)) return 1;
  snprintf(model_path, sizeof model_path, "%s/model.h5", dir);
  model_config cfg = {.vocab = V, .hidden = 16, .layers = L, .heads = 2, .intermediate = 32, .max_position = 16,
                      .type_vocab = 2, .num_labels = C, .layer_norm_eps = 1e-12f, .init_std = 0.2f};
  const model_arch *a = model_find_arch("bert");
  model m;
  epee_err e;
  if (!a || model_create(&m, a, &cfg, PARAMS_TRAIN, 0, &e)) return 1;
  a->init(&m, 11);
  for (int i = 0; i < m.ps.n; i++) /* confident exits, so that early exits happen */
    if (!strncmp(m.ps.t[i]->name, "classifiers.", 12))
      for (int64_t k = 0; k < m.ps.t[i]->n; k++) m.ps.t[i]->data[k] *= 20.0f;
  char vocab_txt[1024] = ""; /* vocab.txt: one token per line, id = line - 1 */
  for (int i = 0; i < V; i++)
    snprintf(vocab_txt + strlen(vocab_txt), sizeof vocab_txt - strlen(vocab_txt), "%s\n", words[i]);
  tokenizer *tok = tok_load(&tok_wordpiece, (tok_asset[]){{"vocab.txt", (unsigned char *)vocab_txt, strlen(vocab_txt)}},
                            (const char *const[]){"test vocab"}, 1, &e);
  if (!tok) {
    fprintf(stderr, "setup: %s\n", e.msg);
    model_free(&m);
    return 1;
  }
  model_meta meta = {.labels = (char **)label_names, .n_labels = C, .tok = tok, .max_length = MAXLEN,
                     .policy = {EPEE_POLICY_EPEE, 0.2f, 2}, .metrics_json = "{\"dev\":1}"};
  int rc = model_file_write(model_path, &m, &meta, &e);
  model_free(&m);
  tok_free(tok);
  if (rc) return 1;
  char err[256];
  em = epee_model_load(model_path, err, sizeof err);
  return em == NULL;
}

static int teardown(void) {
  epee_model_free(em);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) != 0;
}

/* ---- reference: the file's tokenizer and the engine, one text at a time -------------------------------- */

static void reference(const epee_policy *p, int *lab, int *lay, float *probs) {
  model m;
  model_meta meta;
  epee_err e;
  CU_ASSERT_FATAL(model_file_read(model_path, &m, &meta, &e) == 0);
  const tokenizer *tok = meta.tok; /* the file's own tokenizer */
  CU_ASSERT_FATAL(tok != NULL);
  engine g;
  CU_ASSERT_FATAL(engine_init(&g, &m, 1, MAXLEN, &e) == 0);
  for (int i = 0; i < NT; i++) {
    int32_t ids[MAXLEN], ty[MAXLEN];
    float mask[MAXLEN];
    int n = tok_encode(tok, texts[i], NULL, MAXLEN, ids, ty, NULL);
    for (int t = 0; t < n; t++) mask[t] = 1;
    model_batch mb = {.B = 1, .T = n, .ids = ids, .type_ids = ty, .mask = mask};
    engine_classify(&g, &mb, p, lab + i, lay + i, probs + i * C, NULL);
  }
  engine_free(&g);
  model_free(&m);
  model_meta_free(&meta);
}

static void test_load_and_accessors(void) {
  char err[256] = "";
  CU_ASSERT_PTR_NULL(epee_model_load("/nonexistent/model.h5", err, sizeof err));
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/model.h5: cannot read file"));
  CU_ASSERT_PTR_NULL(epee_model_load("/nonexistent/model.h5", NULL, 0)); /* err is optional */
  CU_ASSERT_EQUAL(epee_model_num_labels(em), C);
  CU_ASSERT_EQUAL(epee_model_num_layers(em), L);
  CU_ASSERT_EQUAL(epee_model_max_length(em), MAXLEN);
  CU_ASSERT_STRING_EQUAL(epee_model_label(em, 1), "CC");
  CU_ASSERT_PTR_NULL(epee_model_label(em, C));
  CU_ASSERT_PTR_NULL(epee_model_label(em, -1));
  epee_exit_policy p = epee_model_policy(em);
  CU_ASSERT_STRING_EQUAL(p.name, "epee");
  CU_ASSERT_EQUAL(p.tau, 0.2f);
  CU_ASSERT_EQUAL(p.patience, 2);
  CU_ASSERT_STRING_EQUAL(epee_model_metrics_json(em), "{\"dev\":1}");
  CU_ASSERT_PTR_NULL(epee_session_new(em, 0, err, sizeof err));
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "max_batch must be at least 1"));
}

static void test_texts_equal_reference(void) {
  epee_policy cal = {EPEE_POLICY_EPEE, 0.2f, 2}, none = {EPEE_POLICY_NONE, 0, 0};
  int rlab[NT], rlay[NT], lab[NT], lay[NT], early = 0;
  float rprobs[NT * C], probs[NT * C];
  for (int max_batch = 1; max_batch <= NT + 2; max_batch += 3) { /* 1, 4, 7, 10, 13: chunks of every size */
    epee_session *s = epee_session_new(em, max_batch, NULL, 0);
    CU_ASSERT_FATAL(s != NULL);
    reference(&cal, rlab, rlay, rprobs); /* NULL policy = the calibrated one from the file */
    float ms[NT];
    double t0 = now_seconds();
    CU_ASSERT_FATAL(epee_classify_texts(s, NT, texts, NULL, NULL, lab, lay, probs, ms) == 0);
    double call_ms = 1e3 * (now_seconds() - t0);
    for (int i = 0; i < NT; i++) CU_ASSERT(ms[i] > 0 && ms[i] <= call_ms + 1e-3); /* within the call */
    for (int i = 0; i < NT; i++) {
      CU_ASSERT(lab[i] == rlab[i] && lay[i] == rlay[i]);
      for (int k = 0; k < C; k++) CU_ASSERT(fabsf(probs[i * C + k] - rprobs[i * C + k]) <= 1e-5f);
      early += lay[i] < L;
    }
    int lab2[NT];
    CU_ASSERT(epee_classify_texts(s, NT, texts, NULL, NULL, lab2, NULL, NULL, NULL) == 0); /* optional outputs */
    CU_ASSERT(memcmp(lab2, lab, sizeof lab) == 0);
    reference(&none, rlab, rlay, rprobs);
    epee_exit_policy full = {"none", 0, 0};
    CU_ASSERT_FATAL(epee_classify_texts(s, NT, texts, NULL, &full, lab, lay, NULL, NULL) == 0);
    for (int i = 0; i < NT; i++) CU_ASSERT(lab[i] == rlab[i] && lay[i] == L);
    CU_ASSERT_STRING_EQUAL(epee_session_error(s), "");
    epee_session_free(s);
  }
  printf("  %d early exits ", early);
  CU_ASSERT(early > 0);
}

static void test_ids_and_pairs(void) {
  epee_session *s = epee_session_new(em, 4, NULL, 0);
  CU_ASSERT_FATAL(s != NULL);
  /* two texts through epee_classify_ids, padded to a common T, equal to the texts call */
  int32_t ids[2 * MAXLEN], ty[2 * MAXLEN];
  float mask[2 * MAXLEN];
  model m;
  model_meta meta;
  epee_err e;
  CU_ASSERT_FATAL(model_file_read(model_path, &m, &meta, &e) == 0);
  const tokenizer *tok = meta.tok;
  CU_ASSERT_FATAL(tok != NULL);
  CU_ASSERT_EQUAL(tok->sp.pad, 0);
  for (int r = 0; r < 2; r++) {
    int n = tok_encode(tok, texts[4 * r], NULL, MAXLEN, ids + r * MAXLEN, ty + r * MAXLEN, NULL);
    for (int t = 0; t < MAXLEN; t++) {
      mask[r * MAXLEN + t] = t < n;
      if (t >= n) ids[r * MAXLEN + t] = tok->sp.pad, ty[r * MAXLEN + t] = 0;
    }
  }
  const char *two[2] = {texts[0], texts[4]};
  int lab[2], lay[2], tlab[2], tlay[2];
  CU_ASSERT(epee_classify_ids(s, 2, MAXLEN, ids, ty, mask, NULL, lab, lay, NULL, NULL) == 0);
  CU_ASSERT(epee_classify_texts(s, 2, two, NULL, NULL, tlab, tlay, NULL, NULL) == 0);
  CU_ASSERT(lab[0] == tlab[0] && lab[1] == tlab[1] && lay[0] == tlay[0] && lay[1] == tlay[1]);
  /* a pair: [CLS] a [SEP] b [SEP] with type ids 0/1 */
  const char *a[1] = {texts[1]}, *b[1] = {texts[3]};
  int n = tok_encode(tok, a[0], b[0], MAXLEN, ids, ty, NULL);
  for (int t = 0; t < n; t++) mask[t] = 1;
  CU_ASSERT(epee_classify_ids(s, 1, n, ids, ty, mask, NULL, lab, lay, NULL, NULL) == 0);
  CU_ASSERT(epee_classify_texts(s, 1, a, b, NULL, tlab, tlay, NULL, NULL) == 0);
  CU_ASSERT(lab[0] == tlab[0] && lay[0] == tlay[0]);
  model_free(&m);
  model_meta_free(&meta);
  epee_session_free(s);
}

/* Every bad argument: -1, one line naming it, and the outputs untouched. */
#define EXPECT_FAIL(s, call, needle)                                    \
  do {                                                                  \
    CU_ASSERT_EQUAL((call), -1);                                        \
    CU_ASSERT_PTR_NOT_NULL(strstr(epee_session_error(s), (needle)));    \
    CU_ASSERT_PTR_NULL(strchr(epee_session_error(s), '\n'));            \
  } while (0)

static void test_bad_arguments(void) {
  epee_session *s = epee_session_new(em, 4, NULL, 0);
  CU_ASSERT_FATAL(s != NULL);
  int32_t ids[8] = {2, 5, 6, 3, 2, 7, 3, 0}, big[8] = {2, 5, 6, 3, 2, V, 3, 0};
  int32_t ty[8] = {0}, bad_ty[8] = {0, 0, 2, 0, 0, 0, 0, 0};
  float mask[8] = {1, 1, 1, 1, 1, 1, 1, 0}, hole[8] = {1, 1, 1, 1, 0, 1, 1, 0}, half[8] = {1, 0.5f, 1, 1, 1, 1, 1, 0};
  int lab[NT], lay[NT];
  for (int i = 0; i < NT; i++) lab[i] = lay[i] = -3;
  const char *with_null[2] = {"the cell", NULL};
  epee_exit_policy unknown = {"fastest", 0, 0}, unnamed = {NULL, 0, 0}, neg_tau = {"entropy", -0.5f, 0},
                   no_patience = {"patience", 0, 0};
  EXPECT_FAIL(s, epee_classify_ids(s, 2, 4, big, ty, mask, NULL, lab, lay, NULL, NULL),
              "row 1, position 1: token id 30 outside the vocabulary [0, 30)");
  EXPECT_FAIL(s, epee_classify_ids(s, 2, 4, ids, bad_ty, mask, NULL, lab, lay, NULL, NULL),
              "row 0, position 2: type id 2 outside [0, 2)");
  EXPECT_FAIL(s, epee_classify_ids(s, 2, 4, ids, ty, hole, NULL, lab, lay, NULL, NULL), "row 1: mask[0] is 0");
  EXPECT_FAIL(s, epee_classify_ids(s, 2, 4, ids, ty, half, NULL, lab, lay, NULL, NULL),
              "row 0, position 1: mask 0.5, expected 0 or 1");
  EXPECT_FAIL(s, epee_classify_ids(s, 1, MAXLEN + 1, ids, ty, mask, NULL, lab, lay, NULL, NULL),
              "T = 13; expected n >= 0 and 1 <= T <= 12");
  EXPECT_FAIL(s, epee_classify_texts(s, 2, with_null, NULL, NULL, lab, lay, NULL, NULL), "texts[1] is NULL");
  EXPECT_FAIL(s, epee_classify_texts(s, -1, texts, NULL, NULL, lab, lay, NULL, NULL), "n = -1");
  EXPECT_FAIL(s, epee_classify_texts(s, 1, texts, NULL, &unknown, lab, lay, NULL, NULL),
              "policy 'fastest': expected none, entropy, patience, epee or pcee");
  EXPECT_FAIL(s, epee_classify_texts(s, 1, texts, NULL, &unnamed, lab, lay, NULL, NULL), "policy '(null)'");
  EXPECT_FAIL(s, epee_classify_texts(s, 1, texts, NULL, &neg_tau, lab, lay, NULL, NULL),
              "policy entropy: tau -0.5, expected a finite number >= 0");
  EXPECT_FAIL(s, epee_classify_texts(s, 1, texts, NULL, &no_patience, lab, lay, NULL, NULL),
              "policy patience: patience 0, expected an integer >= 1");
  for (int i = 0; i < NT; i++) CU_ASSERT(lab[i] == -3 && lay[i] == -3); /* nothing written on failure */
  CU_ASSERT(epee_classify_texts(s, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL) == 0); /* nothing to do */
  CU_ASSERT_STRING_EQUAL(epee_session_error(s), "");                             /* a success clears it */
  epee_session_free(s);
}

/* ---- threads: one shared model, a session each ------------------------------------------------------- */

typedef struct {
  int lab[4][NT], lay[4][NT];
  float probs[4][NT * C];
  int rc;
} thread_out;

static const epee_exit_policy thread_policies[4] = {{"epee", 0.2f, 2}, {"entropy", 0.3f, 0}, {"patience", 0, 1},
                                                    {"none", 0, 0}};

static void *classify_all(void *arg) {
  thread_out *o = arg;
  epee_session *s = epee_session_new(em, 3, NULL, 0);
  o->rc = s ? 0 : -1;
  for (int rep = 0; s && rep < 20; rep++)
    for (int k = 0; k < 4; k++)
      o->rc |= epee_classify_texts(s, NT, texts, NULL, &thread_policies[k], o->lab[k], o->lay[k], o->probs[k], NULL);
  epee_session_free(s);
  return NULL;
}

static void test_threads_share_the_model(void) {
  enum { NTH = 4 };
  thread_out seq, par[NTH];
  classify_all(&seq);
  CU_ASSERT_FATAL(seq.rc == 0);
  pthread_t th[NTH];
  for (int i = 0; i < NTH; i++) CU_ASSERT_FATAL(pthread_create(&th[i], NULL, classify_all, &par[i]) == 0);
  for (int i = 0; i < NTH; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < NTH; i++) {
    CU_ASSERT(par[i].rc == 0);
    CU_ASSERT(memcmp(par[i].lab, seq.lab, sizeof seq.lab) == 0);
    CU_ASSERT(memcmp(par[i].lay, seq.lay, sizeof seq.lay) == 0);
    for (int k = 0; k < 4; k++)
      for (int j = 0; j < NT * C; j++) CU_ASSERT(fabsf(par[i].probs[k][j] - seq.probs[k][j]) <= 1e-5f);
  }
}

/* ---- the CLI ------------------------------------------------------------------------------------------ */

static char cli[4200];

/* runs "epee-infer ARGS" (with `input` on stdin if not NULL); stdout and stderr into *out and *err (static
 * buffers); returns the exit status */
static int run_cli(const char *args, const char *input, char **out, char **err) {
  static char obuf[1 << 16], ebuf[1 << 16];
  char cmd[8192], in_path[160], out_path[160], err_path[160];
  snprintf(in_path, sizeof in_path, "%s/stdin.txt", dir);
  snprintf(out_path, sizeof out_path, "%s/stdout.txt", dir);
  snprintf(err_path, sizeof err_path, "%s/stderr.txt", dir);
  FILE *f = fopen(in_path, "w");
  if (input) fputs(input, f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "%s %s < %s > %s 2> %s", cli, args, in_path, out_path, err_path);
  int st = system(cmd);
  char *bufs[2] = {obuf, ebuf};
  const char *paths[2] = {out_path, err_path};
  for (int k = 0; k < 2; k++) {
    f = fopen(paths[k], "r");
    size_t n = f ? fread(bufs[k], 1, (1 << 16) - 1, f) : 0;
    bufs[k][n] = '\0';
    if (f) fclose(f);
  }
  *out = obuf;
  *err = ebuf;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* line i of JSON Lines predictions (valid JSON) -> label index and exit layer; its "id" printed as JSON into id
 * (NULL: not wanted); with all_probs, "probs" must hold every label, sum to 1 and give the label's confidence */
static int parse_prediction_(const char *jsonl, int i, int *label, int *layer, char *id, int all_probs) {
  for (int k = 0; k < i && jsonl; k++) jsonl = strchr(jsonl, '\n'), jsonl = jsonl ? jsonl + 1 : NULL;
  if (!jsonl) return -1;
  json_t *o = epee_json_parse(jsonl, strcspn(jsonl, "\n"), "predictions", i + 1, NULL);
  const json_t *name = json_object_get(o, "label"), *conf = json_object_get(o, "confidence");
  const json_t *lay = json_object_get(o, "exit_layer"), *probs = json_object_get(o, "probs");
  int ok = json_is_string(name) && json_is_number(conf) && json_is_integer(lay) && json_number_value(conf) > 0 &&
           json_number_value(conf) <= 1 && (probs != NULL) == all_probs;
  *label = -1;
  for (int k = 0; ok && k < C; k++)
    if (!strcmp(json_string_value(name), label_names[k])) *label = k;
  if (ok) *layer = (int)json_integer_value(lay);
  if (ok && id) {
    char *s = json_dumps(json_object_get(o, "id"), JSON_ENCODE_ANY);
    snprintf(id, 32, "%s", s ? s : "none");
    free(s);
  }
  double sum = 0;
  for (int k = 0; ok && all_probs && k < C; k++) {
    const json_t *p = json_object_get(probs, label_names[k]);
    ok = json_is_number(p) && (k != *label || fabs(json_number_value(p) - json_number_value(conf)) < 1e-9);
    sum += ok ? json_number_value(p) : 0;
  }
  ok = ok && (!all_probs || (fabs(sum - 1) < 1e-4 && json_object_size(probs) == (size_t)C));
  json_decref(o);
  return ok && *label >= 0 ? 0 : -1;
}
static int parse_prediction(const char *jsonl, int i, int *label, int *layer) {
  return parse_prediction_(jsonl, i, label, layer, NULL, 0);
}

static int setup_cli(void) {
  if (setup()) return 1;
  const char *b = getenv("EPEE_BUILD_DIR");
  snprintf(cli, sizeof cli, "%s/infer/epee-infer", b ? b : "build");
  return access(cli, X_OK) != 0; /* ctest sets EPEE_BUILD_DIR */
}

static void test_cli_predictions(void) {
  char path[160], args[600], *out, *err;
  int lab[NT], lay[NT];
  epee_session *s = epee_session_new(em, 4, NULL, 0);
  CU_ASSERT_FATAL(epee_classify_texts(s, NT, texts, NULL, NULL, lab, lay, NULL, NULL) == 0);
  epee_session_free(s);
  /* TSV with gold labels, predictions to a file, report on stdout */
  snprintf(path, sizeof path, "%s/gold.tsv", dir);
  FILE *f = fopen(path, "w");
  fprintf(f, "label\ttext\n");
  for (int i = 0; i < NT; i++) fprintf(f, "%s\t%s\n", label_names[i % C], texts[i]);
  fclose(f);
  snprintf(args, sizeof args, "%s --input %s --batch 3 --output %s/preds.jsonl", model_path, path, dir);
  CU_ASSERT_EQUAL(run_cli(args, NULL, &out, &err), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "macro-F1"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "wall-clock speed-up"));
  snprintf(path, sizeof path, "%s/preds.jsonl", dir);
  f = fopen(path, "r");
  CU_ASSERT_FATAL(f != NULL);
  static char preds[1 << 14];
  preds[fread(preds, 1, sizeof preds - 1, f)] = '\0';
  fclose(f);
  CU_ASSERT_EQUAL(count_lines(preds), NT);
  for (int i = 0; i < NT; i++) { /* each carries its line in gold.tsv (the header is line 1) */
    int y, l;
    char id[32], want[32];
    CU_ASSERT_FATAL(parse_prediction_(preds, i, &y, &l, id, 0) == 0);
    CU_ASSERT(y == lab[i] && l == lay[i]);
    snprintf(want, sizeof want, "%d", i + 2);
    CU_ASSERT_STRING_EQUAL(id, want);
  }
  /* JSON Lines on stdin, no labels: predictions on stdout, same answers */
  static char jsonl[4096];
  int k = 0;
  for (int i = 0; i < NT; i++)
    k += snprintf(jsonl + k, sizeof jsonl - (size_t)k, "{\"id\": %d, \"text\": \"%s\"}\n", i, texts[i]);
  snprintf(args, sizeof args, "%s --input - --batch 64 --id-column id --all-probs", model_path);
  CU_ASSERT_EQUAL(run_cli(args, jsonl, &out, &err), 0);
  CU_ASSERT_EQUAL(count_lines(out), NT);
  for (int i = 0; i < NT; i++) { /* with --id-column id, each its "id"; with --all-probs, every class's probability */
    int y, l;
    char id[32], want[32];
    CU_ASSERT_FATAL(parse_prediction_(out, i, &y, &l, id, 1) == 0);
    CU_ASSERT(y == lab[i] && l == lay[i]);
    snprintf(want, sizeof want, "\"%d\"", i);
    CU_ASSERT_STRING_EQUAL(id, want);
  }
  /* --policy none: every input runs all layers */
  snprintf(args, sizeof args, "%s --input - --policy none", model_path);
  CU_ASSERT_EQUAL(run_cli(args, jsonl, &out, &err), 0);
  for (int i = 0; i < NT; i++) {
    int y, l;
    CU_ASSERT(parse_prediction(out, i, &y, &l) == 0 && l == L);
  }
  /* --tokenize: per input, in input order, exactly the ids the model's own tokenizer gives (specials included,
   * truncated to the model's max length) */
  snprintf(args, sizeof args, "%s --input - --tokenize", model_path);
  CU_ASSERT_EQUAL(run_cli(args, jsonl, &out, &err), 0);
  CU_ASSERT_EQUAL(count_lines(out), NT);
  {
    model tm;
    model_meta tmeta;
    epee_err e;
    CU_ASSERT_FATAL(model_file_read(model_path, &tm, &tmeta, &e) == 0);
    const char *line = out;
    for (int i = 0; i < NT && line; i++) {
      int32_t want[MAXLEN], ty[MAXLEN];
      int n = tok_encode(tmeta.tok, texts[i], NULL, MAXLEN, want, ty, NULL);
      char expect[512];
      int k2 = snprintf(expect, sizeof expect, "{\"ids\":[");
      for (int t = 0; t < n; t++)
        k2 += snprintf(expect + k2, sizeof expect - (size_t)k2, t ? ",%d" : "%d", (int)want[t]);
      snprintf(expect + k2, sizeof expect - (size_t)k2, "]}\n");
      int same = strncmp(line, expect, strlen(expect)) == 0;
      CU_ASSERT(same);
      if (!same) printf("\n    line %d: %.*s    want %s", i, (int)strcspn(line, "\n") + 1, line, expect);
      line = strchr(line, '\n');
      line = line ? line + 1 : NULL;
    }
    model_free(&tm);
    model_meta_free(&tmeta);
  }
  /* --bench: the table */
  snprintf(args, sizeof args, "%s --input %s/gold.tsv --bench --batch 4 --output /dev/null", model_path, dir);
  CU_ASSERT_EQUAL(run_cli(args, NULL, &out, &err), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "p99 ms"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "early exit (epee)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "tokenisation"));
  CU_ASSERT(access("/dev/null", W_OK) == 0); /* written directly, not replaced by a rename */
  snprintf(args, sizeof args, "ls %s | grep -c tmp > /dev/null", dir);
  CU_ASSERT(system(args) != 0); /* no temp file left behind */
}

/* exit status 1 or 2 and ONE line on stderr containing needle */
static void expect_cli_error(const char *args, const char *input, int status, const char *needle) {
  char *out, *err;
  int st = run_cli(args, input, &out, &err);
  printf("\n    -> %d: %s", st, err);
  CU_ASSERT_EQUAL(st, status);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
  CU_ASSERT_EQUAL(count_lines(err), 1);
}

static void test_cli_errors(void) {
  char args[600], path[160];
  snprintf(path, sizeof path, "%s/bad.tsv", dir);
  FILE *f = fopen(path, "w");
  fputs("text\tlabel\nthe cell\tBP\nthe cell\tCC\textra\n", f);
  fclose(f);
  snprintf(args, sizeof args, "%s --input %s", model_path, path);
  expect_cli_error(args, NULL, 1, "bad.tsv:3: 3 tab-separated fields, expected 2");
  snprintf(path, sizeof path, "%s/unknown.tsv", dir);
  f = fopen(path, "w");
  fputs("text\tlabel\nthe cell\tBP\nthe cell\tXX\n", f);
  fclose(f);
  snprintf(args, sizeof args, "%s --input %s", model_path, path);
  expect_cli_error(args, NULL, 1, "unknown.tsv:3: unknown label 'XX'");
  snprintf(args, sizeof args, "%s --input -", model_path);
  expect_cli_error(args, "{\"text\": \"the cell\"}\n{\"text\": 5, \"oops\"}\n", 1, "<stdin>:2:");
  snprintf(args, sizeof args, "%s --input %s --label-column gold", model_path, path);
  expect_cli_error(args, NULL, 1, "no column 'gold'");
  snprintf(args, sizeof args, "%s --input %s --id-column doc", model_path, path);
  expect_cli_error(args, NULL, 1, "unknown.tsv:1: no column 'doc' in the header");
  snprintf(args, sizeof args, "%s --input - --id-column doc", model_path);
  expect_cli_error(args, "{\"text\": \"a\", \"doc\": 1}\n{\"text\": \"b\"}\n", 1, "<stdin>:2: no key \"doc\"");
  snprintf(args, sizeof args, "%s/gold.tsv --input %s/gold.tsv", dir, dir);
  expect_cli_error(args, NULL, 1, "gold.tsv: not an HDF5 file");
  snprintf(args, sizeof args, "%s --input %s/missing.tsv", model_path, dir);
  expect_cli_error(args, NULL, 1, "missing.tsv: cannot open");
  snprintf(args, sizeof args, "%s --input - --batch 0", model_path);
  expect_cli_error(args, "", 2, "--batch must be in [1, 4096] (an integer), got '0'");
  snprintf(args, sizeof args, "%s --input - --tau=high", model_path);
  expect_cli_error(args, "", 2, "--tau must be in [0, 1] (a number), got 'high'");
  snprintf(args, sizeof args, "%s --input - --policy fastest", model_path);
  expect_cli_error(args, "", 2, "--policy must be one of none, entropy, patience, epee, pcee, got 'fastest'");
  snprintf(args, sizeof args, "%s --input - --frobnicate", model_path);
  expect_cli_error(args, "", 2, "unknown or incomplete option '--frobnicate'");
  snprintf(args, sizeof args, "%s --input", model_path);
  expect_cli_error(args, "", 2, "--input needs a value");
  snprintf(args, sizeof args, "%s --tokenize", model_path);
  expect_cli_error(args, "", 2, "--tokenize needs --input");
  snprintf(args, sizeof args, "%s --input %s/images.npz", model_path, dir); /* images to a text model */
  expect_cli_error(args, NULL, 1, "is a text model (bert): it reads one TSV or JSON Lines file, not images");
  snprintf(args, sizeof args, "%s --input %s", model_path, dir);
  expect_cli_error(args, NULL, 1, "is a text model");
  snprintf(args, sizeof args, "%s --input %s/gold.tsv --output %s/no/such/dir/p.jsonl", model_path, dir, dir);
  expect_cli_error(args, NULL, 1, "--output");
  printf("\n");
  char *out, *err;
  CU_ASSERT_EQUAL(run_cli("--help", NULL, &out, &err), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "usage: epee-infer MODEL.h5"));
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("epee.h", setup, teardown);
  CU_add_test(s, "load errors and accessors", test_load_and_accessors);
  CU_add_test(s, "texts = tokenizer + engine, every chunk size", test_texts_equal_reference);
  CU_add_test(s, "token ids and text pairs", test_ids_and_pairs);
  CU_add_test(s, "bad arguments: -1, one line, nothing written", test_bad_arguments);
  CU_add_test(s, "threads share one model, a session each", test_threads_share_the_model);
  CU_pSuite c = CU_add_suite("epee-infer", setup_cli, teardown);
  CU_add_test(c, "predictions equal the API's, in input order", test_cli_predictions);
  CU_add_test(c, "bad files and options: one line, exit status", test_cli_errors);
}
