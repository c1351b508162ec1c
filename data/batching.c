/* Length-bucketed batches (see ds_plan_make in dataset.h) and padding. */
#include <string.h>

#include "data/dataset.h"

/* splitmix64 (Steele, Lea, Flood 2014): tiny, good enough to shuffle, and the same on every platform. */
static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Fisher-Yates; the modulo bias (n / 2^64) is negligible. */
static void shuffle_ints(int *a, int n, uint64_t *rng) {
  for (int i = n - 1; i > 0; i--) {
    int j = (int)(splitmix64(rng) % (uint64_t)(i + 1));
    int tmp = a[i];
    a[i] = a[j];
    a[j] = tmp;
  }
}

typedef struct {
  int len, rank, idx; /* rank breaks length ties: position after the shuffle, or the index itself */
} by_len;

static int cmp_by_len(const void *a, const void *b) {
  const by_len *x = a, *y = b;
  if (x->len != y->len) return x->len < y->len ? -1 : 1;
  return (x->rank > y->rank) - (x->rank < y->rank);
}

void ds_plan_make(const ds_encoded *d, int batch_size, uint64_t seed, int epoch, int shuffle, ds_plan *out) {
  EPEE_CHECK(batch_size >= 1, "batch_size must be >= 1");
  int n = d->n;
  memset(out, 0, sizeof *out);
  out->order = epee_malloc((size_t)(n ? n : 1) * sizeof *out->order);
  for (int i = 0; i < n; i++) out->order[i] = i;
  uint64_t rng = seed ^ (0xD1B54A32D192ED03ull * ((uint64_t)epoch + 1)); /* distinct stream per epoch */
  splitmix64(&rng);
  if (shuffle) shuffle_ints(out->order, n, &rng);
  /* chunks of 100 batches (the whole set when not shuffling) are sorted by length, then cut */
  int chunk = shuffle && batch_size <= n / 100 ? 100 * batch_size : (n ? n : 1);
  by_len *tmp = epee_malloc((size_t)chunk * sizeof *tmp);
  int cap = n / batch_size + n / chunk + 1;
  out->batches = epee_malloc((size_t)cap * sizeof *out->batches);
  for (int c0 = 0; c0 < n; c0 += chunk) {
    int m = n - c0 < chunk ? n - c0 : chunk;
    for (int k = 0; k < m; k++) {
      int i = out->order[c0 + k];
      tmp[k] = (by_len){d->len[i], shuffle ? c0 + k : i, i};
    }
    qsort(tmp, (size_t)m, sizeof *tmp, cmp_by_len);
    for (int k = 0; k < m; k++) out->order[c0 + k] = tmp[k].idx;
    for (int b0 = 0; b0 < m; b0 += batch_size) {
      ds_batch *b = &out->batches[out->n_batches++];
      b->idx = out->order + c0 + b0;
      b->n = m - b0 < batch_size ? m - b0 : batch_size;
      b->max_len = tmp[b0 + b->n - 1].len; /* sorted: the last row is the longest */
    }
  }
  free(tmp);
  if (shuffle) { /* shuffle the batch order: each batch stays a contiguous run of order[] */
    for (int i = out->n_batches - 1; i > 0; i--) {
      int j = (int)(splitmix64(&rng) % (uint64_t)(i + 1));
      ds_batch t = out->batches[i];
      out->batches[i] = out->batches[j];
      out->batches[j] = t;
    }
  }
}

void ds_plan_free(ds_plan *p) {
  free(p->batches);
  free(p->order);
  memset(p, 0, sizeof *p);
}

void ds_fill_batch(const ds_encoded *d, const ds_batch *b, int32_t *ids, int32_t *type_ids, float *mask,
                   int32_t *labels) {
  int T = b->max_len;
  for (int r = 0; r < b->n; r++) {
    int i = b->idx[r], len = d->len[i];
    EPEE_CHECK(len <= T, "batch max_len smaller than one of its examples (batch not from ds_plan_make?)");
    const int32_t *src = d->ids ? d->ids + d->offset[i] : NULL, *src_t = d->ids ? d->type_ids + d->offset[i] : NULL;
    for (int t = 0; t < T; t++) {
      int real = t < len;
      ids[(size_t)r * T + t] = real && src ? src[t] : d->pad_id;
      if (type_ids) type_ids[(size_t)r * T + t] = real && src_t ? src_t[t] : 0;
      if (mask) mask[(size_t)r * T + t] = real ? 1.0f : 0.0f;
    }
    if (labels) labels[r] = d->labels[i];
  }
}
