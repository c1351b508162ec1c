/* tokenize_dump: the ids one tokenizer kind (data/tokenizer.h) gives each input, for the equivalence checks
 * against the reference implementations (experiments/bpe_check.sh: npm gpt-3-encoder's Encoder.js;
 * experiments/spm_check.py: python3-sentencepiece). It calls the kind's tokenize directly, so nothing but the
 * kind is between the text and the ids (no specials, no truncation).
 *   tokenize_dump [-z | --hex] [--no-lower] KIND FILE [FILE2]   one JSON id list per input, e.g. [15496,995]
 *   tokenize_dump [--hex] [--no-lower] --albert-pre              AlbertTokenizer's preprocessed text (as hex)
 * FILE(s): the kind's assets (wordpiece vocab.txt; sentencepiece .model; bpe vocab.json merges.txt). Inputs are
 * the lines of stdin (without '\n'); with -z its NUL-terminated records, with --hex lines of the input's bytes in
 * hex (either way an input may hold newlines and invalid UTF-8). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "data/sentencepiece.h"
#include "data/tokenizer.h"

static int unhex(char *s) { /* in place; -1 on a bad digit or odd length */
  size_t n = strlen(s);
  if (n % 2) return -1;
  for (size_t i = 0; i < n; i += 2) {
    unsigned v;
    if (sscanf(s + i, "%2x", &v) != 1) return -1;
    s[i / 2] = (char)v;
  }
  s[n / 2] = '\0';
  return 0;
}

int main(int argc, char **argv) {
  int z = 0, hex = 0, lower = 1, pre = 0, nf = 0, bad = 0;
  const char *kind = NULL, *files[TOK_MAX_ASSETS] = {NULL};
  for (int i = 1; i < argc && !bad; i++) {
    if (!strcmp(argv[i], "-z")) z = 1;
    else if (!strcmp(argv[i], "--hex")) hex = 1;
    else if (!strcmp(argv[i], "--no-lower")) lower = 0;
    else if (!strcmp(argv[i], "--albert-pre")) pre = 1;
    else if (argv[i][0] != '-' && !kind) kind = argv[i];
    else if (argv[i][0] != '-' && nf < TOK_MAX_ASSETS) files[nf++] = argv[i];
    else bad = 1;
  }
  const tok_kind *k = tok_find_kind(kind);
  if (bad || (!pre && (!k || nf != k->n_assets))) {
    fprintf(stderr, "usage: tokenize_dump [-z | --hex] [--no-lower] KIND FILE [FILE2]  (KIND: wordpiece, "
                    "sentencepiece, bpe) | tokenize_dump [--hex] [--no-lower] --albert-pre\n");
    return 2;
  }
  epee_err e;
  tokenizer *t = NULL;
  if (!pre && !(t = tok_load_files(k, files, lower, &e))) {
    fprintf(stderr, "tokenize_dump: %s\n", e.msg);
    return 1;
  }
  char *rec = NULL;
  size_t cap = 0;
  int32_t *ids = NULL;
  int n = 0, idcap = 0;
  ssize_t len;
  while ((len = getdelim(&rec, &cap, z ? '\0' : '\n', stdin)) >= 0) {
    if (len > 0 && rec[len - 1] == (z ? '\0' : '\n')) rec[len - 1] = '\0';
    if (hex && unhex(rec) != 0) {
      fprintf(stderr, "tokenize_dump: bad hex line\n");
      return 1;
    }
    if (pre) {
      size_t plen;
      char *p = albert_preprocess(rec, lower, &plen);
      for (size_t i = 0; i < plen; i++) printf("%02x", (unsigned char)p[i]);
      putchar('\n');
      free(p);
      continue;
    }
    t->kind->tokenize(t->impl, rec, &ids, &n, &idcap);
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    json_put_line(stdout, a);
  }
  free(rec);
  free(ids);
  tok_free(t);
  return ferror(stdout) ? 1 : 0;
}
