/* The one interface every tokenizer kind implements (WordPiece for BERT, SentencePiece for ALBERT,
 * byte-level BPE for GPT-2), so that datasets, the model file, the engine and both CLIs never name a kind.
 *
 * A kind is a row of the table in data/tokenizer.c: its name (the model file's tokenizer_config "type"),
 * the files it is made of (its "assets", stored byte for byte as tokenizer/<asset name> in model files, named
 * as HuggingFace names them), and four functions. A kind only turns one text into ids; tok_encode adds the
 * special tokens and truncates, the same way for every kind:
 *   with a [CLS] id (BERT, ALBERT):  [CLS] a [SEP]            or  [CLS] a [SEP] b [SEP]   (type ids 0 / 1)
 *   without (GPT-2):                 a                        or  a [SEP] b                (type ids all 0)
 * where GPT-2's [SEP] is <|endoftext|> (alone, it is also what an empty GPT-2 input becomes, since every row needs
 * a real token). Pairs are cut "longest_first" (HF): the longer side loses its last
 * token, one at a time, b on ties.
 * A tokenizer is immutable after loading, so threads may share one. */
#ifndef EPEE_DATA_TOKENIZER_H
#define EPEE_DATA_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define TOK_MAX_ASSETS 2

typedef struct {
  const char *name;    /* e.g. "vocab.txt" */
  unsigned char *data; /* the file's bytes (need not be NUL-terminated) */
  size_t len;
} tok_asset;

/* The special ids a kind's vocabulary provides. cls -1: no leading token (GPT-2). pad: the padding id, which the
 * attention mask hides, so its embedding never reaches a real token. */
typedef struct {
  int cls, sep, pad;
} tok_specials;

typedef struct {
  const char *name;                          /* "wordpiece", "sentencepiece", "bpe" */
  int n_assets;                              /* 1 or 2 */
  const char *asset_names[TOK_MAX_ASSETS];   /* in the order load receives them */
  const char *asset_help;                    /* for messages: what the files are, e.g. "vocab.txt" */
  /* Builds the kind's state from the assets' bytes; lowercase is tokenizer.lowercase (a kind that cannot honour
   * it refuses). where[i] names asset i in messages (a path, or "model.h5: dataset 'tokenizer/vocab.txt'").
   * NULL with e set to ONE line starting with where[i] ("WHERE: what" or "WHERE:LINE: what"). */
  void *(*load)(const tok_asset *assets, const char *const *where, int lowercase, tok_specials *sp, int *vocab_size,
                epee_err *e);
  void (*free)(void *impl);
  /* The ids of text without specials, into *ids (growable: *ids may be NULL with *cap 0; realloc'ed as
   * needed, the caller frees it). Sets *n and returns it. */
  int (*tokenize)(const void *impl, const char *text, int32_t **ids, int *n, int *cap);
  /* The text of one id ("" for none), for messages and tests; NULL if out of range. */
  const char *(*piece)(const void *impl, int id);
  /* HF's tokenizer class (tokenizer_config.json "tokenizer_class") and its do_lower_case default */
  const char *hf_class;
  int hf_lowercase;
} tok_kind;

typedef struct tokenizer {
  const tok_kind *kind;
  void *impl;
  tok_specials sp;
  int vocab_size, lowercase;
  tok_asset assets[TOK_MAX_ASSETS]; /* owned copies, written into model files */
} tokenizer;

/* A growable id list, which the kinds' tokenize functions fill (v may start as the caller's buffer). */
typedef struct {
  int32_t *v;
  int n, cap;
} tok_ids;
void tok_ids_push(tok_ids *b, int32_t id);

/* The kind called name, or NULL. */
const tok_kind *tok_find_kind(const char *name);

/* From bytes (copied; they may be freed after the call); where[i] names asset i in messages. Errors: NULL, one
 * line in e. */
tokenizer *tok_load(const tok_kind *k, const tok_asset *assets, const char *const *where, int lowercase, epee_err *e);
/* From files (paths[i] holds asset i). Errors: NULL, "PATH: what" in e. */
tokenizer *tok_load_files(const tok_kind *k, const char *const *paths, int lowercase, epee_err *e);
void tok_free(tokenizer *t);

/* The smallest max_len tok_encode accepts: room for the specials (and at least one id). */
int tok_min_len(const tokenizer *t, int pair);
/* Encodes text (and text_b, or NULL) into at most max_len ids (>= tok_min_len), with specials, as described
 * above. ids[max_len], type_ids[max_len]. Returns the count; *truncated (may be NULL) = 1 if anything was cut. */
int tok_encode(const tokenizer *t, const char *text, const char *text_b, int max_len, int32_t *ids, int32_t *type_ids,
               int *truncated);

#endif
