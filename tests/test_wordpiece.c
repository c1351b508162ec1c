/* WordPiece tokenizer tests.
 * Suite "small vocab": a vocabulary written here (ids = line numbers - 1, listed below), so these tests never
 * need the network. Expected ids follow from the algorithm in data/wordpiece.h, worked out by hand.
 * Suite "bert vocab": bert-base-uncased's vocab.txt from scripts/fetch_data.sh; expected ids were looked up
 * by line number in that file (grep -n, minus one), following HF BertTokenizer's steps by hand. Skipped
 * loudly when data/cache/vocab/vocab.txt is missing.
 * Encoding with specials and truncation goes through data/tokenizer.h (tok_encode on the kind "wordpiece"), which
 * is what datasets, the model file and the CLIs use. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/wordpiece.h"

static const char SMALL_VOCAB[] =
    "[PAD]\n"  /* 0 */
    "[UNK]\n"  /* 1 */
    "[CLS]\n"  /* 2 */
    "[SEP]\n"  /* 3 */
    "[MASK]\n" /* 4 */
    "cafe\n"   /* 5 */
    "deja\n"   /* 6 */
    "vu\n"     /* 7 */
    "a\n"      /* 8 */
    "b\n"      /* 9 */
    ".\n"      /* 10 */
    "!\n"      /* 11 */
    "?\n"      /* 12 */
    "un\n"     /* 13 */
    "##aff\n"  /* 14 */
    "##able\n" /* 15 */
    "1\n"      /* 16 */
    "##2\n"    /* 17 */
    "##3\n"    /* 18 */
    "中\n"     /* 19 */
    "国\n"     /* 20 */
    "hello\n"  /* 21 */
    "world\n"  /* 22 */
    "##s\n"    /* 23 */
    "οδος\n"   /* 24  final sigma */
    "##ing\n"  /* 25 */
    "go\n"     /* 26 */
    ",\n"      /* 27 */
    "ᄀ\n"      /* 28  U+1100 Hangul choseong kiyeok */
    "##ᅡ\n"    /* 29  U+1161 Hangul jungseong a */
    "##a\n"    /* 30 */
    "д\n"      /* 31 */
    "##д\n";   /* 32 */

static wp_tokenizer *small;
static tokenizer *small_tok; /* the same vocabulary as the tokenizer kind "wordpiece" (data/tokenizer.h) */

static tokenizer *load_small_tok(const char *vocab, size_t len, epee_err *e) {
  return tok_load(&tok_wordpiece, (tok_asset[]){{"vocab.txt", (unsigned char *)vocab, len}},
                  (const char *const[]){"test vocab"}, 1, e);
}

static int small_init(void) {
  epee_err e;
  small = wp_load_buffer(SMALL_VOCAB, strlen(SMALL_VOCAB), &e);
  if (!small) fprintf(stderr, "small vocab: %s\n", e.msg);
  small_tok = load_small_tok(SMALL_VOCAB, strlen(SMALL_VOCAB), &e);
  if (!small_tok) fprintf(stderr, "small vocab as a tokenizer: %s\n", e.msg);
  return small && small_tok ? 0 : 1;
}
static int small_clean(void) {
  wp_free(small);
  tok_free(small_tok);
  return 0;
}

/* Tokenizes text with t and compares with want[n]. */
static void check_tokens(const wp_tokenizer *t, const char *text, const int32_t *want, int n) {
  int32_t *ids = NULL;
  int got = 0, cap = 0;
  int r = wp_tokenize(t, text, &ids, &got, &cap);
  CU_ASSERT_EQUAL(r, got);
  CU_ASSERT_EQUAL(got, n);
  int same = got == n;
  for (int i = 0; same && i < n; i++) same = ids[i] == want[i];
  if (!same) {
    fprintf(stderr, "\n  text \"%s\": got", text);
    for (int i = 0; i < got; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, ", want");
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", want[i]);
    fprintf(stderr, "\n");
  }
  CU_ASSERT(same);
  free(ids);
}
#define CHECK(t, text, ...)                                                  \
  do {                                                                       \
    const int32_t want_[] = {__VA_ARGS__};                                   \
    check_tokens(t, text, want_, (int)(sizeof want_ / sizeof want_[0]));    \
  } while (0)

static void test_vocab_lookup(void) {
  CU_ASSERT_EQUAL(wp_vocab_size(small), 33);
  CU_ASSERT_EQUAL(wp_token_id(small, "##aff"), 14);
  CU_ASSERT_EQUAL(wp_token_id(small, "aff"), -1);
  CU_ASSERT_EQUAL(wp_token_id(small, "中"), 19);
  CU_ASSERT_STRING_EQUAL(wp_id_to_token(small, 23), "##s");
  CU_ASSERT_PTR_NULL(wp_id_to_token(small, 33));
  CU_ASSERT_PTR_NULL(wp_id_to_token(small, -1));
  int cls, sep, pad, unk;
  CU_ASSERT_EQUAL(wp_special_ids(small, &cls, &sep, &pad, &unk), 0);
  CU_ASSERT(cls == 2 && sep == 3 && pad == 0 && unk == 1);
}

static void test_vocab_formats(void) {
  epee_err e;
  /* CRLF line ends, no final newline, a duplicate ("x" on lines 5 and 6: the last wins, as in HF) */
  const char crlf[] = "[UNK]\r\n[CLS]\r\n[SEP]\r\nx\r\nx\r\n\r\ny";
  wp_tokenizer *t = wp_load_buffer(crlf, strlen(crlf), &e);
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  CU_ASSERT_EQUAL(wp_vocab_size(t), 7); /* the empty line 6 is a token too */
  CU_ASSERT_EQUAL(wp_token_id(t, "[SEP]"), 2);
  CU_ASSERT_EQUAL(wp_token_id(t, "x"), 4);
  CU_ASSERT_EQUAL(wp_token_id(t, "y"), 6);
  CU_ASSERT_STRING_EQUAL(wp_id_to_token(t, 3), "x");
  int pad;
  CU_ASSERT_EQUAL(wp_special_ids(t, NULL, NULL, &pad, NULL), -1);
  CU_ASSERT_EQUAL(pad, -1);
  wp_free(t);

  const char no_unk[] = "[CLS]\n[SEP]\nx\n";
  CU_ASSERT_PTR_NULL(wp_load_buffer(no_unk, strlen(no_unk), &e));
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "[UNK]"));
  CU_ASSERT_PTR_NULL(wp_load_buffer("", 0, &e));
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "empty"));
  const char nul[] = "[UNK]\n[CLS]\n[S\0P]\n";
  CU_ASSERT_PTR_NULL(wp_load_buffer(nul, sizeof nul - 1, &e));
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, ":3:"));
  CU_ASSERT_PTR_NULL(wp_load_file("/nonexistent/vocab.txt", &e));
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "/nonexistent/vocab.txt"));
  const char latin1[] = "[UNK]\n[CLS]\n[SEP]\ncaf\xe9\n"; /* a Latin-1 file: no UTF-8 text can match line 4 */
  CU_ASSERT_PTR_NULL(wp_load_buffer(latin1, strlen(latin1), &e));
  CU_ASSERT_STRING_EQUAL(e.msg, "<vocab buffer>:4: invalid UTF-8 at byte 4 of a vocabulary line");
  const char bom[] = "\xEF\xBB\xBF[UNK]\n[CLS]\n[SEP]\n"; /* a BOM is not part of the first piece */
  t = wp_load_buffer(bom, strlen(bom), &e);
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  CU_ASSERT(wp_token_id(t, "[UNK]") == 0 && wp_vocab_size(t) == 3);
  wp_free(t);
}

static void test_accents_case(void) {
  CHECK(small, "Café Déjà vu", 5, 6, 7);
  CHECK(small, "CAFE\xcc\x81", 5);               /* E + U+0301 combining acute (Mn, dropped) */
  CHECK(small, "\xc3\x89", 1);                   /* É -> e: no "e" in the vocab -> [UNK] */
  CHECK(small, "ΟΔΟΣ", 24);                      /* Greek capitals; final Σ lowercases to ς */
  CHECK(small, "\xea\xb0\x80", 28, 29);          /* 가 U+AC00 -> NFD U+1100 U+1161 */
  CHECK(small, "Д д", 31, 31);                   /* Cyrillic lowercase */
}

static void test_punctuation_digits(void) {
  CHECK(small, "a...b!?", 8, 10, 10, 10, 9, 11, 12);
  CHECK(small, "hello,world", 21, 27, 22);
  CHECK(small, "hello\xe2\x80\x94world", 21, 1, 22); /* U+2014 em dash: punctuation (Pd), not in vocab */
  CHECK(small, "unaffable", 13, 14, 15);
  CHECK(small, "123", 16, 17, 18);
  CHECK(small, "1234", 1);     /* "##4" missing: the whole word is [UNK], not "1 ##2 ##3 [UNK]" */
  CHECK(small, "worlds", 22, 23);
}

static void test_unknown_cjk_emoji(void) {
  CHECK(small, "hello \xf0\x9f\x98\x80 world", 21, 1, 22); /* U+1F600 emoji -> [UNK] */
  CHECK(small, "中国", 19, 20);                             /* each ideograph its own word */
  CHECK(small, "a中b", 8, 19, 9);
}

static void test_cleaning(void) {
  check_tokens(small, "", NULL, 0);
  check_tokens(small, " \t\r\n ", NULL, 0);
  CHECK(small, "hel\x01lo\tworld\x7f", 21, 22);         /* control chars removed, TAB is a space */
  CHECK(small, "hel\xe2\x80\x8blo", 21);                /* U+200B zero width space (Cf): removed */
  CHECK(small, "hello\xc2\xa0world", 21, 22);           /* U+00A0 no-break space (Zs): a space */
  CHECK(small, "hello\xe2\x80\xa8world", 21, 22);       /* U+2028 line separator: splits like str.split() */
  CHECK(small, "hel\xef\xbf\xbdlo", 21);                /* U+FFFD itself is removed */
}

static void test_invalid_utf8(void) {
  CHECK(small, "hel\xfflo", 21);                /* invalid byte = U+FFFD = removed */
  CHECK(small, "\xe4\xb8" "a", 8);              /* truncated 3-byte sequence, then a valid 'a' */
  CHECK(small, "go\xc0\xafing", 26, 25);        /* overlong '/' (C0 AF): two invalid bytes */
  CHECK(small, "a\xed\xa0\x80" "b", 1);         /* encoded surrogate U+D800: 3 invalid bytes -> word "ab" */
}

static void test_long_words(void) {
  char w[4 * 102 + 1];
  memset(w, 'a', 100);
  w[100] = '\0';
  int32_t *ids = NULL;
  int n = 0, cap = 0;
  wp_tokenize(small, w, &ids, &n, &cap); /* 100 chars: still tokenized, a + 99 x ##a */
  CU_ASSERT_EQUAL(n, 100);
  CU_ASSERT(n == 100 && ids[0] == 8 && ids[1] == 30 && ids[99] == 30);
  strcat(w, "a"); /* 101 chars -> [UNK] */
  wp_tokenize(small, w, &ids, &n, &cap);
  CU_ASSERT(n == 1 && ids[0] == 1);
  /* the limit counts code points, not bytes: 100 x "д" (200 bytes) is fine, 101 is not */
  w[0] = '\0';
  for (int i = 0; i < 100; i++) strcat(w, "д");
  wp_tokenize(small, w, &ids, &n, &cap);
  CU_ASSERT(n == 100 && ids[0] == 31 && ids[99] == 32);
  strcat(w, "д");
  wp_tokenize(small, w, &ids, &n, &cap);
  CU_ASSERT(n == 1 && ids[0] == 1);
  free(ids);
}

/* Encodes and compares ids, type ids and the truncation flag. */
static void check_encode(const char *a, const char *b, int max_len, const int32_t *want, const int32_t *want_types,
                         int n, int want_trunc) {
  int32_t ids[64], types[64];
  int trunc = -1;
  int got = tok_encode(small_tok, a, b, max_len, ids, types, &trunc);
  CU_ASSERT_EQUAL(got, n);
  CU_ASSERT_EQUAL(trunc, want_trunc);
  for (int i = 0; i < n && i < got; i++) {
    CU_ASSERT_EQUAL(ids[i], want[i]);
    CU_ASSERT_EQUAL(types[i], want_types[i]);
  }
}

static void test_encode(void) {
  check_encode("", NULL, 8, (int32_t[]){2, 3}, (int32_t[]){0, 0}, 2, 0);
  check_encode("a b", NULL, 8, (int32_t[]){2, 8, 9, 3}, (int32_t[]){0, 0, 0, 0}, 4, 0);
  check_encode("a b a b", NULL, 4, (int32_t[]){2, 8, 9, 3}, (int32_t[]){0, 0, 0, 0}, 4, 1);
  check_encode("a b", NULL, 4, (int32_t[]){2, 8, 9, 3}, (int32_t[]){0, 0, 0, 0}, 4, 0); /* exactly fits */
  check_encode("a", "b", 8, (int32_t[]){2, 8, 3, 9, 3}, (int32_t[]){0, 0, 0, 1, 1}, 5, 0);
  check_encode("", "", 3, (int32_t[]){2, 3, 3}, (int32_t[]){0, 0, 1}, 3, 0);
}

static void test_encode_pair_truncation(void) {
  /* 5 + 2 tokens, budget 8 - 3 = 5: a is longer twice -> a keeps 3 */
  check_encode("a a a a a", "b b", 8, (int32_t[]){2, 8, 8, 8, 3, 9, 9, 3}, (int32_t[]){0, 0, 0, 0, 0, 1, 1, 1}, 8, 1);
  /* 3 + 3, budget 4: tie -> b loses one, then a is longer -> a loses one */
  check_encode("a a a", "b b b", 7, (int32_t[]){2, 8, 8, 3, 9, 9, 3}, (int32_t[]){0, 0, 0, 0, 1, 1, 1}, 7, 1);
  /* 3 + 3, budget 5: only the tie step -> b keeps 2 */
  check_encode("a a a", "b b b", 8, (int32_t[]){2, 8, 8, 8, 3, 9, 9, 3}, (int32_t[]){0, 0, 0, 0, 0, 1, 1, 1}, 8, 1);
  /* 1 + 6, budget 3: b is longer throughout -> a keeps 1, b keeps 2 */
  check_encode("a", "b b b b b b", 6, (int32_t[]){2, 8, 3, 9, 9, 3}, (int32_t[]){0, 0, 0, 1, 1, 1}, 6, 1);
  /* truncation may cut inside a word: "unaffable" = un ##aff ##able, keep 2 */
  check_encode("unaffable", NULL, 4, (int32_t[]){2, 13, 14, 3}, (int32_t[]){0, 0, 0, 0}, 4, 1);
}

/* The kind "wordpiece" behind data/tokenizer.h: its table row, what tok_load keeps (specials, size, an owned copy
 * of the file), the same ids as wp_tokenize, and every refusal as one line starting with the asset's name. */
static void test_tokenizer_kind(void) {
  CU_ASSERT_PTR_EQUAL(tok_find_kind("wordpiece"), &tok_wordpiece);
  CU_ASSERT_PTR_NULL(tok_find_kind("WordPiece"));
  CU_ASSERT_PTR_NULL(tok_find_kind(NULL));
  CU_ASSERT_EQUAL(tok_wordpiece.n_assets, 1);
  CU_ASSERT_STRING_EQUAL(tok_wordpiece.asset_names[0], "vocab.txt");
  const tokenizer *t = small_tok;
  CU_ASSERT_PTR_EQUAL(t->kind, &tok_wordpiece);
  CU_ASSERT_EQUAL(t->vocab_size, 33);
  CU_ASSERT(t->sp.cls == 2 && t->sp.sep == 3 && t->sp.pad == 0);
  CU_ASSERT_EQUAL(t->lowercase, 1);
  CU_ASSERT_STRING_EQUAL(t->assets[0].name, "vocab.txt");
  CU_ASSERT_EQUAL_FATAL(t->assets[0].len, strlen(SMALL_VOCAB));
  CU_ASSERT(memcmp(t->assets[0].data, SMALL_VOCAB, strlen(SMALL_VOCAB)) == 0);
  CU_ASSERT_STRING_EQUAL(t->kind->piece(t->impl, 23), "##s");
  CU_ASSERT_PTR_NULL(t->kind->piece(t->impl, 33));
  CU_ASSERT_EQUAL(tok_min_len(t, 0), 2); /* [CLS] [SEP] */
  CU_ASSERT_EQUAL(tok_min_len(t, 1), 3); /* [CLS] [SEP] [SEP] */
  /* the kind's tokenize is wp_tokenize */
  const char *text = "Café, unaffable worlds! 中国 hello\xe2\x80\x94world";
  int32_t *a = NULL, *b = NULL;
  int na = 0, nb = 0, ca = 0, cb = 0;
  wp_tokenize(small, text, &a, &na, &ca);
  t->kind->tokenize(t->impl, text, &b, &nb, &cb);
  CU_ASSERT(na == 13 && nb == na && memcmp(a, b, sizeof(int32_t) * (size_t)na) == 0);
  free(a), free(b);
  /* the tokenizer owns a copy of the file: the caller's bytes may go right after loading */
  epee_err e = {{0}};
  size_t len = strlen(SMALL_VOCAB);
  char *buf = malloc(len);
  memcpy(buf, SMALL_VOCAB, len);
  tokenizer *own = load_small_tok(buf, len, &e);
  CU_ASSERT_PTR_NOT_NULL_FATAL(own);
  memset(buf, 'x', len);
  free(buf);
  int32_t ids[8], types[8];
  CU_ASSERT_EQUAL(tok_encode(own, "hello world", NULL, 8, ids, types, NULL), 4);
  CU_ASSERT(ids[0] == 2 && ids[1] == 21 && ids[2] == 22 && ids[3] == 3);
  CU_ASSERT(own->assets[0].len == len && memcmp(own->assets[0].data, SMALL_VOCAB, len) == 0);
  tok_free(own);
  tok_free(NULL); /* harmless */

  /* refusals: NULL and one line naming the asset */
  const char no_pad[] = "[UNK]\n[CLS]\n[SEP]\na\n"; /* wp_load_buffer takes it; batching needs [PAD] */
  wp_tokenizer *w = wp_load_buffer(no_pad, strlen(no_pad), &e);
  CU_ASSERT_PTR_NOT_NULL(w);
  wp_free(w);
  CU_ASSERT_PTR_NULL(load_small_tok(no_pad, strlen(no_pad), &e));
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "[PAD]"));
  CU_ASSERT_EQUAL(strncmp(e.msg, "test vocab: ", 12), 0);
  CU_ASSERT_PTR_NULL(strchr(e.msg, '\n'));
  const char no_unk[] = "[PAD]\n[CLS]\n[SEP]\nx\n";
  CU_ASSERT_PTR_NULL(load_small_tok(no_unk, strlen(no_unk), &e));
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "[UNK]"));
  CU_ASSERT_EQUAL(strncmp(e.msg, "test vocab", 10), 0);
  CU_ASSERT_PTR_NULL(load_small_tok("", 0, &e));
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "empty"));
  /* cased (do_lower_case false): neither lowercased nor stripped of accents, so only exact pieces match */
  tokenizer *cased = tok_load(&tok_wordpiece, (tok_asset[]){{"vocab.txt", (unsigned char *)SMALL_VOCAB, len}},
                              (const char *const[]){"test vocab"}, 0, &e);
  CU_ASSERT_PTR_NOT_NULL_FATAL(cased);
  int32_t cids[16], ctypes[16];
  int n = tok_encode(cased, "hello Hello café go\xcc\x81", NULL, 16, cids, ctypes, NULL);
  CU_ASSERT(n == 6 && cids[1] == 21 && cids[2] == 1 && cids[3] == 1 && cids[4] == 1); /* [CLS] hello [UNK] x3 [SEP] */
  n = tok_encode(small_tok, "hello Hello café", NULL, 16, cids, ctypes, NULL);
  CU_ASSERT(n == 5 && cids[1] == 21 && cids[2] == 21 && cids[3] == 5); /* uncased: Hello -> hello, café -> cafe */
  tok_free(cased);
  /* from files: the path names the problem */
  CU_ASSERT_PTR_NULL(tok_load_files(&tok_wordpiece, (const char *const[]){"/nonexistent/vocab.txt"}, 1, &e));
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "/nonexistent/vocab.txt"));
  CU_ASSERT_PTR_NULL(tok_load_files(&tok_wordpiece, (const char *const[]){""}, 1, &e));
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "no file given for its vocab.txt"));
}

/* ---- the real bert-base-uncased vocabulary ----------------------------------------------------- */

#define BERT_VOCAB "data/cache/vocab/vocab.txt"
static wp_tokenizer *bert;
static tokenizer *bert_tok; /* the same file through tok_load_files */

static int bert_init(void) {
  FILE *f = fopen(BERT_VOCAB, "r");
  if (!f) {
    fprintf(stderr, "\nSKIP: %s not found (run scripts/fetch_data.sh); the bert vocab tests do not run\n", BERT_VOCAB);
    return 0;
  }
  fclose(f);
  epee_err e;
  bert = wp_load_file(BERT_VOCAB, &e);
  if (!bert) fprintf(stderr, "%s\n", e.msg);
  bert_tok = tok_load_files(&tok_wordpiece, (const char *const[]){BERT_VOCAB}, 1, &e);
  if (!bert_tok) fprintf(stderr, "%s\n", e.msg);
  return bert && bert_tok ? 0 : 1;
}
static int bert_clean(void) {
  wp_free(bert);
  tok_free(bert_tok);
  return 0;
}

static void test_bert_vocab(void) {
  if (!bert) return;
  CU_ASSERT_EQUAL(wp_vocab_size(bert), 30522);
  int cls, sep, pad, unk;
  CU_ASSERT_EQUAL(wp_special_ids(bert, &cls, &sep, &pad, &unk), 0);
  CU_ASSERT(cls == 101 && sep == 102 && pad == 0 && unk == 100);
  CU_ASSERT_STRING_EQUAL(wp_id_to_token(bert, 1), "[unused0]");
  CHECK(bert, "unaffable", 14477, 20961, 3468);             /* una ##ffa ##ble */
  CHECK(bert, "Café Déjà vu", 7668, 2139, 3900, 24728);     /* cafe de ##ja vu */
  CHECK(bert, "The distribution of mitochondria.", 1996, 4353, 1997, 10210, 11663, 15422, 4360, 1012);
  CHECK(bert, "中国", 1746, 1799);
  CHECK(bert, "ΟΔΟΣ", 1169, 29722, 15297);                  /* ο ##δ ##ος (final sigma) */
  CHECK(bert, "\xea\xb0\x80", 1455, 30006);                 /* 가 -> ᄀ ##ᅡ */
  CHECK(bert, "Jalapeño", 14855, 2721, 11837, 2080);        /* ja ##la ##pen ##o */
  CHECK(bert, "\xf0\x9f\x98\x80", 100);
  CHECK(bert, "123456", 13138, 19961, 2575);                /* 123 ##45 ##6 */
  int32_t ids[16], types[16];
  int trunc;
  CU_ASSERT(bert_tok->vocab_size == 30522 && bert_tok->sp.cls == 101 && bert_tok->sp.sep == 102 &&
            bert_tok->sp.pad == 0);
  int n = tok_encode(bert_tok, "Hello, world!", NULL, 16, ids, types, &trunc);
  const int32_t want[] = {101, 7592, 1010, 2088, 999, 102};
  CU_ASSERT(n == 6 && trunc == 0 && !memcmp(ids, want, sizeof want));
  n = tok_encode(bert_tok, "mitochondrial genome", "the genome", 16, ids, types, &trunc);
  const int32_t want2[] = {101, 23079, 13458, 102, 1996, 13458, 102}, types2[] = {0, 0, 0, 0, 1, 1, 1};
  CU_ASSERT(n == 7 && trunc == 0 && !memcmp(ids, want2, sizeof want2) && !memcmp(types, types2, sizeof types2));
}

/* Throughput on the GO definitions (informative: printed, not asserted, since sanitizer builds are slow). */
static void test_bert_go_speed(void) {
  if (!bert) return;
  FILE *f = fopen("data/cache/go/train.tsv", "r");
  if (!f) {
    fprintf(stderr, "\nSKIP: data/cache/go/train.tsv not found (run scripts/fetch_data.sh)\n");
    return;
  }
  char *line = NULL;
  size_t cap = 0;
  int32_t ids[128], types[128];
  long lines = 0, tokens = 0, truncated = 0;
  clock_t t0 = clock();
  while (getline(&line, &cap, f) >= 0) {
    char *tab = strchr(line, '\t');
    if (tab) *tab = '\0';
    int tr;
    tokens += tok_encode(bert_tok, line, NULL, 128, ids, types, &tr);
    truncated += tr;
    lines++;
  }
  double s = (double)(clock() - t0) / CLOCKS_PER_SEC;
  free(line);
  fclose(f);
  fprintf(stderr, "\n  GO train: %ld texts, %ld tokens, %ld truncated at 128, %.3f s\n", lines, tokens, truncated, s);
  CU_ASSERT(lines > 20000 && tokens > lines * 10);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("wordpiece small vocab", small_init, small_clean);
  CU_add_test(s, "vocab lookup", test_vocab_lookup);
  CU_add_test(s, "vocab formats and errors", test_vocab_formats);
  CU_add_test(s, "accents and case", test_accents_case);
  CU_add_test(s, "punctuation and digits", test_punctuation_digits);
  CU_add_test(s, "unknown, CJK, emoji", test_unknown_cjk_emoji);
  CU_add_test(s, "cleaning", test_cleaning);
  CU_add_test(s, "invalid UTF-8", test_invalid_utf8);
  CU_add_test(s, "words over 100 chars", test_long_words);
  CU_add_test(s, "encode with specials", test_encode);
  CU_add_test(s, "pair truncation longest_first", test_encode_pair_truncation);
  CU_add_test(s, "the tokenizer kind: table row, copy, refusals", test_tokenizer_kind);
  CU_pSuite r = CU_add_suite("wordpiece bert vocab", bert_init, bert_clean);
  CU_add_test(r, "bert-base-uncased ids", test_bert_vocab);
  CU_add_test(r, "GO definitions throughput", test_bert_go_speed);
}
