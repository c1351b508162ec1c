/* GPT-2 BPE kind tests (data/bpe.c), calling tok_bpe's functions directly.
 * Suite "tiny vocab": a vocabulary built here, needing no fetched data: the 256 byte tokens with id = byte value,
 * then one token per merge of MERGES (merge i makes id 256 + i), then <|endoftext|>. Expected ids are worked out
 * by hand from encoder.py's loop and the regex (Encoder.js, given the same two files, agrees); merges that would
 * fire across a wrong piece boundary make the regex's classes visible in the ids. Also every bad file, each
 * refused in one line.
 * Suite "GPT-2 vocab": data/cache/gpt2/{vocab.json,merges.txt} (scripts/fetch_data.sh) against
 * tests/fixtures/bpe_expected.txt, the ids npm gpt-3-encoder's own Encoder.js gives under node for hostile texts
 * and ~300 GO dev texts (written by experiments/bpe_check.sh --fixture, which also checks every GO text); skipped
 * loudly, and named SKIPPED, when the files are missing. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/bpe.h"
#include "data/readfile.h"

#define GPT2_VOCAB "data/cache/gpt2/vocab.json"
#define GPT2_MERGES "data/cache/gpt2/merges.txt"
#define FIXTURE "tests/fixtures/bpe_expected.txt"

/* ---- helpers ------------------------------------------------------------------------------------------- */

typedef struct {
  char *s;
  size_t len, cap;
} str;

static void put(str *b, const void *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = 2 * (b->len + n + 1);
    b->s = realloc(b->s, b->cap);
  }
  memcpy(b->s + b->len, p, n);
  b->len += n;
  b->s[b->len] = '\0';
}
static void puts_(str *b, const char *s) { put(b, s, strlen(s)); }

/* GPT-2's bytes_to_unicode, written again here (independently of data/bpe.c), as UTF-8 into out; the length. */
static int byte_text(int b, char *out) {
  int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE, n = 0;
  for (int c = 0; c < b; c++) n += !((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE);
  unsigned cp = printable ? (unsigned)b : 256u + (unsigned)n;
  if (cp < 0x80) return out[0] = (char)cp, 1;
  out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F));
  return 2;
}

typedef struct {
  void *impl;
  tok_specials sp;
  int vocab;
} loaded;

static const char *const WHERE[2] = {"V", "M"};

static loaded load(const char *vocab, size_t vlen, const char *merges, size_t mlen, int lowercase, epee_err *e) {
  tok_asset a[2] = {{"vocab.json", (unsigned char *)vocab, vlen}, {"merges.txt", (unsigned char *)merges, mlen}};
  loaded l = {0};
  l.impl = tok_bpe.load(a, WHERE, lowercase, &l.sp, &l.vocab, e);
  return l;
}

/* The ids of text as "1 2 3" (the fixture's form), malloc'ed. */
static char *ids_string(const void *impl, const char *text) {
  int32_t *ids = NULL;
  int n = 0, cap = 0;
  CU_ASSERT_EQUAL(tok_bpe.tokenize(impl, text, &ids, &n, &cap), n);
  str b = {0};
  puts_(&b, "");
  for (int i = 0; i < n; i++) {
    char num[16];
    snprintf(num, sizeof num, i ? " %d" : "%d", ids[i]);
    puts_(&b, num);
  }
  free(ids);
  return b.s;
}

static void check_ids(const void *impl, const char *text, const char *want) {
  char *got = ids_string(impl, text);
  if (strcmp(got, want) != 0) fprintf(stderr, "\n  text \"%s\": got [%s], want [%s]\n", text, got, want);
  CU_ASSERT_STRING_EQUAL(got, want);
  free(got);
}

/* ---- suite "tiny vocab" -------------------------------------------------------------------------------- */

/* In rank order; merge i makes token 256 + i. G is Ġ (the space byte's character). */
#define G "\xc4\xa0"
static const char *const MERGES[] = {
    "h e",         /* 256 he */
    "l l",         /* 257 ll */
    "he ll",       /* 258 hell */
    "hell o",      /* 259 hello */
    G " w",        /* 260 Ġw */
    "o r",         /* 261 or */
    G "w or",      /* 262 Ġwor */
    "l d",         /* 263 ld */
    G "wor ld",    /* 264 Ġworld */
    "a a",         /* 265 aa */
    "aa aa",       /* 266 aaaa */
    "b c",         /* 267 bc */
    "c d",         /* 268 cd */
    "y z",         /* 269 yz (ranked before x y) */
    "x y",         /* 270 xy */
    "qq q",        /* 271 qqq: ranked before q q, so the round merging q q creates a pair of lower rank */
    "q q",         /* 272 qq */
    G " " G,       /* 273 ĠĠ */
    G " b",        /* 274 Ġb */
    "t '",         /* 275 t' (ranked before ' s: fires if "it's" were one piece) */
    "' s",         /* 276 's */
    G " 1",        /* 277 Ġ1 */
    "a 1",         /* 278 a1 */
    G " !",        /* 279 Ġ! */
    "a !",         /* 280 a! */
    G " \xc4\x89", /* 281 Ġĉ (space, tab) */
    "' ll",        /* 282 'll */
    "1 2",         /* 283 12 */
    G " \xc4\x9c", /* 284 Ġ + U+001C's character: JS's \s does not hold U+001C (Python's isspace does) */
    G " \xc3\x82", /* 285 Ġ + U+00A0's first byte: U+00A0 is \s, so it never follows a space in one piece */
};
#define N_MERGES (int)(sizeof MERGES / sizeof MERGES[0])
#define EOT_ID (256 + N_MERGES)

static str tiny_vocab, tiny_merges;
static loaded tiny;

static void json_string(str *b, const char *s, size_t n) {
  puts_(b, "\"");
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"' || s[i] == '\\') puts_(b, "\\");
    put(b, s + i, 1);
  }
  puts_(b, "\"");
}

static int tiny_init(void) {
  puts_(&tiny_vocab, "{");
  for (int b = 0; b < 256; b++) {
    char c[2], num[24];
    json_string(&tiny_vocab, c, (size_t)byte_text(b, c));
    snprintf(num, sizeof num, ": %d,\n", b);
    puts_(&tiny_vocab, num);
  }
  puts_(&tiny_merges, "#version: 0.2\n");
  for (int i = 0; i < N_MERGES; i++) {
    const char *sp = strchr(MERGES[i], ' ');
    str both = {0};
    put(&both, MERGES[i], (size_t)(sp - MERGES[i]));
    puts_(&both, sp + 1);
    char num[24];
    json_string(&tiny_vocab, both.s, both.len);
    snprintf(num, sizeof num, ": %d,\n", 256 + i);
    puts_(&tiny_vocab, num);
    free(both.s);
    puts_(&tiny_merges, MERGES[i]);
    puts_(&tiny_merges, "\n");
  }
  char num[48];
  snprintf(num, sizeof num, "\"<|endoftext|>\": %d}\n", EOT_ID);
  puts_(&tiny_vocab, num);
  epee_err e;
  tiny = load(tiny_vocab.s, tiny_vocab.len, tiny_merges.s, tiny_merges.len, 0, &e);
  if (!tiny.impl) fprintf(stderr, "tiny vocab: %s\n", e.msg);
  return tiny.impl ? 0 : 1;
}

static int tiny_clean(void) {
  tok_bpe.free(tiny.impl);
  free(tiny_vocab.s);
  free(tiny_merges.s);
  return 0;
}

static void test_tiny_load(void) {
  CU_ASSERT_EQUAL(tiny.vocab, EOT_ID + 1);
  CU_ASSERT(tiny.sp.cls == -1 && tiny.sp.sep == EOT_ID && tiny.sp.pad == EOT_ID);
  CU_ASSERT_STRING_EQUAL(tok_bpe.piece(tiny.impl, EOT_ID), "<|endoftext|>");
  CU_ASSERT_STRING_EQUAL(tok_bpe.piece(tiny.impl, 32), G);
  CU_ASSERT_STRING_EQUAL(tok_bpe.piece(tiny.impl, 0), "\xc4\x80");    /* byte 0 -> U+0100 */
  CU_ASSERT_STRING_EQUAL(tok_bpe.piece(tiny.impl, 0x7F), "\xc4\xa1"); /* -> U+0121 */
  CU_ASSERT_STRING_EQUAL(tok_bpe.piece(tiny.impl, 0xAD), "\xc5\x83"); /* -> U+0143, the last */
  CU_ASSERT_STRING_EQUAL(tok_bpe.piece(tiny.impl, 0xE9), "\xc3\xa9"); /* printable Latin-1: itself */
  CU_ASSERT_STRING_EQUAL(tok_bpe.piece(tiny.impl, 259), "hello");
  CU_ASSERT_PTR_NULL(tok_bpe.piece(tiny.impl, -1));
  CU_ASSERT_PTR_NULL(tok_bpe.piece(tiny.impl, EOT_ID + 1));
  epee_err e;
  loaded l = load(tiny_vocab.s, tiny_vocab.len, tiny_merges.s, tiny_merges.len, 1, &e);
  CU_ASSERT_PTR_NULL(l.impl);
  CU_ASSERT_STRING_EQUAL(e.msg, "V: bpe: tokenizer.lowercase must be false: GPT-2's byte-level BPE is cased");
}

static void test_merge_order(void) {
  check_ids(tiny.impl, "hello world", "259 264");
  check_ids(tiny.impl, "Hello", "72 101 257 111"); /* no "H e": only l l merges */
  check_ids(tiny.impl, "aaa", "265 97");           /* left to right: (aa)a, not a(aa) */
  check_ids(tiny.impl, "aaaaa", "266 97");         /* a round merges every a a: aa aa a, then aaaa a */
  check_ids(tiny.impl, "bcd", "267 100");          /* b c has the lower rank */
  check_ids(tiny.impl, "xyz", "120 269");          /* y z has the lower rank, though it comes second */
  check_ids(tiny.impl, "qqq", "271");              /* qq q, then qqq */
  check_ids(tiny.impl, "qqqq", "272 272");         /* the round merges both q q before qq q is looked at */
  check_ids(tiny.impl, "qqqqq", "272 271");        /* qq qq q, then qq q -> qqq */
}

static void test_bytes(void) {
  char text[5];
  for (int b = 1; b < 128; b++) { /* every ASCII byte: its own token */
    char want[16];
    text[0] = (char)b, text[1] = '\0';
    snprintf(want, sizeof want, "%d", b);
    check_ids(tiny.impl, text, want);
  }
  /* every byte valid UTF-8 can hold: U+0080..U+07FF (leads C2..DF, every continuation byte), a character per lead
   * E0..EF and F0..F4; one character is one piece, and nothing non-ASCII merges, so the ids are the bytes */
  unsigned cps[0x780 + 16 + 5];
  int n = 0;
  for (unsigned cp = 0x80; cp < 0x800; cp++) cps[n++] = cp;
  for (unsigned lead = 0; lead < 16; lead++) cps[n++] = lead ? lead << 12 : 0x800;
  for (unsigned lead = 0; lead < 5; lead++) cps[n++] = lead ? lead << 18 : 0x10000;
  int seen[256] = {0};
  for (int i = 0; i < n; i++) {
    unsigned cp = cps[i];
    int l = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    text[0] = (char)(l == 2 ? 0xC0 | cp >> 6 : l == 3 ? 0xE0 | cp >> 12 : 0xF0 | cp >> 18);
    for (int k = 1; k < l; k++) text[k] = (char)(0x80 | ((cp >> (6 * (l - 1 - k))) & 0x3F));
    text[l] = '\0';
    char want[24] = "";
    for (int k = 0; k < l; k++) {
      seen[(unsigned char)text[k]] = 1;
      snprintf(want + strlen(want), sizeof want - strlen(want), k ? " %d" : "%d", (unsigned char)text[k]);
    }
    check_ids(tiny.impl, text, want);
  }
  for (int b = 0x80; b < 256; b++) /* the rest cannot occur in UTF-8 */
    CU_ASSERT(seen[b] == !(b == 0xC0 || b == 0xC1 || b >= 0xF5));
}

static void test_contractions(void) {
  check_ids(tiny.impl, "it's", "105 116 276");  /* it | 's: the t ' merge cannot fire */
  check_ids(tiny.impl, "it'll", "105 116 282"); /* it | 'll */
  check_ids(tiny.impl, "IT'S", "73 84 39 83");  /* case-sensitive: IT | ' | S */
  check_ids(tiny.impl, "'x", "39 120");         /* not a contraction: ' is punctuation */
  check_ids(tiny.impl, " 's", "32 39 115");     /* " '" (space + punctuation) | s */
  check_ids(tiny.impl, "''s", "39 39 115");     /* '' | s: contractions only start a match */
}

static void test_classes(void) {
  check_ids(tiny.impl, " 12", "277 50");     /* one piece: Ġ1 ranks before 12 */
  check_ids(tiny.impl, "a12", "97 283");     /* a | 12: a 1 cannot fire */
  check_ids(tiny.impl, "x 12", "120 277 50");
  check_ids(tiny.impl, "1a", "49 97");
  check_ids(tiny.impl, "a!", "97 33");       /* a | !: a ! cannot fire */
  check_ids(tiny.impl, " !!", "279 33");     /* " !!" is one piece */
  check_ids(tiny.impl, "a !", "97 279");
  check_ids(tiny.impl, "a \x1c" "b", "97 284 98"); /* U+001C is not \s: " \x1c" is space + punctuation */
}

static void test_whitespace(void) {
  check_ids(tiny.impl, "", "");
  check_ids(tiny.impl, " ", "32");
  check_ids(tiny.impl, "a  b", "97 32 274");      /* \s+(?!\S) leaves the space before b to " b" */
  check_ids(tiny.impl, "a   b", "97 273 274");
  check_ids(tiny.impl, "a  ", "97 273");          /* at the end the whole run */
  check_ids(tiny.impl, "  b", "32 274");
  check_ids(tiny.impl, "a \tb", "97 32 9 98");    /* " " | "\t" (\s+ for a lone one) | b: no Ġĉ */
  check_ids(tiny.impl, "a\t b", "97 9 274");
  check_ids(tiny.impl, "a \t", "97 281");
  check_ids(tiny.impl, "a \xc2\xa0" "b", "97 32 194 160 98"); /* U+00A0 is \s: " " | U+00A0 | b */
  check_ids(tiny.impl, "\n\n", "10 10");
}

static void test_invalid_utf8(void) {
  /* node's decoding (WHATWG): one U+FFFD (bytes EF BF BD = ids 239 191 189) per maximal invalid subpart */
  check_ids(tiny.impl, "\xe4\xb8" "a", "239 191 189 97");            /* truncated 3-byte sequence: ONE */
  check_ids(tiny.impl, "\xf0\x9f\x98" "x", "239 191 189 120");       /* truncated 4-byte sequence: one */
  check_ids(tiny.impl, "\xf0\x80\x80", "239 191 189 239 191 189 239 191 189"); /* F0 needs 90..BF next: three */
  check_ids(tiny.impl, "\xed\xa0\x80", "239 191 189 239 191 189 239 191 189"); /* a surrogate: three */
  check_ids(tiny.impl, "\xc0\xaf", "239 191 189 239 191 189");       /* overlong: two */
  check_ids(tiny.impl, "a\xff", "97 239 191 189");
  check_ids(tiny.impl, "\xe0\xa0", "239 191 189");                   /* cut at the end: one */
  check_ids(tiny.impl, "\xef\xbf\xbd", "239 191 189");               /* a real U+FFFD is kept as it is */
}

static void test_growable(void) {
  int32_t *ids = NULL;
  int n = -1, cap = 0;
  CU_ASSERT_EQUAL(tok_bpe.tokenize(tiny.impl, "", &ids, &n, &cap), 0);
  CU_ASSERT_EQUAL(n, 0);
  char big[3001];
  memset(big, 'z', 3000), big[3000] = '\0';
  CU_ASSERT_EQUAL(tok_bpe.tokenize(tiny.impl, big, &ids, &n, &cap), 3000); /* nothing merges z */
  CU_ASSERT(cap >= 3000 && ids[0] == 'z' && ids[2999] == 'z');
  CU_ASSERT_EQUAL(tok_bpe.tokenize(tiny.impl, "hello", &ids, &n, &cap), 1); /* reuses the buffer */
  CU_ASSERT(cap >= 3000 && ids[0] == 259);
  free(ids);
}

/* ---- bad files ----------------------------------------------------------------------------------------- */

/* Loading vocab/merges fails with one line that starts with prefix and holds want. */
static void refused(const char *vocab, size_t vlen, const char *merges, size_t mlen, const char *prefix,
                    const char *want) {
  epee_err e = {{0}};
  loaded l = load(vocab, vlen, merges, mlen, 0, &e);
  CU_ASSERT_PTR_NULL(l.impl);
  tok_bpe.free(l.impl);
  int ok = strncmp(e.msg, prefix, strlen(prefix)) == 0 && strstr(e.msg, want) && !strchr(e.msg, '\n');
  if (!ok) fprintf(stderr, "\n  got \"%s\", want \"%s...%s...\"\n", e.msg, prefix, want);
  CU_ASSERT(ok);
}
#define REFUSE_V(v, prefix, want) refused(v, sizeof v - 1, tiny_merges.s, tiny_merges.len, prefix, want)
#define REFUSE_M(m, prefix, want) refused(tiny_vocab.s, tiny_vocab.len, m, sizeof m - 1, prefix, want)

/* The tiny vocab with its first occurrence of from replaced by to (same length). */
static void refused_edit(int merges, const char *from, const char *to, const char *prefix, const char *want) {
  str *src = merges ? &tiny_merges : &tiny_vocab;
  char *c = malloc(src->len + 1);
  memcpy(c, src->s, src->len + 1);
  char *at = strstr(c, from);
  CU_ASSERT_PTR_NOT_NULL_FATAL(at);
  memcpy(at, to, strlen(to));
  if (merges) refused(tiny_vocab.s, tiny_vocab.len, c, src->len, prefix, want);
  else refused(c, src->len, tiny_merges.s, tiny_merges.len, prefix, want);
  free(c);
}

static void test_bad_vocab(void) {
  REFUSE_V("", "V: ", "empty file; expected a JSON object of token -> id");
  REFUSE_V("hello", "V:1:5: ", "'[' or '{' expected near 'hello'; expected a JSON object of token -> id");
  REFUSE_V("[1, 2]", "V: ", "expected a JSON object of token -> id, found an array");
  REFUSE_V("{}", "V: ", "found an empty object");
  REFUSE_V("{\"a\": 0} x", "V:1:10: ", "end of file expected near 'x'");
  REFUSE_V("{\"a\": 0, \"b\": 0}", "V: ", "id 0 given to both \"a\" and \"b\"");
  REFUSE_V("{\"a\": 0, \"b\": 5}", "V: ", "token \"b\": id 5 is not an integer in 0..1");
  REFUSE_V("{\"a\": 0.5}", "V: ", "id 0.5 is not an integer");
  REFUSE_V("{\"a\": -1}", "V: ", "id -1 is not an integer");
  REFUSE_V("{\"a\": \"0\"}", "V: ", "token \"a\": expected an integer id, found a string");
  REFUSE_V("{\"a\": 0, \"a\": 1}", "V:1:12: ", "duplicate object key near '\"a\"'");
  REFUSE_V("{\"\": 0}", "V: ", "an empty token");
  REFUSE_V("{\n\"a\xff\": 0}", "V:2:2: ", "unable to decode byte 0xff");
  /* cut in the middle, or its end cut off: the parser runs into the end */
  refused(tiny_vocab.s, tiny_vocab.len / 2, tiny_merges.s, tiny_merges.len, "V:", "near end of file");
  refused(tiny_vocab.s, tiny_vocab.len - 3, tiny_merges.s, tiny_merges.len, "V:", "'}' expected near end of file");
  /* missing tokens: a byte's (its key renamed to an unused one), <|endoftext|> */
  refused_edit(0, "\"\\\\\"", "\"~~\"", "V: ", "no token \"\\\" for byte 0x5C (byte-level BPE needs all 256)");
  refused_edit(0, "<|endoftext|>", "<|endoftexx|>", "V: ", "no \"<|endoftext|>\" token");
}

static void test_bad_merges(void) {
  REFUSE_M("", "M: ", "empty file; expected '#version: 0.2', then one merge 'A B' per line");
  REFUSE_M("h e\n", "M:1: ", "expected the header '#version: 0.2', found 'h e'");
  REFUSE_M("#version: 0.2\nh e", "M:2: ", "the last line has no newline (truncated file?)");
  REFUSE_M("#version: 0.2\nh e\n\n", "M:3: ", "expected a merge 'A B' (two tokens, one space), found ''");
  REFUSE_M("#version: 0.2\nh  e\n", "M:2: ", "expected a merge 'A B'");
  REFUSE_M("#version: 0.2\nhe\n", "M:2: ", "expected a merge 'A B'");
  REFUSE_M("#version: 0.2\nh e l\n", "M:2: ", "expected a merge 'A B'");
  REFUSE_M("#version: 0.2\nh e\r\n", "M:2: ", "expected a merge 'A B'");
  REFUSE_M("#version: 0.2\nh e\nzz e\n", "M:3: ", "merge 'zz e' names 'zz', which is not in the vocabulary");
  REFUSE_M("#version: 0.2\nh e\ne h\n", "M:3: ", "merge 'e h' makes 'eh', which is not in the vocabulary");
  REFUSE_M("#version: 0.2\nh e\nl l\nh e\n", "M:4: ", "merge 'h e' repeats line 2");
  REFUSE_M("#version: 0.2\nh \xc3\n", "M:2: ", "invalid UTF-8 (byte 16)");
}

/* A merge that would make <|endoftext|> is refused: no text may encode to it. */
static void test_merge_makes_eot(void) {
  str v = {0};
  put(&v, tiny_vocab.s, tiny_vocab.len - 2); /* without the final "}\n" */
  char num[64];
  snprintf(num, sizeof num, ", \"<|endoftext|\": %d}\n", EOT_ID + 1);
  puts_(&v, num);
  const char m[] = "#version: 0.2\n<|endoftext| >\n"; /* ">" is byte 0x3E's token */
  refused(v.s, v.len, m, sizeof m - 1, "M:2: ", "merge '<|endoftext| >' makes <|endoftext|>, which must stay special");
  free(v.s);
}

/* ---- suite "GPT-2 vocab" ------------------------------------------------------------------------------- */

static loaded gpt2;

static int gpt2_init(void) {
  const char *paths[2] = {GPT2_VOCAB, GPT2_MERGES};
  tok_asset a[2] = {{"vocab.json", NULL, 0}, {"merges.txt", NULL, 0}};
  epee_err e;
  int ok = 1;
  for (int i = 0; i < 2 && ok; i++) ok = (a[i].data = (unsigned char *)data_read_file(paths[i], &a[i].len, &e)) != NULL;
  if (ok) gpt2.impl = tok_bpe.load(a, paths, 0, &gpt2.sp, &gpt2.vocab, &e);
  free(a[0].data);
  free(a[1].data);
  if (!gpt2.impl) fprintf(stderr, "%s\n", e.msg);
  return gpt2.impl ? 0 : 1;
}

static int gpt2_clean(void) {
  tok_bpe.free(gpt2.impl);
  return 0;
}

static void test_gpt2_vocab(void) {
  CU_ASSERT_EQUAL(gpt2.vocab, 50257);
  CU_ASSERT(gpt2.sp.cls == -1 && gpt2.sp.sep == 50256 && gpt2.sp.pad == 50256);
  CU_ASSERT_STRING_EQUAL(tok_bpe.piece(gpt2.impl, 50256), "<|endoftext|>");
  CU_ASSERT_STRING_EQUAL(tok_bpe.piece(gpt2.impl, 15496), "Hello");
  CU_ASSERT_STRING_EQUAL(tok_bpe.piece(gpt2.impl, 995), G "world");
  CU_ASSERT_PTR_NULL(tok_bpe.piece(gpt2.impl, 50257));
  check_ids(gpt2.impl, "Hello world", "15496 995");
  check_ids(gpt2.impl, "<|endoftext|>", "27 91 437 1659 5239 91 29"); /* plain text, never the special */
}

typedef struct {
  char *text;
  char *want;
} fx_case;

static fx_case *fx;
static int fx_n;

/* Reads FIXTURE (format in its header); 0, or -1 with a message. */
static int fixture_load(void) {
  epee_err e;
  size_t len;
  char *d = data_read_file(FIXTURE, &len, &e), *p = d, *end = d + len;
  if (!d) {
    fprintf(stderr, "%s\n", e.msg);
    return -1;
  }
  int cap = 0;
  while (p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) break;
    if (*p == '#') {
      p = nl + 1;
      continue;
    }
    size_t bytes;
    int nids;
    if (sscanf(p, "%zu %d", &bytes, &nids) != 2 || nl + 1 + bytes >= end || nl[1 + bytes] != '\n') break;
    char *ids = nl + 2 + bytes, *ids_end = memchr(ids, '\n', (size_t)(end - ids));
    if (!ids_end) break;
    if (fx_n == cap) cap = cap ? 2 * cap : 256, fx = realloc(fx, (size_t)cap * sizeof *fx);
    fx[fx_n].text = strndup(nl + 1, bytes);
    fx[fx_n].want = strndup(ids, (size_t)(ids_end - ids));
    fx_n++;
    p = ids_end + 1;
  }
  free(d);
  if (p != end) {
    fprintf(stderr, "%s: malformed after %d cases\n", FIXTURE, fx_n);
    return -1;
  }
  return 0;
}

static void test_gpt2_fixture(void) {
  CU_ASSERT_EQUAL_FATAL(fixture_load(), 0);
  CU_ASSERT(fx_n > 300);
  int same = 0;
  for (int i = 0; i < fx_n; i++) {
    char *got = ids_string(gpt2.impl, fx[i].text);
    if (strcmp(got, fx[i].want) == 0) same++;
    else if (same + 5 > i) /* the first few differences */
      fprintf(stderr, "\n  case %d \"%.80s\": got [%.200s], want [%.200s]\n", i + 1, fx[i].text, got, fx[i].want);
    CU_ASSERT(strstr(got, "50256") == NULL);
    free(got);
  }
  fprintf(stderr, "\n  %d/%d fixture cases identical to Encoder.js\n", same, fx_n);
  CU_ASSERT_EQUAL(same, fx_n);
}

/* Two threads share the tokenizer, as the engine's callers may: each tokenizes every case, then the main thread
 * compares (under ThreadSanitizer or not, any shared mutable state would show here as a wrong id). */
static void *tokenize_all(void *out) {
  char **got = out;
  for (int i = 0; i < fx_n; i++) got[i] = ids_string(gpt2.impl, fx[i].text);
  return NULL;
}

static void test_gpt2_threads(void) {
  if (!fx) return; /* the fixture test said why */
  char **got[2];
  pthread_t th[2];
  for (int k = 0; k < 2; k++) {
    got[k] = calloc((size_t)fx_n, sizeof *got[k]);
    CU_ASSERT_EQUAL(pthread_create(&th[k], NULL, tokenize_all, got[k]), 0);
  }
  for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
  int same = 0;
  for (int i = 0; i < fx_n; i++) {
    same += strcmp(got[0][i], fx[i].want) == 0 && strcmp(got[1][i], fx[i].want) == 0;
    free(got[0][i]), free(got[1][i]);
  }
  CU_ASSERT_EQUAL(same, fx_n);
  free(got[0]), free(got[1]);
  for (int i = 0; i < fx_n; i++) free(fx[i].text), free(fx[i].want);
  free(fx);
}

static void test_gpt2_skipped(void) {}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("bpe tiny vocab", tiny_init, tiny_clean);
  CU_add_test(s, "load, specials, pieces", test_tiny_load);
  CU_add_test(s, "merge order", test_merge_order);
  CU_add_test(s, "every byte", test_bytes);
  CU_add_test(s, "contractions", test_contractions);
  CU_add_test(s, "letters, digits, punctuation", test_classes);
  CU_add_test(s, "whitespace and its lookahead", test_whitespace);
  CU_add_test(s, "invalid UTF-8 as node decodes it", test_invalid_utf8);
  CU_add_test(s, "growable id buffer", test_growable);
  CU_add_test(s, "bad vocab.json", test_bad_vocab);
  CU_add_test(s, "bad merges.txt", test_bad_merges);
  CU_add_test(s, "a merge making <|endoftext|>", test_merge_makes_eot);
  FILE *f = fopen(GPT2_VOCAB, "rb"), *g = fopen(GPT2_MERGES, "rb");
  if (f && g) {
    s = CU_add_suite("bpe GPT-2 vocab", gpt2_init, gpt2_clean);
    CU_add_test(s, "vocab and specials", test_gpt2_vocab);
    CU_add_test(s, "fixture ids (Encoder.js)", test_gpt2_fixture);
    CU_add_test(s, "two threads share one tokenizer", test_gpt2_threads);
  } else {
    fprintf(stderr, "\nSKIP: %s not found (run scripts/fetch_data.sh); the GPT-2 vocab tests do not run\n",
            f ? GPT2_MERGES : GPT2_VOCAB);
    s = CU_add_suite("bpe GPT-2 vocab", NULL, NULL);
    CU_add_test(s, "SKIPPED: data/cache/gpt2 missing (run scripts/fetch_data.sh)", test_gpt2_skipped);
  }
  if (f) fclose(f);
  if (g) fclose(g);
}
