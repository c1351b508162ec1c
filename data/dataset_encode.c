/* ds_raw -> ds_encoded: every example tokenized once, stored back to back; or an image set as examples. */
#include <string.h>

#include "data/dataset.h"

int ds_encode(const ds_raw *raw, const tokenizer *t, int max_len, ds_encoded *out, epee_err *e) {
  memset(out, 0, sizeof *out);
  int need = tok_min_len(t, raw->texts_b != NULL);
  if (max_len < need)
    return epee_errf(e, "max_len %d is too small: the %s tokenizer's special tokens need %d", max_len, t->kind->name,
                     need);
  int n = raw->n;
  out->n = n;
  out->pad_id = t->sp.pad;
  out->offset = epee_malloc((size_t)n * sizeof *out->offset);
  out->len = epee_malloc((size_t)n * sizeof *out->len);
  out->labels = epee_malloc((size_t)n * sizeof *out->labels);
  size_t cap = (size_t)n * 32 + (size_t)max_len; /* grows below; 32 tokens/example is a first guess */
  out->ids = epee_malloc(cap * sizeof *out->ids);
  out->type_ids = epee_malloc(cap * sizeof *out->type_ids);
  int64_t used = 0;
  for (int i = 0; i < n; i++) {
    if ((size_t)used + (size_t)max_len > cap) {
      cap *= 2;
      out->ids = epee_realloc(out->ids, cap * sizeof *out->ids);
      out->type_ids = epee_realloc(out->type_ids, cap * sizeof *out->type_ids);
    }
    int truncated;
    int len = tok_encode(t, raw->texts[i], raw->texts_b ? raw->texts_b[i] : NULL, max_len, out->ids + used,
                        out->type_ids + used, &truncated);
    out->offset[i] = used;
    out->len[i] = len;
    out->labels[i] = raw->labels[i];
    out->n_truncated += truncated;
    if (len > out->max_len) out->max_len = len;
    used += len;
  }
  return 0;
}

void ds_from_images(img_set *imgs, int tokens, const img_norm *norm, ds_encoded *out) {
  memset(out, 0, sizeof *out);
  int n = imgs->n;
  out->n = n;
  out->max_len = tokens;
  out->len = epee_malloc((size_t)(n ? n : 1) * sizeof *out->len);
  out->labels = epee_malloc((size_t)(n ? n : 1) * sizeof *out->labels);
  for (int i = 0; i < n; i++) out->len[i] = tokens, out->labels[i] = imgs->labels[i];
  out->images = epee_malloc(sizeof *out->images);
  *out->images = *imgs;
  memset(imgs, 0, sizeof *imgs);
  out->norm = *norm;
}

void ds_encoded_free(ds_encoded *d) {
  if (d->images) img_set_free(d->images);
  free(d->images);
  free(d->ids);
  free(d->type_ids);
  free(d->offset);
  free(d->len);
  free(d->labels);
  memset(d, 0, sizeof *d);
}
