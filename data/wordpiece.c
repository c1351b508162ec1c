/* BERT WordPiece tokenizer: the steps are listed in wordpiece.h; each has one function below. */
#include "data/wordpiece.h"

#include <limits.h>
#include <string.h>

#include "data/readfile.h"
#include "data/unicode_tables.h"
#include "data/utf8.h"

struct wp_tokenizer {
  int n;           /* vocab size */
  char *pool;      /* all tokens, each NUL-terminated */
  uint32_t *start; /* id -> offset of its token in pool */
  uint32_t *len;   /* id -> token length in bytes */
  int32_t *slot;   /* open-addressing hash table of ids (linear probing), -1 = empty */
  uint32_t mask;   /* table size - 1 (power of two, at least 2x the vocab) */
  int max_bytes;   /* longest token: WordPiece never probes a longer substring */
  int cls, sep, pad, unk;
  int cased; /* do_lower_case false (a cased vocabulary): step 4 keeps the word as it is */
};

/* ---- vocabulary ---------------------------------------------------------------------------------- */

static uint32_t fnv1a(uint32_t h, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* Slot holding the token ("##" if cont) + s[0..n), or the empty slot where it would go. */
static uint32_t find_slot(const wp_tokenizer *t, const char *s, size_t n, int cont) {
  size_t pre = cont ? 2 : 0;
  uint32_t h = fnv1a(fnv1a(2166136261u, "##", pre), s, n);
  for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
    int id = t->slot[i];
    if (id < 0) return i;
    const char *p = t->pool + t->start[id];
    if (t->len[id] == n + pre && memcmp(p, "##", pre) == 0 && memcmp(p + pre, s, n) == 0) return i;
  }
}

static int lookup(const wp_tokenizer *t, const char *s, size_t n, int cont) {
  if (n + (cont ? 2 : 0) > (size_t)t->max_bytes) return -1;
  return t->slot[find_slot(t, s, n, cont)];
}

static wp_tokenizer *load(const char *name, const char *buf, size_t len, epee_err *e) {
  size_t bom = utf8_bom_len(buf, len);
  buf += bom, len -= bom;
  if (len == 0) {
    epee_errf(e, "%s: empty vocabulary", name);
    return NULL;
  }
  if (len >= UINT32_MAX) {
    epee_errf(e, "%s: vocabulary file too large (%zu bytes)", name, len);
    return NULL;
  }
  size_t n = buf[len - 1] != '\n'; /* a last line without '\n' still counts */
  for (size_t i = 0; i < len; i++) n += buf[i] == '\n';
  if (n > INT_MAX / 4) {
    epee_errf(e, "%s: too many lines (%zu)", name, n);
    return NULL;
  }
  wp_tokenizer *t = epee_calloc(1, sizeof *t);
  t->n = (int)n;
  t->pool = epee_malloc(len + 1);
  t->start = epee_malloc(n * sizeof *t->start);
  t->len = epee_malloc(n * sizeof *t->len);
  size_t size = 16;
  while (size < 2 * n) size *= 2;
  t->mask = (uint32_t)(size - 1);
  t->slot = epee_malloc(size * sizeof *t->slot);
  memset(t->slot, 0xff, size * sizeof *t->slot); /* all -1 */
  size_t pos = 0;
  for (int id = 0; id < t->n; id++) {
    const char *nl = memchr(buf + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - buf) : len, l = end - pos;
    if (l > 0 && buf[pos + l - 1] == '\r') l--;
    if (memchr(buf + pos, '\0', l)) {
      wp_free(t);
      epee_errf(e, "%s:%d: NUL byte in a vocabulary line", name, id + 1);
      return NULL;
    }
    long bad = utf8_first_invalid(buf + pos, l);
    if (bad >= 0) { /* a piece no UTF-8 text can ever match: the file is not the vocabulary it claims to be */
      wp_free(t);
      epee_errf(e, "%s:%d: invalid UTF-8 at byte %ld of a vocabulary line", name, id + 1, bad + 1);
      return NULL;
    }
    memcpy(t->pool + pos, buf + pos, l); /* line i keeps its offset: pool has room for all of buf */
    t->pool[pos + l] = '\0';
    t->start[id] = (uint32_t)pos;
    t->len[id] = (uint32_t)l;
    if ((int)l > t->max_bytes) t->max_bytes = (int)l;
    t->slot[find_slot(t, buf + pos, l, 0)] = id; /* a duplicate takes over its earlier line, as in HF */
    pos = end + 1;
  }
  t->cls = wp_token_id(t, "[CLS]");
  t->sep = wp_token_id(t, "[SEP]");
  t->pad = wp_token_id(t, "[PAD]");
  t->unk = wp_token_id(t, "[UNK]");
  const char *missing = t->unk < 0 ? "[UNK]" : t->cls < 0 ? "[CLS]" : t->sep < 0 ? "[SEP]" : NULL;
  if (missing) {
    wp_free(t);
    epee_errf(e, "%s: vocabulary has no %s line (expected a BERT vocab.txt)", name, missing);
    return NULL;
  }
  return t;
}

wp_tokenizer *wp_load_buffer(const char *vocab_txt, size_t len, epee_err *e) {
  return load("<vocab buffer>", vocab_txt, len, e);
}

wp_tokenizer *wp_load_file(const char *vocab_path, epee_err *e) {
  size_t len;
  char *buf = data_read_file(vocab_path, &len, e);
  if (!buf) return NULL;
  wp_tokenizer *t = load(vocab_path, buf, len, e);
  free(buf);
  return t;
}

void wp_free(wp_tokenizer *t) {
  if (!t) return;
  free(t->pool);
  free(t->start);
  free(t->len);
  free(t->slot);
  free(t);
}

int wp_vocab_size(const wp_tokenizer *t) { return t->n; }

int wp_token_id(const wp_tokenizer *t, const char *piece) { return lookup(t, piece, strlen(piece), 0); }

const char *wp_id_to_token(const wp_tokenizer *t, int id) {
  return id >= 0 && id < t->n ? t->pool + t->start[id] : NULL;
}

int wp_special_ids(const wp_tokenizer *t, int *cls, int *sep, int *pad, int *unk) {
  if (cls) *cls = t->cls;
  if (sep) *sep = t->sep;
  if (pad) *pad = t->pad;
  if (unk) *unk = t->unk;
  return t->cls >= 0 && t->sep >= 0 && t->pad >= 0 && t->unk >= 0 ? 0 : -1;
}

/* ---- character classes (ASCII answered inline: it is almost all of the traffic) -------------------- */

static int is_control(uint32_t cp) {
  if (cp < 0x80) return (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7F;
  return uc_in(uc_control, uc_control_n, cp);
}

static int is_space(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r';
  return uc_in(uc_space, uc_space_n, cp);
}

static int is_punct(uint32_t cp) {
  if (cp < 0x80)
    return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
  return uc_in(uc_punct, uc_punct_n, cp);
}

/* BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks (not Hangul, kana...). */
static int is_cjk(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) ||
         (cp >= 0x2B820 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* After cleaning, the only separators Python's str.split() still sees. */
static int is_separator(uint32_t cp) { return cp == ' ' || cp == 0x2028 || cp == 0x2029; }

/* ---- growable buffers ---------------------------------------------------------------------------- */

typedef struct {
  uint32_t *v;
  int n, cap;
} cpbuf;

static void cp_push(cpbuf *b, uint32_t cp) {
  if (b->n == b->cap) {
    b->cap = b->cap ? 2 * b->cap : 256;
    b->v = epee_realloc(b->v, (size_t)b->cap * sizeof *b->v);
  }
  b->v[b->n++] = cp;
}

typedef struct {
  cpbuf text, word; /* cleaned text; one lowercased, accent-stripped word */
  char *bytes;      /* one word as UTF-8 */
  int *off;         /* off[k] = byte offset of code point k in bytes */
  int word_cap;     /* capacity of bytes / 4 and of off - 1, in code points */
} scratch;

static void scratch_free(scratch *s) {
  free(s->text.v);
  free(s->word.v);
  free(s->bytes);
  free(s->off);
}

/* ---- the steps ----------------------------------------------------------------------------------- */

/* Steps 1 and 2: UTF-8 -> code points, cleaned, CJK ideographs surrounded by spaces. */
static void clean_text(const char *text, cpbuf *out) {
  const unsigned char *s = (const unsigned char *)text;
  size_t n = strlen(text);
  out->n = 0;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    i += (size_t)utf8_decode(s + i, n - i, &cp);
    if (cp == 0 || cp == UTF8_REPLACEMENT || is_control(cp)) continue;
    if (is_space(cp)) {
      cp_push(out, ' ');
    } else if (is_cjk(cp)) {
      cp_push(out, ' ');
      cp_push(out, cp);
      cp_push(out, ' ');
    } else {
      cp_push(out, cp);
    }
  }
}

/* CPython's Final_Sigma test for the capital sigma at w[i] of the word w[0..n). */
static int final_sigma(const uint32_t *w, int n, int i) {
  int j = i - 1;
  while (j >= 0 && uc_in(uc_case_ignorable, uc_case_ignorable_n, w[j])) j--;
  if (j < 0 || !uc_in(uc_cased, uc_cased_n, w[j])) return 0;
  for (j = i + 1; j < n && uc_in(uc_case_ignorable, uc_case_ignorable_n, w[j]); j++) {}
  return j == n || !uc_in(uc_cased, uc_cased_n, w[j]);
}

static const uc_fold_entry *find_fold(uint32_t cp) {
  int lo = 0, hi = uc_fold_n - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (cp < uc_fold[mid].cp) hi = mid - 1;
    else if (cp > uc_fold[mid].cp) lo = mid + 1;
    else return &uc_fold[mid];
  }
  return NULL;
}

/* Step 4: w[0..n) -> strip_Mn(NFD(lower(w))) appended to out. */
static void fold_word(const uint32_t *w, int n, cpbuf *out) {
  enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7, V_COUNT = 21, T_COUNT = 28 };
  for (int i = 0; i < n; i++) {
    uint32_t cp = w[i];
    if (cp < 0x80) {
      cp_push(out, cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    } else if (cp == 0x3A3) { /* capital sigma: the one context-dependent lowercase mapping */
      cp_push(out, final_sigma(w, n, i) ? 0x3C2 : 0x3C3);
    } else if (cp >= S_BASE && cp < S_BASE + 11172) { /* Hangul syllable: arithmetic NFD (Unicode 3.12) */
      uint32_t s = cp - S_BASE;
      cp_push(out, L_BASE + s / (V_COUNT * T_COUNT));
      cp_push(out, V_BASE + s % (V_COUNT * T_COUNT) / T_COUNT);
      if (s % T_COUNT) cp_push(out, T_BASE + s % T_COUNT);
    } else if (!uc_in(uc_mn, uc_mn_n, cp)) {
      const uc_fold_entry *f = find_fold(cp);
      if (!f) cp_push(out, cp);
      else
        for (int k = 0; k < f->n; k++) cp_push(out, f->out[k]);
    }
  }
}

/* Step 6: greedy longest-match-first WordPiece of one word w[0..n) (n >= 1). */
static void wordpiece(const wp_tokenizer *t, const uint32_t *w, int n, scratch *s, tok_ids *out) {
  if (n > WP_MAX_WORD_CHARS) {
    tok_ids_push(out, t->unk);
    return;
  }
  if (n > s->word_cap) {
    s->word_cap = n;
    s->bytes = epee_realloc(s->bytes, (size_t)4 * n);
    s->off = epee_realloc(s->off, (size_t)(n + 1) * sizeof *s->off);
  }
  s->off[0] = 0;
  for (int k = 0; k < n; k++) s->off[k + 1] = s->off[k] + utf8_encode(w[k], s->bytes + s->off[k]);
  int first = out->n;
  for (int start = 0; start < n;) {
    int end = n, id = -1;
    for (; end > start; end--) {
      id = lookup(t, s->bytes + s->off[start], (size_t)(s->off[end] - s->off[start]), start > 0);
      if (id >= 0) break;
    }
    if (id < 0) { /* no piece fits: the whole word is unknown */
      out->n = first;
      tok_ids_push(out, t->unk);
      return;
    }
    tok_ids_push(out, id);
    start = end;
  }
}

/* All steps: appends the WordPiece ids of text to out. */
static void tokenize_into(const wp_tokenizer *t, const char *text, scratch *s, tok_ids *out) {
  clean_text(text, &s->text);
  const uint32_t *c = s->text.v;
  int n = s->text.n;
  for (int i = 0; i < n;) { /* step 3: whitespace-separated tokens c[i..j) */
    if (is_separator(c[i])) {
      i++;
      continue;
    }
    int j = i;
    while (j < n && !is_separator(c[j])) j++;
    s->word.n = 0;
    if (t->cased) /* HF: no lowercasing and, with strip_accents left unset, no accent stripping either */
      for (int k = i; k < j; k++) cp_push(&s->word, c[k]);
    else
      fold_word(c + i, j - i, &s->word);
    const uint32_t *w = s->word.v;
    for (int a = 0, m = s->word.n; a < m;) { /* step 5: punctuation characters stand alone */
      int b = a + 1;
      if (!is_punct(w[a]))
        while (b < m && !is_punct(w[b])) b++;
      wordpiece(t, w + a, b - a, s, out);
      a = b;
    }
    i = j;
  }
}

int wp_tokenize(const wp_tokenizer *t, const char *text, int32_t **ids, int *n, int *cap) {
  tok_ids b = {*ids, 0, *cap};
  scratch s = {0};
  tokenize_into(t, text, &s, &b);
  scratch_free(&s);
  *ids = b.v;
  *cap = b.cap;
  return *n = b.n;
}


/* ---- the tokenizer kind (data/tokenizer.h) ---- */

static void *kind_load(const tok_asset *a, const char *const *where, int lowercase, tok_specials *sp, int *vocab,
                       epee_err *e) {
  wp_tokenizer *t = load(where[0], (const char *)a[0].data, a[0].len, e);
  if (t) t->cased = !lowercase;
  if (t && t->pad < 0) {
    epee_errf(e, "%s: vocabulary has no [PAD] line, needed for batching", where[0]);
    wp_free(t);
    return NULL;
  }
  if (t) *sp = (tok_specials){t->cls, t->sep, t->pad}, *vocab = t->n;
  return t;
}

static int kind_tokenize(const void *impl, const char *text, int32_t **ids, int *n, int *cap) {
  return wp_tokenize(impl, text, ids, n, cap);
}

static const char *kind_piece(const void *impl, int id) { return wp_id_to_token(impl, id); }
static void kind_free(void *impl) { wp_free(impl); }

const tok_kind tok_wordpiece = {"wordpiece", 1, {"vocab.txt"}, "a BERT vocab.txt", kind_load, kind_free,
                                kind_tokenize, kind_piece, .hf_class = "BertTokenizer",
                                .hf_lowercase = 1};
