/* GPT-2's byte-level BPE (data/bpe.h lists the steps): loading vocab.json and merges.txt, the hand-written
 * matcher for GPT-2's one pre-tokenisation regex, and the merge loop.
 *
 * Equivalence notes (each checked on the real files by experiments/bpe_check.sh):
 *  - Encoder.js keys its merge ranks by the string "A,B", so a pair (X,Y) with "X,Y" == "A,B" would get A B's
 *    rank. With GPT-2's merges that never fires: all 11 such pairs need a symbol ending in "," next to a lone
 *    '"' (or "]"/"'" next to ",[" / ",'"), which cannot arise because ', "' (rank 297) merges before any
 *    merge of ',' with its left neighbour (the first is rank 572). So we key by the pair, as encoder.py does.
 *  - Encoder.js drops the last line of vocab.bpe (it expects a final newline): a merges.txt without a final
 *    newline is refused as truncated rather than read differently.
 *
 * Words: there is no mutable word cache (a tokenizer is shared read-only by threads, and a locked cache would
 * make them contend on every piece). Instead, at load time every token is run through BPE, and those BPE leaves
 * whole (for GPT-2's files, all 50,000 merged ones) go into a read-only table by their bytes: a piece that is one
 * token (86% of the pieces of the GO definitions) costs one hash probe, the rest run the merge loop, O(n log n)
 * in the piece length n. Memory is bounded by the vocabulary, whatever the texts.
 *
 * vocab.json is parsed strictly by jansson (core/json.h): a token given twice is refused there. */
#include "data/bpe.h"

#include <limits.h>
#include <string.h>

#include "core/json.h"
#include "data/unicode_tables.h"
#include "data/utf8.h"

#define EOT "<|endoftext|>"
#define EMPTY_KEY UINT64_MAX

typedef struct {
  uint64_t key;     /* left id << 32 | right id, EMPTY_KEY for a free slot */
  int32_t rank, id; /* merges.txt line - 2; the merged token */
} merge_slot;

typedef struct {
  int n;                          /* vocab size */
  char *pool;                     /* every token's text (its vocab.json key), NUL-terminated */
  uint32_t *start;                /* id -> offset in pool; start[n] = pool size */
  unsigned char *raw;             /* every token's bytes (the inverse byte map applied to its text) */
  uint32_t *raw_start, *raw_len;  /* id -> its bytes; raw_len 0: some character is no byte's */
  int32_t byte_id[256];           /* the one-byte tokens */
  merge_slot *merges;
  int merge_bits;                 /* table size 2^merge_bits, at least twice the merge count */
  int32_t *whole;                 /* ids of the tokens BPE leaves whole, hashed by their bytes; -1 free */
  uint32_t whole_mask;
  int eot;
} bpe;

/* ---- GPT-2's byte <-> character map (bytes_to_unicode) ------------------------------------------------ */

/* Printable Latin-1 bytes stand for themselves; the 68 others, in byte order, for U+0100.. U+0143. */
static uint32_t byte_char(int b) {
  if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return (uint32_t)b;
  int n = 0;
  for (int c = 0; c < b; c++) n += !((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF));
  return 0x100u + (uint32_t)n;
}

/* ---- hash tables ----------------------------------------------------------------------------------- */

static uint32_t fnv1a(const void *p, size_t n) {
  const unsigned char *s = p;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
  return h;
}

static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

/* The slot of pair key k, or the free slot where it would go. */
static merge_slot *merge_slot_of(const bpe *t, uint64_t k) {
  uint32_t mask = (1u << t->merge_bits) - 1;
  for (uint32_t i = (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> (64 - t->merge_bits));; i = (i + 1) & mask)
    if (t->merges[i].key == k || t->merges[i].key == EMPTY_KEY) return &t->merges[i];
}

static const merge_slot *merge_find(const bpe *t, int32_t a, int32_t b) {
  const merge_slot *s = merge_slot_of(t, pair_key(a, b));
  return s->key == EMPTY_KEY ? NULL : s;
}

/* Id of the whole-kept token whose bytes are w[0..m), or -1. */
static int32_t whole_find(const bpe *t, const unsigned char *w, size_t m) {
  for (uint32_t i = fnv1a(w, m) & t->whole_mask;; i = (i + 1) & t->whole_mask) {
    int32_t id = t->whole[i];
    if (id < 0) return -1;
    if (t->raw_len[id] == m && memcmp(t->raw + t->raw_start[id], w, m) == 0) return id;
  }
}

/* ---- the merge loop -------------------------------------------------------------------------------- */

typedef struct {
  int32_t *sym, *next, *prev; /* symbols as a linked list over byte positions; sym -1: absorbed */
  uint64_t *heap, *pend;      /* candidate pairs as rank << 32 | left position (min-heap; this round's new ones) */
  size_t cap;
} scratch;

static void scratch_reserve(scratch *s, size_t m) {
  if (m <= s->cap) return;
  s->cap = m;
  s->sym = epee_realloc(s->sym, m * sizeof *s->sym);
  s->next = epee_realloc(s->next, m * sizeof *s->next);
  s->prev = epee_realloc(s->prev, m * sizeof *s->prev);
  s->heap = epee_realloc(s->heap, 3 * m * sizeof *s->heap); /* m - 1 initial pairs + 2 per merge */
  s->pend = epee_realloc(s->pend, 2 * m * sizeof *s->pend);
}

static void scratch_free(scratch *s) {
  free(s->sym), free(s->next), free(s->prev), free(s->heap), free(s->pend);
}

static void heap_push(uint64_t *h, size_t *n, uint64_t v) {
  size_t i = (*n)++;
  for (; i > 0 && h[(i - 1) / 2] > v; i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
  h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
  uint64_t top = h[0], v = h[--*n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && h[c + 1] < h[c]) c++;
    if (h[c] >= v) break;
    h[i] = h[c];
    i = c;
  }
  if (*n) h[i] = v;
  return top;
}

/* Queues the pair starting at position p if it is a merge. */
static void push_pair(const bpe *t, scratch *s, size_t *nh, int32_t p) {
  int32_t r = s->next[p];
  const merge_slot *ms = r < 0 ? NULL : merge_find(t, s->sym[p], s->sym[r]);
  if (ms) heap_push(s->heap, nh, (uint64_t)ms->rank << 32 | (uint32_t)p);
}

/* BPE on the bytes w[0..m) (m >= 1); the result is the list s->sym from position 0 along s->next.
 * encoder.py's loop: take the lowest-ranked pair, merge all its occurrences left to right, repeat. Here a heap
 * holds the pairs; one round pops every entry of the lowest rank (in position order: the same left-to-right
 * scan) and only then queues the pairs the round created, so that a pair of lower rank made by the round waits
 * for the next one, as in encoder.py. Stale entries are recognised by their rank no longer matching. */
static void bpe_merge(const bpe *t, const unsigned char *w, size_t m, scratch *s) {
  scratch_reserve(s, m);
  size_t nh = 0;
  for (size_t i = 0; i < m; i++) {
    s->sym[i] = t->byte_id[w[i]];
    s->next[i] = i + 1 < m ? (int32_t)i + 1 : -1;
    s->prev[i] = (int32_t)i - 1;
  }
  for (size_t i = 0; i + 1 < m; i++) push_pair(t, s, &nh, (int32_t)i);
  while (nh) {
    uint64_t rank = s->heap[0] >> 32;
    size_t np = 0;
    while (nh && s->heap[0] >> 32 == rank) {
      int32_t l = (int32_t)(heap_pop(s->heap, &nh) & 0xffffffffu), r = s->sym[l] < 0 ? -1 : s->next[l];
      const merge_slot *ms = r < 0 ? NULL : merge_find(t, s->sym[l], s->sym[r]);
      if (!ms || (uint64_t)ms->rank != rank) continue;
      s->sym[l] = ms->id;
      s->sym[r] = -1;
      s->next[l] = s->next[r];
      if (s->next[r] >= 0) s->prev[s->next[r]] = l;
      if (s->prev[l] >= 0) s->pend[np++] = (uint64_t)s->prev[l];
      s->pend[np++] = (uint64_t)l;
    }
    for (size_t i = 0; i < np; i++)
      if (s->sym[s->pend[i]] >= 0) push_pair(t, s, &nh, (int32_t)s->pend[i]);
  }
}

/* Appends the ids of one piece w[0..m). */
static void bpe_piece(const bpe *t, const unsigned char *w, size_t m, scratch *s, tok_ids *out) {
  int32_t id = m == 1 ? t->byte_id[w[0]] : whole_find(t, w, m);
  if (id >= 0) {
    tok_ids_push(out, id);
    return;
  }
  bpe_merge(t, w, m, s);
  for (int32_t i = 0; i >= 0; i = s->next[i]) tok_ids_push(out, s->sym[i]);
}

/* ---- pre-tokenisation: GPT-2's regex with JavaScript's semantics ----------------------------------- */

enum { C_L, C_N, C_S, C_O }; /* \p{L}, \p{N}, \s, anything else */

/* ASCII: JS's \s is TAB LF VT FF CR SPACE (not U+001C..U+001F, unlike Python). */
static const unsigned char ascii_class[128] = {
    C_O, C_O, C_O, C_O, C_O, C_O, C_O, C_O, C_O, C_S, C_S, C_S, C_S, C_S, C_O, C_O, C_O, C_O, C_O, C_O,
    C_O, C_O, C_O, C_O, C_O, C_O, C_O, C_O, C_O, C_O, C_O, C_O, C_S, C_O, C_O, C_O, C_O, C_O, C_O, C_O,
    C_O, C_O, C_O, C_O, C_O, C_O, C_O, C_O, C_N, C_N, C_N, C_N, C_N, C_N, C_N, C_N, C_N, C_N, C_O, C_O,
    C_O, C_O, C_O, C_O, C_O, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L,
    C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_O, C_O, C_O, C_O, C_O, C_O, C_L, C_L, C_L,
    C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L, C_L,
    C_L, C_L, C_L, C_O, C_O, C_O, C_O, C_O};

/* The class of the character at s[i] (valid UTF-8); *end = the byte after it. */
static int class_at(const unsigned char *s, size_t i, size_t *end) {
  unsigned char c = s[i];
  if (c < 0x80) {
    *end = i + 1;
    return ascii_class[c];
  }
  uint32_t cp;
  if (c < 0xE0) cp = (c & 0x1Fu) << 6 | (s[i + 1] & 0x3Fu), *end = i + 2;
  else if (c < 0xF0) cp = (c & 0x0Fu) << 12 | (s[i + 1] & 0x3Fu) << 6 | (s[i + 2] & 0x3Fu), *end = i + 3;
  else cp = (c & 0x07u) << 18 | (s[i + 1] & 0x3Fu) << 12 | (s[i + 2] & 0x3Fu) << 6 | (s[i + 3] & 0x3Fu), *end = i + 4;
  if (uc_in(uc_js_letter, uc_js_letter_n, cp)) return C_L;
  if (uc_in(uc_js_number, uc_js_number_n, cp)) return C_N;
  if (uc_in(uc_js_space, uc_js_space_n, cp)) return C_S;
  return C_O;
}

/* The end of the run of class c starting at j. */
static size_t run_end(const unsigned char *s, size_t j, size_t n, int c) {
  size_t k;
  while (j < n && class_at(s, j, &k) == c) j = k;
  return j;
}

/* The end of the regex's match at i < n (s valid UTF-8, s[n] = 0). Every character is in exactly one class
 * and every alternative consumes, so the matches tile the text; the alternatives are tried in order:
 * contractions (case-sensitive), then ' ?' + a run of letters / digits / others, then whitespace. */
static size_t match_end(const unsigned char *s, size_t i, size_t n) {
  if (s[i] == '\'') {
    unsigned char a = s[i + 1], b = a ? s[i + 2] : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  }
  size_t j, k;
  int c = class_at(s, i, &j);
  if (s[i] == ' ' && j < n) {
    int c1 = class_at(s, j, &k);
    if (c1 != C_S) return run_end(s, k, n, c1);
  }
  if (c != C_S) return run_end(s, j, n, c);
  /* \s+(?!\S): the whole run at the end of the text, else all but its last character, which then starts the
   * next match (' ?\p{L}+' etc.); a single whitespace before a non-space falls through to \s+ */
  size_t last = i;
  while (j < n && class_at(s, j, &k) == C_S) last = j, j = k;
  if (j == n) return n;
  return last > i ? last : j;
}

/* node's fs.readFileSync(f, 'utf8') decodes by the WHATWG rule: a maximal invalid subpart (a valid
 * sequence's prefix cut short, or any other bad byte) becomes one U+FFFD. data/utf8.h replaces each byte
 * instead (it gives 2 for "\xE4\xB8" where node gives 1), hence this copy. Returns the text re-encoded as
 * valid UTF-8 (malloc'ed, NUL-terminated), its length in *out_len. */
static unsigned char *whatwg_fix(const unsigned char *s, size_t n, size_t *out_len) {
  unsigned char *o = epee_malloc(3 * n + 1), *p = o;
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    int need = c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : 0;
    if (c < 0x80) {
      *p++ = c, i++;
      continue;
    }
    unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80, hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    size_t j = i + 1;
    int got = 0;
    while (got < need && j < n && s[j] >= lo && s[j] <= hi) j++, got++, lo = 0x80, hi = 0xBF;
    if (need && got == need) {
      memcpy(p, s + i, j - i), p += j - i;
    } else {
      *p++ = 0xEF, *p++ = 0xBF, *p++ = 0xBD; /* U+FFFD; the byte that broke the sequence starts the next */
      if (!need) j = i + 1;
    }
    i = j;
  }
  *p = 0;
  *out_len = (size_t)(p - o);
  return o;
}

static int bpe_tokenize(const void *impl, const char *text, int32_t **ids, int *n, int *cap) {
  const bpe *t = impl;
  size_t len = strlen(text);
  const unsigned char *s = (const unsigned char *)text;
  unsigned char *fixed = utf8_first_invalid(text, len) < 0 ? NULL : whatwg_fix(s, len, &len);
  if (fixed) s = fixed;
  tok_ids out = {*ids, 0, *cap};
  scratch sc = {0};
  for (size_t i = 0; i < len;) {
    size_t j = match_end(s, i, len);
    EPEE_CHECK(j - i < INT32_MAX, "bpe: a piece of 2^31 bytes or more");
    bpe_piece(t, s + i, j - i, &sc, &out);
    i = j;
  }
  scratch_free(&sc);
  free(fixed);
  *ids = out.v;
  *cap = out.cap;
  return *n = out.n;
}

/* ---- loading --------------------------------------------------------------------------------------- */

static void bpe_free(void *impl) {
  bpe *t = impl;
  if (!t) return;
  free(t->pool), free(t->start), free(t->raw), free(t->raw_start), free(t->raw_len), free(t->merges), free(t->whole);
  free(t);
}

static const char *json_kind(const json_t *j) {
  return json_is_object(j) ? "an object" : json_is_array(j) ? "an array" : json_is_string(j) ? "a string"
       : json_is_number(j) ? "a number" : json_is_boolean(j) ? "a boolean" : "null";
}

static int line_of(const unsigned char *d, size_t off) {
  int line = 1;
  for (size_t i = 0; i < off; i++) line += d[i] == '\n';
  return line;
}

/* Token text -> id, for loading only: open addressing over the pool. */
typedef struct {
  int32_t *slot;
  uint32_t mask;
} str_map;

static int32_t *str_slot(const bpe *t, const str_map *m, const char *s, size_t n) {
  for (uint32_t i = fnv1a(s, n) & m->mask;; i = (i + 1) & m->mask) {
    int32_t id = m->slot[i];
    if (id < 0) return &m->slot[i];
    if (t->start[id + 1] - t->start[id] - 1 == n && memcmp(t->pool + t->start[id], s, n) == 0) return &m->slot[i];
  }
}

/* vocab.json -> pool, start, n and the text -> id map. 0, or -1 with e set. */
static int load_vocab(bpe *t, const tok_asset *a, const char *where, str_map *map, epee_err *e) {
  if (a->len == 0) return epee_errf(e, "%s: empty file; expected a JSON object of token -> id", where);
  epee_err je;
  json_t *root = epee_json_parse((const char *)a->data, a->len, where, 1, &je);
  if (!root) return epee_errf(e, "%s; expected a JSON object of token -> id", je.msg);
  int rc = -1;
  const char **name = NULL; /* the token of each id, keys of root */
  int n = (int)json_object_size(root);
  if (!json_is_object(root)) {
    epee_errf(e, "%s: expected a JSON object of token -> id, found %s", where, json_kind(root));
    goto out;
  }
  if (n == 0) {
    epee_errf(e, "%s: expected a JSON object of token -> id, found an empty object", where);
    goto out;
  }
  name = epee_calloc((size_t)n, sizeof *name);
  size_t pool_len = 0;
  const char *key;
  json_t *c;
  json_object_foreach(root, key, c) {
    double v = json_number_value(c);
    if (!key[0]) {
      epee_errf(e, "%s: an empty token (key \"\")", where);
      goto out;
    }
    if (!json_is_number(c)) {
      epee_errf(e, "%s: token \"%.60s\": expected an integer id, found %s", where, key, json_kind(c));
      goto out;
    }
    if (!(v >= 0 && v < n) || v != (double)(int)v) {
      epee_errf(e, "%s: token \"%.60s\": id %g is not an integer in 0..%d (%d tokens)", where, key, v, n - 1, n);
      goto out;
    }
    if (name[(int)v]) {
      epee_errf(e, "%s: id %d given to both \"%.60s\" and \"%.60s\"", where, (int)v, name[(int)v], key);
      goto out;
    }
    name[(int)v] = key;
    pool_len += strlen(key) + 1;
  }
  if (pool_len >= UINT32_MAX) {
    epee_errf(e, "%s: tokens too long (%zu bytes)", where, pool_len);
    goto out;
  }
  t->n = n;
  t->pool = epee_malloc(pool_len);
  t->start = epee_malloc(((size_t)n + 1) * sizeof *t->start);
  t->start[n] = (uint32_t)pool_len;
  size_t size = 16, pos = 0;
  while (size < 2 * (size_t)n) size *= 2;
  map->mask = (uint32_t)(size - 1);
  map->slot = epee_malloc(size * sizeof *map->slot);
  memset(map->slot, 0xff, size * sizeof *map->slot);
  for (int id = 0; id < n; id++) { /* ids are 0..n-1, each once: every name is set, and distinct (keys) */
    size_t l = strlen(name[id]);
    memcpy(t->pool + pos, name[id], l + 1);
    t->start[id] = (uint32_t)pos;
    pos += l + 1;
    *str_slot(t, map, t->pool + t->start[id], l) = id;
  }
  rc = 0;
out:
  free(name);
  json_decref(root);
  return rc;
}

/* Each token's bytes: the inverse of the byte map, character by character. */
static void token_bytes(bpe *t) {
  int16_t byte_of[0x144];
  memset(byte_of, 0xff, sizeof byte_of);
  for (int b = 0; b < 256; b++) byte_of[byte_char(b)] = (int16_t)b;
  t->raw = epee_malloc(t->start[t->n]);
  t->raw_start = epee_malloc((size_t)t->n * sizeof *t->raw_start);
  t->raw_len = epee_calloc((size_t)t->n, sizeof *t->raw_len);
  size_t pos = 0;
  for (int id = 0; id < t->n; id++) {
    const unsigned char *p = (const unsigned char *)t->pool + t->start[id];
    size_t l = t->start[id + 1] - t->start[id] - 1, k = 0;
    t->raw_start[id] = (uint32_t)pos;
    for (size_t i = 0; i < l;) {
      uint32_t cp;
      i += (size_t)utf8_decode(p + i, l - i, &cp);
      if (cp >= 0x144 || byte_of[cp] < 0) {
        k = 0;
        break;
      }
      t->raw[pos + k++] = (unsigned char)byte_of[cp];
    }
    t->raw_len[id] = (uint32_t)k;
    pos += k;
  }
}

/* merges.txt -> the merge table. 0, or -1 with e set. */
static int load_merges(bpe *t, const tok_asset *a, const char *where, const str_map *map, epee_err *e) {
  const char *d = (const char *)a->data, *endp = d + a->len;
  static const char header[] = "#version: 0.2\n";
  if (a->len == 0)
    return epee_errf(e, "%s: empty file; expected '#version: 0.2', then one merge 'A B' per line", where);
  if (d[a->len - 1] != '\n')
    return epee_errf(e, "%s:%d: the last line has no newline (truncated file?)", where, line_of(a->data, a->len));
  long bad = utf8_first_invalid(d, a->len);
  if (bad >= 0) return epee_errf(e, "%s:%d: invalid UTF-8 (byte %ld)", where, line_of(a->data, (size_t)bad), bad);
  if (a->len < sizeof header - 1 || memcmp(d, header, sizeof header - 1) != 0) {
    const char *nl = memchr(d, '\n', a->len);
    return epee_errf(e, "%s:1: expected the header '#version: 0.2', found '%.*s'", where,
                     (int)(nl - d > 60 ? 60 : nl - d), d);
  }
  size_t count = 0;
  for (const char *p = d + sizeof header - 1; p < endp; p++) count += *p == '\n';
  if (count > INT32_MAX / 4) return epee_errf(e, "%s: too many merges (%zu)", where, count);
  t->merge_bits = 4;
  while (((size_t)1 << t->merge_bits) < 2 * count) t->merge_bits++;
  t->merges = epee_malloc(((size_t)1 << t->merge_bits) * sizeof *t->merges);
  for (size_t i = 0; i < ((size_t)1 << t->merge_bits); i++) t->merges[i].key = EMPTY_KEY;
  char *both = NULL;
  size_t both_cap = 0;
  int rank = 0, rc = -1;
  for (const char *p = d + sizeof header - 1; p < endp; rank++) {
    const char *nl = memchr(p, '\n', (size_t)(endp - p)), *sp = memchr(p, ' ', (size_t)(nl - p));
    int line = rank + 2, ll = (int)(nl - p > 60 ? 60 : nl - p);
    int ok = sp && sp > p && sp + 1 < nl;
    for (const char *q = p; ok && q < nl; q++) ok = q == sp || !strchr(" \t\r\v\f", *q);
    if (!ok) {
      epee_errf(e, "%s:%d: expected a merge 'A B' (two tokens, one space), found '%.*s'", where, line, ll, p);
      goto out;
    }
    size_t la = (size_t)(sp - p), lb = (size_t)(nl - sp - 1);
    int32_t ia = *str_slot(t, map, p, la), ib = *str_slot(t, map, sp + 1, lb);
    if (ia < 0 || ib < 0) {
      epee_errf(e, "%s:%d: merge '%.*s' names '%.*s', which is not in the vocabulary", where, line, ll, p,
                ia < 0 ? (int)la : (int)lb, ia < 0 ? p : sp + 1);
      goto out;
    }
    if (la + lb + 1 > both_cap) both_cap = la + lb + 1, both = epee_realloc(both, both_cap);
    memcpy(both, p, la), memcpy(both + la, sp + 1, lb);
    int32_t ic = *str_slot(t, map, both, la + lb);
    if (ic < 0) {
      epee_errf(e, "%s:%d: merge '%.*s' makes '%.*s', which is not in the vocabulary", where, line, ll, p,
                (int)(la + lb), both);
      goto out;
    }
    if (ic == t->eot) {
      epee_errf(e, "%s:%d: merge '%.*s' makes %s, which must stay special (no text may encode to it)", where, line,
                ll, p, EOT);
      goto out;
    }
    merge_slot *s = merge_slot_of(t, pair_key(ia, ib));
    if (s->key != EMPTY_KEY) {
      epee_errf(e, "%s:%d: merge '%.*s' repeats line %d", where, line, ll, p, s->rank + 2);
      goto out;
    }
    *s = (merge_slot){pair_key(ia, ib), rank, ic};
    p = nl + 1;
  }
  rc = 0;
out:
  free(both);
  return rc;
}

/* The table of tokens BPE leaves whole (see the top of this file). */
static void build_whole(bpe *t) {
  size_t size = 16;
  while (size < 2 * (size_t)t->n) size *= 2;
  t->whole_mask = (uint32_t)(size - 1);
  t->whole = epee_malloc(size * sizeof *t->whole);
  memset(t->whole, 0xff, size * sizeof *t->whole);
  scratch s = {0};
  for (int id = 0; id < t->n; id++) {
    size_t m = t->raw_len[id];
    const unsigned char *w = t->raw + t->raw_start[id];
    if (m < 2) continue; /* one byte: byte_id; 0: not made of bytes */
    bpe_merge(t, w, m, &s);
    if (s.next[0] >= 0 || s.sym[0] != id) continue;
    uint32_t i = fnv1a(w, m) & t->whole_mask;
    while (t->whole[i] >= 0) i = (i + 1) & t->whole_mask;
    t->whole[i] = id;
  }
  scratch_free(&s);
}

/* Specials: GPT-2 has only <|endoftext|>, so it is both the pair separator and the padding id. Sharing is
 * harmless: padding is hidden by the attention mask and the exit reads the last real token, found from the mask,
 * not from the id; and no text ever encodes to it (it is not a byte's token, and load refuses a merge that makes it),
 * so a real <|endoftext|> is always a separator. */
static void *bpe_load(const tok_asset *a, const char *const *where, int lowercase, tok_specials *sp, int *vocab_size,
                      epee_err *e) {
  if (lowercase) {
    epee_errf(e, "%s: bpe: tokenizer.lowercase must be false: GPT-2's byte-level BPE is cased", where[0]);
    return NULL;
  }
  bpe *t = epee_calloc(1, sizeof *t);
  str_map map = {0};
  if (load_vocab(t, &a[0], where[0], &map, e)) goto fail;
  int32_t eot = *str_slot(t, &map, EOT, strlen(EOT));
  if (eot < 0) {
    epee_errf(e, "%s: no \"%s\" token (GPT-2's separator and padding)", where[0], EOT);
    goto fail;
  }
  t->eot = eot;
  for (int b = 0; b < 256; b++) {
    char c[4];
    int l = utf8_encode(byte_char(b), c);
    t->byte_id[b] = *str_slot(t, &map, c, (size_t)l);
    if (t->byte_id[b] < 0) {
      epee_errf(e, "%s: no token \"%.*s\" for byte 0x%02X (byte-level BPE needs all 256)", where[0], l, c, b);
      goto fail;
    }
  }
  if (load_merges(t, &a[1], where[1], &map, e)) goto fail;
  free(map.slot);
  token_bytes(t);
  build_whole(t);
  *sp = (tok_specials){-1, eot, eot};
  *vocab_size = t->n;
  return t;
fail:
  free(map.slot);
  bpe_free(t);
  return NULL;
}

static const char *bpe_piece_text(const void *impl, int id) {
  const bpe *t = impl;
  return id < 0 || id >= t->n ? NULL : t->pool + t->start[id];
}

const tok_kind tok_bpe = {"bpe", 2, {"vocab.json", "merges.txt"},
                          "GPT-2's vocab.json (token -> id) and merges.txt (the BPE merges in rank order)",
                          bpe_load, bpe_free, bpe_tokenize, bpe_piece_text, .hf_class = "GPT2Tokenizer",
                          .hf_lowercase = 0};
