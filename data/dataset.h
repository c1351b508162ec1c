/* Text classification datasets: reading (TSV / JSON Lines), encoding with a tokenizer, and length-bucketed
 * batching.
 *
 * File formats (UTF-8; "\n" or "\r\n" line ends; blank lines are skipped; line numbers in errors count
 * every physical line from 1):
 *   - TSV (any file name not ending in .jsonl/.json/.ndjson): the first line names the columns, tab
 *     separated; every other line has exactly as many tab-separated fields. No quoting: a field cannot
 *     contain a tab or a newline (GLUE style).
 *   - JSON Lines (.jsonl, .json, .ndjson): one JSON object per line, read strictly (RFC 8259, a key given
 *     twice refused; errors "file:line:col: ..."). Text values must be strings; a label or id may also be a
 *     number (as its shortest text: {"label": 1} has label "1", 2.5e3 is "2500") or true/false; null = key
 *     absent. Other keys may hold anything.
 * Labels: either a known list (from the config; index = position in the list) or, without one, discovered
 * from the file: the sorted (strcmp) unique values. Every error is ONE line "file:line: what". */
#ifndef EPEE_DATA_DATASET_H
#define EPEE_DATA_DATASET_H

#include <stdint.h>

#include "core/error.h"
#include "data/images.h"
#include "data/tokenizer.h"

/* What a path holds, by its kind and name: a directory is an image folder (ImageFolder); otherwise by extension:
 * .npz, .png, .jsonl/.json/.ndjson, and anything else TSV. The readers and both CLIs decide by this alone. */
typedef enum { DS_TSV, DS_JSONL, DS_NPZ, DS_IMAGE_FOLDER, DS_PNG } ds_format;
ds_format ds_format_of(const char *path);

typedef struct {
  char **texts;       /* [n] */
  char **texts_b;     /* [n] second text of a pair task, NULL when there is no text_b column */
  int *labels;        /* [n] index into label_names; -1 when the file has no labels */
  int n;              /* examples */
  char **label_names; /* [n_labels] */
  int n_labels;
  int *lines;         /* [n] 1-based line of each example in its file */
  char **ids;         /* [n] each example's id_col value (a JSON number as its text), NULL without an id_col */
} ds_raw;

typedef struct {
  const char *text_col;    /* required */
  const char *text_b_col;  /* NULL for single-text tasks */
  const char *label_col;   /* NULL: the file is not expected to have labels */
  int allow_missing_label; /* 1: a file without label_col (TSV header / first JSON record) is read with labels -1 */
  const char *id_col;      /* NULL: none; else a column every example must have (predictions carry it) */
} ds_columns;

/* Reads path into out (which the caller frees with ds_raw_free, also after an error). known_labels[n_known]
 * gives the label set; with n_known == 0 it is discovered from this file (use that for train, then pass
 * train's label_names for dev/test). Returns 0, or -1 with e = "file:line: ...". */
int ds_read(const char *path, const ds_columns *cols, char *const *known_labels, int n_known, ds_raw *out,
            epee_err *e);
void ds_raw_free(ds_raw *d);

typedef struct {
  int32_t *ids, *type_ids; /* all examples back to back; example i is [offset[i], offset[i] + len[i]) */
  int64_t *offset;         /* [n] */
  int *len;                /* [n] tokens incl. the specials */
  int *labels;             /* [n] copied from ds_raw (-1 = none) */
  int n, n_truncated;      /* examples; how many were cut to fit max_len */
  int max_len;             /* longest encoded example (<= the max_len asked for) */
  int pad_id;              /* the tokenizer's padding id, used by ds_fill_batch */
  /* An image set instead (ids, type_ids, offset NULL): every example is one image of `images`, as len[i] =
   * max_len tokens (patches + [CLS]) that are all real; img_fill_batch makes its pixels with `norm`. */
  img_set *images;
  img_norm norm;
} ds_encoded;

/* Tokenizes every example of raw into at most max_len ids (tok_encode: specials, truncation). Returns 0, or -1
 * with e set (max_len below tok_min_len). Free out with ds_encoded_free. */
int ds_encode(const ds_raw *raw, const tokenizer *t, int max_len, ds_encoded *out, epee_err *e);
void ds_encoded_free(ds_encoded *d);

/* An image set as examples of `tokens` positions each; takes *imgs over (emptied). */
void ds_from_images(img_set *imgs, int tokens, const img_norm *norm, ds_encoded *out);

typedef struct {
  int *idx;    /* [n] indices into the encoded set, shortest first */
  int n;       /* rows (batch_size, or fewer for a chunk's last batch) */
  int max_len; /* longest example of this batch: the T to pad to */
} ds_batch;

typedef struct {
  ds_batch *batches; /* [n_batches] */
  int n_batches;
  int *order; /* [n] storage behind the batches' idx */
} ds_plan;

/* Cuts the n examples of d into batches; every example appears in exactly one batch.
 * shuffle = 1 (training): shuffle all indices with splitmix64 seeded by (seed, epoch); in chunks of
 *   100 * batch_size sort by length; cut each chunk into batches; shuffle the batch order. Same
 *   (seed, epoch) -> same plan.
 * shuffle = 0 (evaluation): sort all by length (ties by index) and cut in order; seed/epoch unused. Batches
 *   carry the original indices, so results can be put back in input order. */
void ds_plan_make(const ds_encoded *d, int batch_size, uint64_t seed, int epoch, int shuffle, ds_plan *out);
void ds_plan_free(ds_plan *p);

/* Fills row-major [b->n, b->max_len] arrays for batch b: ids (padding = d->pad_id; 0 for images), type_ids (0 on
 * padding), mask (1 real token, 0 padding) and labels[b->n]. type_ids, mask and labels may be NULL. Pixels of an
 * image set: img_fill_batch(d->images, b->idx, ...). */
void ds_fill_batch(const ds_encoded *d, const ds_batch *b, int32_t *ids, int32_t *type_ids, float *mask,
                   int32_t *labels);

#endif
