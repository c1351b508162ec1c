/* The table of tokenizer kinds, loading, and the one encoder that adds specials and truncates for every kind. */
#include "data/tokenizer.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "data/bpe.h"
#include "data/readfile.h"
#include "data/sentencepiece.h"
#include "data/wordpiece.h"

static const tok_kind *const kinds[] = {&tok_wordpiece, &tok_sentencepiece, &tok_bpe};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

void tok_ids_push(tok_ids *b, int32_t id) {
  if (b->n == b->cap) {
    EPEE_CHECK(b->cap < INT_MAX / 2, "text too long to tokenize");
    b->cap = b->cap ? 2 * b->cap : 64;
    b->v = epee_realloc(b->v, (size_t)b->cap * sizeof *b->v);
  }
  b->v[b->n++] = id;
}

const tok_kind *tok_find_kind(const char *name) {
  for (size_t i = 0; name && i < N_KINDS; i++)
    if (strcmp(kinds[i]->name, name) == 0) return kinds[i];
  return NULL;
}

tokenizer *tok_load(const tok_kind *k, const tok_asset *assets, const char *const *where, int lowercase, epee_err *e) {
  tokenizer *t = epee_calloc(1, sizeof *t);
  t->kind = k;
  t->lowercase = lowercase;
  t->impl = k->load(assets, where, lowercase, &t->sp, &t->vocab_size, e);
  if (!t->impl) {
    free(t);
    return NULL;
  }
  for (int i = 0; i < k->n_assets; i++) {
    t->assets[i] = (tok_asset){k->asset_names[i], epee_malloc(assets[i].len + 1), assets[i].len};
    memcpy(t->assets[i].data, assets[i].data, assets[i].len);
    t->assets[i].data[assets[i].len] = 0;
  }
  return t;
}

tokenizer *tok_load_files(const tok_kind *k, const char *const *paths, int lowercase, epee_err *e) {
  tok_asset a[TOK_MAX_ASSETS] = {{0}};
  tokenizer *t = NULL;
  int i = 0;
  for (; i < k->n_assets; i++) {
    if (!paths[i] || !paths[i][0]) {
      epee_errf(e, "tokenizer %s: no file given for its %s", k->name, k->asset_names[i]);
      break;
    }
    char *buf = data_read_file(paths[i], &a[i].len, e);
    if (!buf) break;
    a[i] = (tok_asset){k->asset_names[i], (unsigned char *)buf, a[i].len};
  }
  if (i == k->n_assets) t = tok_load(k, a, paths, lowercase, e);
  for (int j = 0; j < k->n_assets; j++) free(a[j].data);
  return t;
}

void tok_free(tokenizer *t) {
  if (!t) return;
  t->kind->free(t->impl);
  for (int i = 0; i < t->kind->n_assets; i++) free(t->assets[i].data);
  free(t);
}

/* specials around the texts: [CLS] a [SEP] (b [SEP]) with a [CLS] id, else a ([SEP] b) */
static int n_specials(const tokenizer *t, int pair) { return t->sp.cls >= 0 ? 2 + pair : pair; }

int tok_min_len(const tokenizer *t, int pair) { return n_specials(t, pair) > 0 ? n_specials(t, pair) : 1; }

int tok_encode(const tokenizer *t, const char *text, const char *text_b, int max_len, int32_t *ids, int32_t *type_ids,
               int *truncated) {
  int pair = text_b != NULL, cls = t->sp.cls >= 0;
  EPEE_CHECK(max_len >= tok_min_len(t, pair), "tok_encode: max_len below tok_min_len");
  int32_t *a = NULL, *b = NULL;
  int na = 0, nb = 0, ca = 0, cb = 0;
  t->kind->tokenize(t->impl, text, &a, &na, &ca);
  if (pair) t->kind->tokenize(t->impl, text_b, &b, &nb, &cb);
  int budget = max_len - n_specials(t, pair), ka = na, kb = nb;
  if (!pair) {
    if (ka > budget) ka = budget;
  } else {
    while (ka + kb > budget) { /* HF longest_first: the longer side loses its last token; ties cut b */
      if (ka > kb) ka--;
      else kb--;
    }
  }
  if (truncated) *truncated = ka < na || kb < nb;
  int n = 0, ty_b = cls; /* GPT-2 has no token types */
  if (cls) ids[n] = t->sp.cls, type_ids[n++] = 0;
  for (int i = 0; i < ka; i++) ids[n] = a[i], type_ids[n++] = 0;
  if (cls || pair) ids[n] = t->sp.sep, type_ids[n++] = 0;
  if (pair) {
    for (int i = 0; i < kb; i++) ids[n] = b[i], type_ids[n++] = ty_b;
    if (cls) ids[n] = t->sp.sep, type_ids[n++] = 1;
  }
  if (n == 0) ids[n] = t->sp.sep, type_ids[n++] = 0; /* an empty GPT-2 input is <|endoftext|>: a row needs a token */
  free(a);
  free(b);
  return n;
}
