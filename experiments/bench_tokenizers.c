/* bench_tokenizers: tokenizer throughput in MB/s of UTF-8 input on one thread, on the GO train definitions: our
 * GPT-2 BPE (data/bpe.c), WordPiece (bert-base-uncased), and SentencePiece when that kind and
 * data/cache/spm/go.model exist. Each kind's tokenize (no specials, no truncation) runs over all texts 5 times;
 * the median pass is reported. With --js MBPS (npm gpt-3-encoder's MB/s on the same texts, measured by
 * experiments/bench_tokenizers.sh) it also prints BPE's ratio to it.
 *   bench_tokenizers [--js MBPS] [--reps N]          (run from the repository root) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dnnl_wrap.h"
#include "core/progress.h"
#include "data/bpe.h"
#include "data/readfile.h"

#define GO_TRAIN "data/cache/go/train.tsv"


static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median seconds of reps passes of kind k over texts[0..n); *tokens = ids per pass. */
static double time_kind(const tokenizer *t, char **texts, int n, int reps, long *tokens) {
  double secs[64];
  int32_t *ids = NULL;
  int got = 0, cap = 0;
  for (int r = 0; r < reps; r++) {
    long total = 0;
    double t0 = now_seconds();
    for (int i = 0; i < n; i++) total += t->kind->tokenize(t->impl, texts[i], &ids, &got, &cap);
    secs[r] = now_seconds() - t0;
    *tokens = total;
  }
  free(ids);
  qsort(secs, (size_t)reps, sizeof *secs, cmp_double);
  return secs[reps / 2];
}

int main(int argc, char **argv) {
  double js = 0;
  int reps = 5;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--js") == 0 && i + 1 < argc) js = atof(argv[++i]);
    else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: bench_tokenizers [--js MBPS] [--reps N]\n");
      return 2;
    }
  }
  if (reps < 1 || reps > 64) reps = 5;
  epee_err e;
  size_t len;
  char *tsv = data_read_file(GO_TRAIN, &len, &e);
  if (!tsv) {
    fprintf(stderr, "bench_tokenizers: %s (run scripts/fetch_data.sh)\n", e.msg);
    return 1;
  }
  /* the text column of every row after the header, NUL-terminated in place */
  int n = 0, cap = 0;
  char **texts = NULL;
  size_t bytes = 0;
  for (char *p = strchr(tsv, '\n'); p && p[1];) {
    char *line = p + 1, *nl = strchr(line, '\n'), *tab = strchr(line, '\t');
    if (tab && (!nl || tab < nl)) *tab = '\0';
    if (nl) *nl = '\0';
    if (n == cap) cap = cap ? 2 * cap : 4096, texts = realloc(texts, (size_t)cap * sizeof *texts);
    texts[n++] = line;
    bytes += strlen(line);
    p = nl;
  }
  dw_describe_machine(stdout);
  printf("texts: %s, %d definitions, %.2f MB; one thread, median of %d passes\n", GO_TRAIN, n, (double)bytes / 1e6,
         reps);
  struct {
    const char *label;
    const tok_kind *kind;
    const char *paths[2];
    int lowercase;
  } runs[] = {
      {"gpt2 bpe (ours)", &tok_bpe, {"data/cache/gpt2/vocab.json", "data/cache/gpt2/merges.txt"}, 0},
      {"wordpiece", tok_find_kind("wordpiece"), {"data/cache/vocab/vocab.txt", NULL}, 1},
      {"sentencepiece", tok_find_kind("sentencepiece"), {"data/cache/spm/go.model", NULL}, 1},
  };
  double bpe_mbps = 0;
  int rc = 0;
  for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
    FILE *f = runs[r].kind ? fopen(runs[r].paths[0], "rb") : NULL;
    if (!f) {
      if (runs[r].kind) printf("%-16s skipped: %s not found\n", runs[r].label, runs[r].paths[0]);
      else printf("%-16s skipped: no such tokenizer kind\n", runs[r].label);
      continue;
    }
    fclose(f);
    tokenizer *t = tok_load_files(runs[r].kind, runs[r].paths, runs[r].lowercase, &e);
    if (!t) {
      printf("%-16s failed: %s\n", runs[r].label, e.msg);
      rc = 1;
      continue;
    }
    long tokens = 0;
    double s = time_kind(t, texts, n, reps, &tokens), mbps = (double)bytes / 1e6 / s;
    printf("%-16s %8.2f MB/s  %9ld tokens  %.3f s per pass\n", runs[r].label, mbps, tokens, s);
    if (runs[r].kind == &tok_bpe) bpe_mbps = mbps;
    tok_free(t);
  }
  if (js > 0) printf("%-16s %8.2f MB/s  (npm gpt-3-encoder's Encoder.js, measured by node)\n", "gpt2 bpe (js)", js);
  if (js > 0 && bpe_mbps > 0) printf("bpe ours / js: %.1fx\n", bpe_mbps / js);
  free(texts);
  free(tsv);
  return rc;
}
