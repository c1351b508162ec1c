/* Encoding a dataset and length-bucketed batching: lengths/offsets, truncation count, determinism per
 * (seed, epoch), every example exactly once per epoch, padding only to each batch's own maximum. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/wordpiece.h"

static const char VOCAB[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\na\nb\n"; /* ids 0..5 */
enum { PAD = 0, CLS = 2, SEP = 3, A = 4, B = 5 };
static tokenizer *tok;

static tokenizer *load_vocab(const char *vocab, epee_err *e) {
  return tok_load(&tok_wordpiece, (tok_asset[]){{"vocab.txt", (unsigned char *)vocab, strlen(vocab)}},
                  (const char *const[]){"test vocab"}, 1, e);
}

static int suite_init(void) {
  epee_err e;
  tok = load_vocab(VOCAB, &e);
  if (!tok) fprintf(stderr, "%s\n", e.msg);
  return tok ? 0 : 1;
}
static int suite_clean(void) {
  tok_free(tok);
  return 0;
}

/* n examples; example i is "a" repeated words[i] times (words[i] + 2 tokens), label i % 3. */
static void make_raw(ds_raw *r, const int *words, int n) {
  memset(r, 0, sizeof *r);
  r->n = n;
  r->texts = calloc((size_t)n, sizeof *r->texts);
  r->labels = calloc((size_t)n, sizeof *r->labels);
  for (int i = 0; i < n; i++) {
    r->texts[i] = calloc((size_t)(2 * words[i] + 1), 1);
    for (int k = 0; k < words[i]; k++) strcat(r->texts[i], k ? " a" : "a");
    r->labels[i] = i % 3;
  }
}

static void test_encode_dataset(void) {
  const int words[] = {0, 3, 10, 1};
  ds_raw r;
  make_raw(&r, words, 4);
  ds_encoded d;
  epee_err e;
  CU_ASSERT_EQUAL_FATAL(ds_encode(&r, tok, 8, &d, &e), 0);
  CU_ASSERT_EQUAL(d.n, 4);
  CU_ASSERT(d.len[0] == 2 && d.len[1] == 5 && d.len[2] == 8 && d.len[3] == 3); /* 10 words cut to 6 */
  CU_ASSERT(d.offset[0] == 0 && d.offset[1] == 2 && d.offset[2] == 7 && d.offset[3] == 15);
  CU_ASSERT_EQUAL(d.n_truncated, 1);
  CU_ASSERT_EQUAL(d.max_len, 8);
  CU_ASSERT_EQUAL(d.pad_id, PAD);
  const int32_t want[] = {CLS, SEP, CLS, A, A, A, SEP, CLS, A, A, A, A, A, A, SEP, CLS, A, SEP};
  CU_ASSERT_EQUAL(memcmp(d.ids, want, sizeof want), 0);
  CU_ASSERT(d.labels[0] == 0 && d.labels[2] == 2 && d.labels[3] == 0);
  ds_encoded_free(&d);

  CU_ASSERT_EQUAL(ds_encode(&r, tok, 1, &d, &e), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "max_len 1"));
  CU_ASSERT_EQUAL(ds_encode(&r, tok, 2, &d, &e), 0); /* [CLS] [SEP] fit: every text cut to nothing */
  CU_ASSERT(d.len[0] == 2 && d.len[1] == 2 && d.n_truncated == 3);
  ds_encoded_free(&d);
  /* a vocabulary without [PAD] cannot batch: refused when the tokenizer is loaded, before any encoding */
  const char no_pad[] = "[UNK]\n[CLS]\n[SEP]\na\n";
  CU_ASSERT_PTR_NULL(load_vocab(no_pad, &e));
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "[PAD]"));
  /* the padding id is the tokenizer's, wherever its vocabulary puts [PAD] */
  const char pad_last[] = "[UNK]\n[CLS]\n[SEP]\na\n[PAD]\n";
  tokenizer *t2 = load_vocab(pad_last, &e);
  CU_ASSERT_PTR_NOT_NULL_FATAL(t2);
  CU_ASSERT_EQUAL_FATAL(ds_encode(&r, t2, 8, &d, &e), 0);
  CU_ASSERT_EQUAL(d.pad_id, 4);
  ds_encoded_free(&d);
  tok_free(t2);
  ds_raw_free(&r);
}

static void test_encode_pairs(void) {
  ds_raw r = {0};
  char *a[] = {"a a", "a"}, *b[] = {"b", "b b b"};
  r.n = 2;
  r.texts = a;
  r.texts_b = b;
  r.labels = (int[]){1, 0};
  ds_encoded d;
  epee_err e;
  CU_ASSERT_EQUAL_FATAL(ds_encode(&r, tok, 6, &d, &e), 0);
  /* [CLS] a a [SEP] b [SEP] fits; [CLS] a [SEP] b b b [SEP] = 7 > 6: b loses one */
  const int32_t want[] = {CLS, A, A, SEP, B, SEP, CLS, A, SEP, B, B, SEP};
  const int32_t types[] = {0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1};
  CU_ASSERT(d.len[0] == 6 && d.len[1] == 6 && d.n_truncated == 1);
  CU_ASSERT_EQUAL(memcmp(d.ids, want, sizeof want), 0);
  CU_ASSERT_EQUAL(memcmp(d.type_ids, types, sizeof types), 0);
  ds_encoded_free(&d);
  CU_ASSERT_EQUAL(ds_encode(&r, tok, 2, &d, &e), -1); /* a pair needs 3 */
  CU_ASSERT_EQUAL(ds_encode(&r, tok, 3, &d, &e), 0);
  ds_encoded_free(&d);
}

/* A synthetic encoded set of n examples with lengths 2 + (i * 7919) % 50 (ids are not used here). */
static void make_encoded(ds_encoded *d, int n) {
  memset(d, 0, sizeof *d);
  d->n = n;
  d->len = malloc((size_t)(n ? n : 1) * sizeof *d->len);
  d->labels = malloc((size_t)(n ? n : 1) * sizeof *d->labels);
  for (int i = 0; i < n; i++) d->len[i] = 2 + (int)((i * 7919L) % 50), d->labels[i] = i % 2;
}

static int same_plan(const ds_plan *x, const ds_plan *y) {
  if (x->n_batches != y->n_batches) return 0;
  for (int b = 0; b < x->n_batches; b++) {
    if (x->batches[b].n != y->batches[b].n || x->batches[b].max_len != y->batches[b].max_len) return 0;
    if (memcmp(x->batches[b].idx, y->batches[b].idx, (size_t)x->batches[b].n * sizeof(int))) return 0;
  }
  return 1;
}

/* Checks the invariants of any plan of d with batch size B. */
static void check_plan(const ds_encoded *d, const ds_plan *p, int B) {
  int *seen = calloc((size_t)d->n + 1, sizeof *seen), total = 0, sorted = 1, tight = 1, sizes = 1;
  for (int b = 0; b < p->n_batches; b++) {
    const ds_batch *bt = &p->batches[b];
    int mx = 0;
    sizes &= bt->n >= 1 && bt->n <= B;
    for (int r = 0; r < bt->n; r++) {
      seen[bt->idx[r]]++;
      if (d->len[bt->idx[r]] > mx) mx = d->len[bt->idx[r]];
      if (r) sorted &= d->len[bt->idx[r - 1]] <= d->len[bt->idx[r]];
    }
    tight &= bt->max_len == mx; /* padded to the batch's own longest example */
    total += bt->n;
  }
  int once = 1;
  for (int i = 0; i < d->n; i++) once &= seen[i] == 1;
  CU_ASSERT_EQUAL(total, d->n);
  CU_ASSERT(once);
  CU_ASSERT(sorted);
  CU_ASSERT(tight);
  CU_ASSERT(sizes);
  free(seen);
}

static void test_plan_shuffled(void) {
  ds_encoded d;
  make_encoded(&d, 1000);
  ds_plan p1, p2, p3, p4;
  ds_plan_make(&d, 4, 42, 0, 1, &p1);
  ds_plan_make(&d, 4, 42, 0, 1, &p2);
  ds_plan_make(&d, 4, 42, 1, 1, &p3);
  ds_plan_make(&d, 4, 43, 0, 1, &p4);
  check_plan(&d, &p1, 4);
  check_plan(&d, &p3, 4);
  CU_ASSERT_EQUAL(p1.n_batches, 250); /* chunks of 400, 400, 200 cut into full batches of 4 */
  CU_ASSERT(same_plan(&p1, &p2));     /* same seed and epoch: the same batches in the same order */
  CU_ASSERT(!same_plan(&p1, &p3));    /* next epoch: different */
  CU_ASSERT(!same_plan(&p1, &p4));    /* other seed: different */
  /* the batch order is shuffled: the first 10 batches' lengths are not monotonic */
  int ups = 0, downs = 0;
  for (int b = 1; b < 10; b++) {
    ups += p1.batches[b].max_len > p1.batches[b - 1].max_len;
    downs += p1.batches[b].max_len < p1.batches[b - 1].max_len;
  }
  CU_ASSERT(ups > 0 && downs > 0);
  /* bucketing pays: 50 lengths over 400 examples per chunk -> batches of 4 are nearly uniform */
  long real = 0, padded = 0;
  for (int b = 0; b < p1.n_batches; b++) {
    padded += (long)p1.batches[b].n * p1.batches[b].max_len;
    for (int r = 0; r < p1.batches[b].n; r++) real += d.len[p1.batches[b].idx[r]];
  }
  CU_ASSERT(padded - real < real / 20);
  ds_plan_free(&p1);
  ds_plan_free(&p2);
  ds_plan_free(&p3);
  ds_plan_free(&p4);

  ds_plan_make(&d, 7, 1, 0, 1, &p1); /* 1000 = 700 + 300: one partial batch per chunk */
  check_plan(&d, &p1, 7);
  CU_ASSERT_EQUAL(p1.n_batches, 100 + 43);
  ds_plan_free(&p1);
  ds_plan_make(&d, 5000, 1, 0, 1, &p1); /* batch larger than the set: one batch */
  CU_ASSERT(p1.n_batches == 1 && p1.batches[0].n == 1000 && p1.batches[0].max_len == 51);
  ds_plan_free(&p1);
  ds_encoded_free(&d);
}

static void test_plan_eval(void) {
  ds_encoded d;
  make_encoded(&d, 103);
  ds_plan p, q;
  ds_plan_make(&d, 10, 1, 0, 0, &p);
  ds_plan_make(&d, 10, 99, 5, 0, &q);
  check_plan(&d, &p, 10);
  CU_ASSERT(same_plan(&p, &q)); /* evaluation order ignores seed and epoch */
  CU_ASSERT_EQUAL(p.n_batches, 11);
  CU_ASSERT_EQUAL(p.batches[10].n, 3);
  /* in order: all indices sorted by (length, index), batches consecutive */
  int prev_len = -1, prev_idx = -1, ordered = 1;
  for (int b = 0; b < p.n_batches; b++)
    for (int r = 0; r < p.batches[b].n; r++) {
      int i = p.batches[b].idx[r], l = d.len[i];
      ordered &= l > prev_len || (l == prev_len && i > prev_idx);
      prev_len = l, prev_idx = i;
    }
  CU_ASSERT(ordered);
  ds_plan_free(&p);
  ds_plan_free(&q);
  ds_encoded_free(&d);
  make_encoded(&d, 0);
  ds_plan_make(&d, 4, 1, 0, 1, &p);
  CU_ASSERT_EQUAL(p.n_batches, 0);
  ds_plan_free(&p);
  ds_encoded_free(&d);
}

static void test_fill_batch(void) {
  const int words[] = {3, 0, 1, 2};
  ds_raw r;
  make_raw(&r, words, 4);
  ds_encoded d;
  epee_err e;
  CU_ASSERT_EQUAL_FATAL(ds_encode(&r, tok, 16, &d, &e), 0);
  ds_raw_free(&r);
  ds_batch b = {(int[]){1, 3}, 2, 4}; /* examples 1 (2 tokens) and 3 (4 tokens): T = 4, not 16 */
  int32_t ids[8], types[8], labels[2];
  float mask[8];
  ds_fill_batch(&d, &b, ids, types, mask, labels);
  const int32_t want_ids[] = {CLS, SEP, PAD, PAD, CLS, A, A, SEP};
  const float want_mask[] = {1, 1, 0, 0, 1, 1, 1, 1};
  CU_ASSERT_EQUAL(memcmp(ids, want_ids, sizeof want_ids), 0);
  CU_ASSERT_EQUAL(memcmp(mask, want_mask, sizeof want_mask), 0);
  for (int k = 0; k < 8; k++) CU_ASSERT_EQUAL(types[k], 0);
  CU_ASSERT(labels[0] == 1 && labels[1] == 0);
  ds_fill_batch(&d, &b, ids, NULL, NULL, NULL); /* optional outputs may be NULL */
  CU_ASSERT_EQUAL(memcmp(ids, want_ids, sizeof want_ids), 0);
  ds_encoded_free(&d);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("encoding and batching", suite_init, suite_clean);
  CU_add_test(s, "encode a dataset", test_encode_dataset);
  CU_add_test(s, "encode pairs", test_encode_pairs);
  CU_add_test(s, "shuffled bucketed plan", test_plan_shuffled);
  CU_add_test(s, "evaluation plan", test_plan_eval);
  CU_add_test(s, "fill a padded batch", test_fill_batch);
}
