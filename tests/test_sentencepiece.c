/* SentencePiece kind tests (data/sentencepiece.c), calling tok_sentencepiece's functions directly.
 * Suite "tiny model": tests/fixtures/spm_expected.tiny.model, a 120-piece unigram model made by spm_train
 * (experiments/spm_check.py --write-fixtures; identity normalizer, so that it stays ~2 KB), committed: these tests
 * need no fetched data. Specials, lowercasing, the digit-comma rule worked out by hand, every truncation, corrupt
 * bytes, models without a special; and the fixture's tiny-model lines.
 * Suite "GO model": the fixture's lines for data/cache/spm/go.model (scripts/fetch_data.sh trains it), ~300 GO dev
 * definitions and hostile strings; skipped loudly when the model is missing or is not the one the fixture was made
 * with (another Debian sentencepiece version trains another model).
 * tests/fixtures/spm_expected.tsv holds Python's ids (python3-sentencepiece + AlbertTokenizer's rules); its format
 * is described in its header. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/readfile.h"
#include "data/sentencepiece.h"

#define FIXTURE "tests/fixtures/spm_expected.tsv"
#define TINY "tests/fixtures/spm_expected.tiny.model"
#define GO_MODEL "data/cache/spm/go.model"

/* ---- helpers ------------------------------------------------------------------------------------------- */

typedef struct {
  unsigned char *data;
  size_t len;
} bytes;

static bytes read_bytes(const char *path) {
  epee_err e;
  bytes b = {0};
  b.data = (unsigned char *)data_read_file(path, &b.len, &e);
  return b;
}

static uint64_t fnv1a64(const unsigned char *p, size_t n) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
  return h;
}

typedef struct {
  void *impl;
  tok_specials sp;
  int vocab;
} loaded;

/* Loads model bytes as asset "spiece.model", reported as `where`; impl NULL with e set on failure. */
static loaded load(const unsigned char *p, size_t n, const char *where, int lowercase, epee_err *e) {
  tok_asset a = {"spiece.model", (unsigned char *)p, n};
  loaded l = {0};
  l.impl = tok_sentencepiece.load(&a, &where, lowercase, &l.sp, &l.vocab, e);
  return l;
}

/* The ids of text as "1 2 3" (the fixture's form), malloc'ed. */
static char *ids_string(const void *impl, const char *text) {
  int32_t *ids = NULL;
  int n = 0, cap = 0;
  tok_sentencepiece.tokenize(impl, text, &ids, &n, &cap);
  char *s = malloc((size_t)n * 12 + 1);
  size_t k = 0;
  s[0] = '\0';
  for (int i = 0; i < n; i++) k += (size_t)sprintf(s + k, i ? " %d" : "%d", ids[i]);
  free(ids);
  return s;
}

/* The pieces of text joined by '|', for the hand-worked cases. */
static void check_pieces(const void *impl, const char *text, const char *want) {
  int32_t *ids = NULL;
  int n = 0, cap = 0;
  tok_sentencepiece.tokenize(impl, text, &ids, &n, &cap);
  char got[1024] = "";
  for (int i = 0; i < n; i++) {
    if (i) strcat(got, "|");
    strncat(got, tok_sentencepiece.piece(impl, ids[i]), sizeof got - strlen(got) - 2);
  }
  if (strcmp(got, want) != 0) fprintf(stderr, "\n  \"%s\": got %s, want %s\n", text, got, want);
  CU_ASSERT_STRING_EQUAL(got, want);
  free(ids);
}

/* ---- the fixture ------------------------------------------------------------------------------------------ */

typedef struct {
  char model[8];
  int lowercase;
  char *text; /* NUL-terminated input */
  char *ids;  /* "1 2 3", or "" */
} row;

typedef struct {
  row *rows;
  int n;
  size_t model_len[2];
  uint64_t model_fnv[2]; /* [0] tiny, [1] go */
} fixture;

static fixture fx;

static int unhex(char *s) {
  size_t n = strlen(s);
  if (n % 2) return -1;
  for (size_t i = 0; i < n; i += 2) {
    unsigned v;
    if (sscanf(s + i, "%2x", &v) != 1 || v == 0) return -1; /* a C string cannot hold NUL */
    s[i / 2] = (char)v;
  }
  s[n / 2] = '\0';
  return 0;
}

static int fixture_load(void) {
  if (fx.rows) return 0; /* loaded by the first suite */
  FILE *f = fopen(FIXTURE, "r");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", FIXTURE);
    return -1;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  int bad = 0, cap_rows = 0;
  while (!bad && (got = getline(&line, &cap, f)) >= 0) {
    if (got > 0 && line[got - 1] == '\n') line[--got] = '\0';
    if (line[0] == '#') continue;
    char *col[5] = {0};
    int nc = 0;
    for (char *p = line; nc < 5; nc++) {
      col[nc] = p;
      p = strchr(p, '\t');
      if (!p) {
        nc++;
        break;
      }
      *p++ = '\0';
    }
    if (strcmp(col[0], "model") == 0 && nc == 5) {
      int k = strcmp(col[1], "go") == 0;
      fx.model_len[k] = strtoull(col[3], NULL, 10);
      fx.model_fnv[k] = strtoull(col[4], NULL, 16);
      continue;
    }
    if (nc != 4 || (col[2][0] != 't' && col[2][0] != 'x')) {
      bad = 1;
      break;
    }
    if (fx.n == cap_rows) {
      cap_rows = cap_rows ? 2 * cap_rows : 256;
      fx.rows = realloc(fx.rows, (size_t)cap_rows * sizeof *fx.rows);
    }
    row *r = &fx.rows[fx.n++];
    snprintf(r->model, sizeof r->model, "%s", col[0]);
    r->lowercase = atoi(col[1]);
    r->text = strdup(col[2] + 1);
    r->ids = strdup(strcmp(col[3], "-") == 0 ? "" : col[3]);
    if (col[2][0] == 'x' && unhex(r->text) != 0) bad = 1;
  }
  free(line);
  fclose(f);
  if (bad) fprintf(stderr, "%s: malformed line after %d rows\n", FIXTURE, fx.n);
  return bad ? -1 : 0;
}

static void fixture_free(void) {
  for (int i = 0; i < fx.n; i++) free(fx.rows[i].text), free(fx.rows[i].ids);
  free(fx.rows);
  memset(&fx, 0, sizeof fx);
}

/* Compares every fixture row of model name with the two tokenizers (lowercase 0 and 1). */
static void check_fixture(const char *name, void *const impl[2]) {
  int n = 0, same = 0;
  for (int i = 0; i < fx.n; i++) {
    const row *r = &fx.rows[i];
    if (strcmp(r->model, name) != 0) continue;
    char *got = ids_string(impl[r->lowercase != 0], r->text);
    n++;
    if (strcmp(got, r->ids) == 0) same++;
    else if (n - same <= 3) fprintf(stderr, "\n  %s, lowercase %d, \"%s\":\n    got  %s\n    want %s\n", name,
                                    r->lowercase, r->text, got, r->ids);
    free(got);
  }
  fprintf(stderr, "\n  %s model: %d/%d fixture inputs identical to Python ", name, same, n);
  CU_ASSERT(n > 0);
  CU_ASSERT_EQUAL(same, n);
}

/* ---- suite "tiny model" ---------------------------------------------------------------------------------- */

static bytes tiny;
static void *tiny_tok[2]; /* lowercase 0, 1 */

static int tiny_init(void) {
  tiny = read_bytes(TINY);
  if (!tiny.data || fixture_load() != 0) return 1;
  for (int k = 0; k < 2; k++) {
    epee_err e;
    tiny_tok[k] = load(tiny.data, tiny.len, TINY, k, &e).impl;
    if (!tiny_tok[k]) {
      fprintf(stderr, "%s\n", e.msg);
      return 1;
    }
  }
  return 0;
}

static int tiny_clean(void) {
  for (int k = 0; k < 2; k++) tok_sentencepiece.free(tiny_tok[k]);
  free(tiny.data);
  return 0;
}

static void test_kind(void) {
  CU_ASSERT_STRING_EQUAL(tok_sentencepiece.name, "sentencepiece");
  CU_ASSERT_EQUAL(tok_sentencepiece.n_assets, 1);
  CU_ASSERT_STRING_EQUAL(tok_sentencepiece.asset_names[0], "spiece.model");
  CU_ASSERT_EQUAL(tiny.len, fx.model_len[0]);
  CU_ASSERT_EQUAL(fnv1a64(tiny.data, tiny.len), fx.model_fnv[0]); /* the fixture was made with this model */
}

static void test_specials(void) {
  epee_err e;
  loaded l = load(tiny.data, tiny.len, TINY, 1, &e);
  CU_ASSERT_PTR_NOT_NULL_FATAL(l.impl);
  CU_ASSERT_EQUAL(l.sp.pad, 0); /* albert-base-v2's layout */
  CU_ASSERT_EQUAL(l.sp.cls, 2);
  CU_ASSERT_EQUAL(l.sp.sep, 3);
  CU_ASSERT_EQUAL(l.vocab, 120);
  CU_ASSERT_STRING_EQUAL(tok_sentencepiece.piece(l.impl, 0), "<pad>");
  CU_ASSERT_STRING_EQUAL(tok_sentencepiece.piece(l.impl, 1), "<unk>");
  CU_ASSERT_STRING_EQUAL(tok_sentencepiece.piece(l.impl, 2), "[CLS]");
  CU_ASSERT_STRING_EQUAL(tok_sentencepiece.piece(l.impl, 4), "[MASK]");
  CU_ASSERT_STRING_EQUAL(tok_sentencepiece.piece(l.impl, 23), "\xE2\x96\x81the");
  CU_ASSERT_PTR_NULL(tok_sentencepiece.piece(l.impl, -1));
  CU_ASSERT_PTR_NULL(tok_sentencepiece.piece(l.impl, 120));
  tok_sentencepiece.free(l.impl);
}

static void test_tiny_fixture(void) { check_fixture("tiny", tiny_tok); }

static void test_lowercase(void) {
  check_pieces(tiny_tok[1], "THE Cell", "\xE2\x96\x81the|\xE2\x96\x81" "cell");
  check_pieces(tiny_tok[0], "the cell", "\xE2\x96\x81the|\xE2\x96\x81" "cell");
  char *s = ids_string(tiny_tok[0], "THE Cell"); /* the model knows no capitals: "THE" and "C" are unknown */
  CU_ASSERT_STRING_EQUAL(s, "50 1 50 1 117 109 109");
  free(s);
}

/* AlbertTokenizer._tokenize's rule, by hand. The model's pieces of "the cell 1,2,3, binding 7,8," are
 * ▁the ▁cell ▁ 1, 2 , 3, ▁binding ▁7,8,  and "1,", "3," and "▁7,8," end in a digit and ','. Re-encoded without
 * the ',': "1" -> ▁ 1, whose lone ▁ goes (the piece had none); "7,8" -> ▁ 7, 8, kept as is (the piece started
 * with ▁; and the rule is not applied again to "7,"); each is followed by ",". */
static void test_digit_comma(void) {
  check_pieces(tiny_tok[1], "the cell 1,2,3, binding 7,8,",
               "\xE2\x96\x81the|\xE2\x96\x81" "cell|\xE2\x96\x81|1|,|2|,|3|,|"
               "\xE2\x96\x81" "binding|\xE2\x96\x81|7,|8|,");
  check_pieces(tiny_tok[1], ",", "\xE2\x96\x81|,"); /* the dummy prefix: "," is not a digit-comma piece */
  check_pieces(tiny_tok[1], "   ", "");
  check_pieces(tiny_tok[1], "", "");
}

static void test_growable(void) {
  int32_t *ids = malloc(2 * sizeof *ids);
  int n = -1, cap = 2;
  CU_ASSERT_EQUAL(tok_sentencepiece.tokenize(tiny_tok[1], "the cell membrane protein binding", &ids, &n, &cap), 5);
  CU_ASSERT_EQUAL(n, 5);
  CU_ASSERT(cap >= 5);
  CU_ASSERT_EQUAL(ids[0], 23);
  CU_ASSERT_EQUAL(tok_sentencepiece.tokenize(tiny_tok[1], "", &ids, &n, &cap), 0);
  CU_ASSERT_EQUAL(n, 0);
  free(ids);
}

/* Loading p[0..n) must fail with one line that starts with "WHERE: " and contains want (if non-NULL). */
static int refused(const unsigned char *p, size_t n, const char *want) {
  epee_err e;
  e.msg[0] = '\0';
  loaded l = load(p, n, "WHERE", 1, &e);
  int ok = !l.impl && strncmp(e.msg, "WHERE: ", 7) == 0 && !strchr(e.msg, '\n') && (!want || strstr(e.msg, want));
  if (!ok) fprintf(stderr, "\n  %zu bytes: %s \"%s\"\n", n, l.impl ? "loaded" : "message", e.msg);
  tok_sentencepiece.free(l.impl);
  return ok;
}

static void test_bad_bytes(void) {
  CU_ASSERT(refused(tiny.data, 0, "empty"));
  int all = 1; /* every truncation: a cut between two pieces still parses, and is caught by the missing spec */
  for (size_t k = 1; k < tiny.len && all; k++) all = refused(tiny.data, k, NULL);
  CU_ASSERT(all);
  epee_err e;
  loaded whole = load(tiny.data, tiny.len, "WHERE", 1, &e);
  CU_ASSERT_PTR_NOT_NULL(whole.impl);
  tok_sentencepiece.free(whole.impl);

  unsigned char *c = malloc(tiny.len);
  memcpy(c, tiny.data, tiny.len);
  c[0] = 0x0F; /* field 1 with the wire type 7, which does not exist */
  CU_ASSERT(refused(c, tiny.len, "corrupt"));
  c[0] = tiny.data[0];
  c[2] = 0x0F; /* the same inside the first piece: only the library's parser sees it */
  CU_ASSERT(refused(c, tiny.len, "does not parse"));
  memset(c, 0xFF, tiny.len);
  CU_ASSERT(refused(c, tiny.len, NULL));
  free(c);
  static const char vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n"; /* a WordPiece vocab.txt by mistake */
  CU_ASSERT(refused((const unsigned char *)vocab, sizeof vocab - 1, NULL));
  static const unsigned char not_model[] = {0x08, 0x01}; /* valid protobuf, a varint where pieces go */
  CU_ASSERT(refused(not_model, sizeof not_model, NULL));
}

/* The tiny model with every occurrence of piece (in its pieces and its trainer_spec) renamed to the same-length
 * other, which keeps the protobuf valid, must be refused with a message naming piece. */
static void refused_without(const char *piece, const char *other) {
  unsigned char *c = malloc(tiny.len);
  memcpy(c, tiny.data, tiny.len);
  size_t n = strlen(piece), hits = 0;
  for (size_t i = 0; i + n <= tiny.len; i++)
    if (memcmp(c + i, piece, n) == 0) memcpy(c + i, other, n), hits++;
  CU_ASSERT(hits > 0);
  CU_ASSERT(refused(c, tiny.len, piece));
  free(c);
}

static void test_missing_specials(void) {
  refused_without("[CLS]", "[CLX]");
  refused_without("[SEP]", "[SEX]");
  refused_without("<pad>", "<pax>");
}

/* ---- suite "GO model" ------------------------------------------------------------------------------------ */

static bytes go;
static void *go_tok[2];

static int go_init(void) {
  if (fixture_load() != 0) return 1;
  go = read_bytes(GO_MODEL);
  if (!go.data) {
    fprintf(stderr, "\nSKIP: %s not found (scripts/fetch_data.sh trains it); the GO model tests do not run\n",
            GO_MODEL);
    return 0;
  }
  uint64_t h = fnv1a64(go.data, go.len);
  if (go.len != fx.model_len[1] || h != fx.model_fnv[1]) {
    fprintf(stderr, "\nSKIP: %s (%zu bytes, FNV-1a %016llx) is not the model %s was made with (%zu bytes, %016llx): "
                    "another sentencepiece version? (scripts/fetch_data.sh said so); the GO model tests do not run\n",
            GO_MODEL, go.len, (unsigned long long)h, FIXTURE, fx.model_len[1], (unsigned long long)fx.model_fnv[1]);
    free(go.data);
    go.data = NULL;
    return 0;
  }
  for (int k = 0; k < 2; k++) {
    epee_err e;
    go_tok[k] = load(go.data, go.len, GO_MODEL, k, &e).impl;
    if (!go_tok[k]) {
      fprintf(stderr, "%s\n", e.msg);
      return 1;
    }
  }
  return 0;
}

static int go_clean(void) {
  for (int k = 0; k < 2; k++) tok_sentencepiece.free(go_tok[k]);
  free(go.data);
  fixture_free();
  return 0;
}

static void test_go_fixture(void) {
  if (!go.data) return;
  check_fixture("go", go_tok);
}

static void test_go_specials(void) {
  if (!go.data) return;
  epee_err e;
  loaded l = load(go.data, go.len, GO_MODEL, 1, &e);
  CU_ASSERT_PTR_NOT_NULL_FATAL(l.impl);
  CU_ASSERT_EQUAL(l.sp.pad, 0);
  CU_ASSERT_EQUAL(l.sp.cls, 2);
  CU_ASSERT_EQUAL(l.sp.sep, 3);
  CU_ASSERT_EQUAL(l.vocab, 8000);
  tok_sentencepiece.free(l.impl);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("sentencepiece tiny model", tiny_init, tiny_clean);
  CU_add_test(s, "kind and fixture model", test_kind);
  CU_add_test(s, "specials and pieces", test_specials);
  CU_add_test(s, "fixture ids (tiny model)", test_tiny_fixture);
  CU_add_test(s, "lowercase on and off", test_lowercase);
  CU_add_test(s, "digit-comma rule", test_digit_comma);
  CU_add_test(s, "growable id buffer", test_growable);
  CU_add_test(s, "empty, truncated and corrupt models", test_bad_bytes);
  CU_add_test(s, "models without a special", test_missing_specials);
  s = CU_add_suite("sentencepiece GO model", go_init, go_clean);
  CU_add_test(s, "specials", test_go_specials);
  CU_add_test(s, "fixture ids (GO model)", test_go_fixture);
}
