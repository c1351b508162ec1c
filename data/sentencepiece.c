/* The tok_kind "sentencepiece" (ALBERT): the steps are listed in data/sentencepiece.h. The C side does everything
 * but the model itself, which stays inside libsentencepiece behind data/spm_shim.h; Unicode normalisation and case
 * mapping come from GNU libunistring (its Unicode version equals Python's on Debian 12). */
#include "data/sentencepiece.h"

#include <limits.h>
#include <string.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>

#include "data/spm_shim.h"
#include "data/unicode_tables.h"
#include "data/utf8.h"

typedef struct {
  spm_model *m;
  int lowercase;
  int comma; /* the id of the piece "," */
} sp_tok;

/* ---- step 1: AlbertTokenizer.preprocess_text ------------------------------------------------------ */

/* Python's str.isspace() (Unicode 14): bidi class WS, B or S, or category Zs. */
static int py_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static uint32_t *checked(uint32_t *p) {
  if (!p) epee_fatal("libunistring: out of memory");
  return p;
}

/* CPython's final-sigma test for the capital sigma at c[i] of c[0..n), with Python's own Cased and
 * Case_Ignorable (data/unicode_tables.c): libunistring 1.0 does not count U+0027 as case-ignorable. */
static int final_sigma(const uint32_t *c, size_t n, size_t i) {
  size_t j = i;
  while (j > 0 && uc_in(uc_case_ignorable, uc_case_ignorable_n, c[j - 1])) j--;
  if (j == 0 || !uc_in(uc_cased, uc_cased_n, c[j - 1])) return 0;
  for (j = i + 1; j < n && uc_in(uc_case_ignorable, uc_case_ignorable_n, c[j]); j++) {}
  return j == n || !uc_in(uc_cased, uc_cased_n, c[j]);
}

static void append(uint32_t **v, size_t *k, size_t *cap, const uint32_t *c, size_t n) {
  if (*k + n > *cap) {
    *cap = 2 * (*k + n);
    *v = epee_realloc(*v, *cap * sizeof **v);
  }
  memcpy(*v + *k, c, n * sizeof *c);
  *k += n;
}

/* Python's str.lower() of c[0..n), malloc'ed: libunistring's full lowercase mappings (equal to Python's on every
 * code point; without a language, the only context-dependent one is the final sigma), run by run between capital
 * sigmas, which are decided here. */
static uint32_t *py_lower(const uint32_t *c, size_t n, size_t *out_n) {
  uint32_t *out = epee_malloc(sizeof *out);
  size_t k = 0, cap = 1;
  for (size_t i = 0, j; i < n; i = j) {
    if (c[i] == 0x3A3) {
      const uint32_t sigma = final_sigma(c, n, i) ? 0x3C2 : 0x3C3;
      append(&out, &k, &cap, &sigma, 1);
      j = i + 1;
      continue;
    }
    for (j = i; j < n && c[j] != 0x3A3;) j++;
    size_t rn;
    uint32_t *run = checked(u32_tolower(c + i, j - i, NULL, NULL, NULL, &rn));
    append(&out, &k, &cap, run, rn);
    free(run);
  }
  *out_n = k;
  return out;
}

char *albert_preprocess(const char *text, int lowercase, size_t *len) {
  const unsigned char *s = (const unsigned char *)text;
  size_t n = strlen(text), k = 0;
  uint32_t *cp = epee_malloc((n + 1) * sizeof *cp);
  int gap = 0; /* a whitespace run is pending: it becomes one ' ' if something follows */
  for (size_t i = 0; i < n;) {
    uint32_t c;
    i += (size_t)utf8_decode(s + i, n - i, &c);
    if (py_space(c)) {
      gap = k > 0;
      continue;
    }
    if (gap) cp[k++] = ' ', gap = 0;
    cp[k++] = c;
  }
  size_t m = 0; /* `` and '' -> " (two left-to-right passes in Python; disjoint characters, so one suffices) */
  for (size_t i = 0; i < k; i++) {
    if ((cp[i] == '`' || cp[i] == '\'') && i + 1 < k && cp[i + 1] == cp[i]) cp[m++] = '"', i++;
    else cp[m++] = cp[i];
  }
  if (m > 0) {
    size_t dn;
    uint32_t *d = checked(u32_normalize(UNINORM_NFKD, cp, m, NULL, &dn));
    free(cp);
    m = 0;
    for (size_t i = 0; i < dn; i++)
      if (uc_combining_class(d[i]) == UC_CCC_NR) d[m++] = d[i];
    cp = d;
    if (lowercase) {
      uint32_t *l = py_lower(cp, m, &m);
      free(cp);
      cp = l;
    }
  }
  char *out = epee_malloc(4 * m + 1);
  size_t b = 0;
  for (size_t i = 0; i < m; i++) b += (size_t)utf8_encode(cp[i], out + b);
  out[b] = '\0';
  free(cp);
  *len = b;
  return out;
}

/* ---- steps 2-4 ------------------------------------------------------------------------------------- */

typedef struct {
  char *bytes; /* all pieces back to back */
  size_t len, cap;
  size_t *off; /* piece i is bytes[off[i] .. off[i + 1]) */
  int n, cap_off;
} pieces;

static void piece_emit(void *ctx, const char *p, size_t n) {
  pieces *ps = ctx;
  if (ps->len + n > ps->cap) {
    while (ps->len + n > ps->cap) ps->cap = ps->cap ? 2 * ps->cap : 1024;
    ps->bytes = epee_realloc(ps->bytes, ps->cap);
  }
  if (ps->n + 2 > ps->cap_off) {
    EPEE_CHECK(ps->cap_off < INT_MAX / 2, "text too long to tokenize");
    ps->cap_off = ps->cap_off ? 2 * ps->cap_off : 64;
    ps->off = epee_realloc(ps->off, (size_t)ps->cap_off * sizeof *ps->off);
  }
  if (ps->n == 0) ps->off[0] = 0;
  memcpy(ps->bytes + ps->len, p, n);
  ps->len += n;
  ps->off[++ps->n] = ps->len;
}

static void encode(const sp_tok *t, const char *text, size_t len, pieces *ps) {
  char err[256];
  ps->n = 0;
  ps->len = 0;
  if (spm_encode(t->m, text, len, piece_emit, ps, err, sizeof err) != 0) epee_fatal("libsentencepiece: %s", err);
}

static const char SPACE_MARK[] = "\xE2\x96\x81"; /* U+2581, SentencePiece's word-start mark */
#define SPACE_MARK_LEN 3

static int starts_with_mark(const char *p, size_t n) {
  return n >= SPACE_MARK_LEN && memcmp(p, SPACE_MARK, SPACE_MARK_LEN) == 0;
}

/* AlbertTokenizer._tokenize's test: len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit(). */
static int digit_comma(const char *p, size_t n) {
  if (n < 2 || p[n - 1] != ',') return 0;
  size_t i = n - 2; /* start of the code point before ',' (pieces are valid UTF-8) */
  while (i > 0 && ((unsigned char)p[i] & 0xC0) == 0x80) i--;
  uint32_t c;
  utf8_decode((const unsigned char *)p + i, n - 1 - i, &c);
  return uc_digit_value(c) >= 0; /* UnicodeData field 7, what str.isdigit() tests */
}

/* The digit-comma rule for piece p[0..n): appends the ids of its re-encoding and of ",". */
static void split_digit_comma(const sp_tok *t, const char *p, size_t n, pieces *sub, tok_ids *out) {
  char *text = epee_malloc(n);
  size_t k = 0;
  for (size_t i = 0; i + 1 < n;) { /* p without its ',' and without any U+2581 */
    if (starts_with_mark(p + i, n - 1 - i)) i += SPACE_MARK_LEN;
    else text[k++] = p[i++];
  }
  encode(t, text, k, sub);
  free(text);
  for (int j = 0; j < sub->n; j++) {
    const char *q = sub->bytes + sub->off[j];
    size_t qn = sub->off[j + 1] - sub->off[j];
    if (j == 0 && !starts_with_mark(p, n) && starts_with_mark(q, qn)) { /* drop the dummy prefix's mark */
      q += SPACE_MARK_LEN, qn -= SPACE_MARK_LEN;
      if (qn == 0) continue;
    }
    tok_ids_push(out, spm_piece_to_id(t->m, q, qn));
  }
  tok_ids_push(out, t->comma);
}

static int sp_tokenize(const void *impl, const char *text, int32_t **ids, int *n, int *cap) {
  const sp_tok *t = impl;
  size_t len;
  char *pre = albert_preprocess(text, t->lowercase, &len);
  pieces ps = {0}, sub = {0};
  encode(t, pre, len, &ps);
  free(pre);
  tok_ids out = {*ids, 0, *cap};
  for (int i = 0; i < ps.n; i++) {
    const char *p = ps.bytes + ps.off[i];
    size_t pn = ps.off[i + 1] - ps.off[i];
    if (digit_comma(p, pn)) split_digit_comma(t, p, pn, &sub, &out);
    else tok_ids_push(&out, spm_piece_to_id(t->m, p, pn));
  }
  free(ps.bytes);
  free(ps.off);
  free(sub.bytes);
  free(sub.off);
  *ids = out.v;
  *cap = out.cap;
  return *n = out.n;
}

/* ---- loading --------------------------------------------------------------------------------------- */

static int read_varint(const unsigned char *b, size_t n, size_t *i, uint64_t *v) {
  *v = 0;
  for (int shift = 0; *i < n && shift < 64; shift += 7) {
    unsigned char c = b[(*i)++];
    *v |= (uint64_t)(c & 0x7F) << shift;
    if (!(c & 0x80)) return 1;
  }
  return 0;
}

/* Checks the top level of the protobuf message b[0..n): -1 if it is not well-formed (a cut inside a field, say),
 * 0 if it has no normalizer_spec (field 3), 1 if it has one. spm_train writes the pieces (field 1) first and the
 * normalizer_spec after them, and protobuf records no overall length, so a model cut between two pieces parses:
 * its missing normalizer_spec gives it away. */
static int proto_check(const unsigned char *b, size_t n) {
  int spec = 0;
  for (size_t i = 0; i < n;) {
    uint64_t tag, len;
    if (!read_varint(b, n, &i, &tag)) return -1;
    switch (tag & 7) {
      case 0: /* varint */
        if (!read_varint(b, n, &i, &len)) return -1;
        len = 0;
        break;
      case 1: len = 8; break;
      case 2: /* length-delimited */
        if (!read_varint(b, n, &i, &len)) return -1;
        break;
      case 5: len = 4; break;
      default: return -1; /* groups (never written by SentencePiece) and invalid wire types */
    }
    if (len > n - i) return -1;
    spec |= tag >> 3 == 3;
    i += (size_t)len;
  }
  return spec;
}

/* The id of the piece s, or -1 when the model has no such piece (PieceToId would answer the unknown id). */
static int exact_id(const spm_model *m, const char *s) {
  int id = spm_piece_to_id(m, s, strlen(s));
  return id >= 0 && id < spm_piece_size(m) && strcmp(spm_id_to_piece(m, id), s) == 0 ? id : -1;
}

static void sp_free(void *impl) {
  sp_tok *t = impl;
  if (!t) return;
  spm_free(t->m);
  free(t);
}

static void *sp_load(const tok_asset *assets, const char *const *where, int lowercase, tok_specials *sp,
                     int *vocab_size, epee_err *e) {
  const tok_asset *a = &assets[0];
  if (a->len == 0) {
    epee_errf(e, "%s: empty file (expected a SentencePiece model)", where[0]);
    return NULL;
  }
  int pc = proto_check(a->data, a->len);
  if (pc <= 0) {
    epee_errf(e, "%s: %s", where[0], pc < 0 ? "truncated or corrupt SentencePiece model (not a well-formed protobuf)"
                                            : "truncated or not a SentencePiece model (no normalizer_spec)");
    return NULL;
  }
  char err[512];
  spm_model *m = spm_load(a->data, a->len, err, sizeof err);
  if (!m) { /* the library's message for bytes that do not parse is its source line: say it plainly */
    epee_errf(e, "%s: not a SentencePiece model (libsentencepiece: %s)", where[0],
              strstr(err, "ParseFromArray") ? "its protobuf does not parse" : err);
    return NULL;
  }
  sp_tok *t = epee_calloc(1, sizeof *t);
  t->m = m;
  t->lowercase = lowercase != 0;
  static const char *const names[3] = {"[CLS]", "[SEP]", "<pad>"};
  int id[3];
  for (int k = 0; k < 3; k++) {
    id[k] = exact_id(m, names[k]);
    if (id[k] < 0) {
      sp_free(t);
      epee_errf(e, "%s: the SentencePiece model has no %s piece (ALBERT's layout needs [CLS], [SEP] and <pad>: "
                   "spm_train --pad_id=0 --control_symbols=[CLS],[SEP],[MASK])", where[0], names[k]);
      return NULL;
    }
  }
  t->comma = spm_piece_to_id(m, ",", 1);
  sp->cls = id[0];
  sp->sep = id[1];
  sp->pad = id[2];
  *vocab_size = spm_piece_size(m);
  return t;
}

static const char *sp_piece(const void *impl, int id) {
  const sp_tok *t = impl;
  return id >= 0 && id < spm_piece_size(t->m) ? spm_id_to_piece(t->m, id) : NULL;
}

const tok_kind tok_sentencepiece = {
    .name = "sentencepiece",
    .n_assets = 1,
    .asset_names = {"spiece.model"},
    .asset_help = "a SentencePiece model (ALBERT's spiece.model; scripts/fetch_data.sh trains data/cache/spm/go.model)",
    .load = sp_load,
    .free = sp_free,
    .tokenize = sp_tokenize,
    .piece = sp_piece,
    .hf_class = "AlbertTokenizer",
    .hf_lowercase = 1,
};
