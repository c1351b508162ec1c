/* BERT WordPiece tokenizer, equivalent to HuggingFace's (slow, Python) BertTokenizer with do_lower_case=True,
 * tokenize_chinese_chars=True and strip_accents left at its default (as the kind "wordpiece" with
 * tokenizer.lowercase false, do_lower_case=False: step 4 is skipped, for cased vocabularies such as
 * bert-base-cased's):
 *   1. clean: drop U+0000, U+FFFD and control characters (category C* except TAB/LF/CR); whitespace
 *      (TAB/LF/CR/SPACE, category Zs) becomes ' ';
 *   2. put spaces around CJK ideographs (the ranges of BasicTokenizer._is_chinese_char);
 *   3. split on whitespace (' ', and U+2028/U+2029 which Python's str.split() also splits on);
 *   4. per word: lowercase (Python str.lower(), incl. the final-sigma rule), NFD, drop Mn marks;
 *   5. split off every punctuation character (ASCII 33-47, 58-64, 91-96, 123-126, category P*);
 *   6. greedy longest-match-first WordPiece, continuations prefixed "##"; a word longer than 100 code
 *      points, or one with no full match, becomes [UNK].
 * Unicode data comes from data/unicode_tables.c (generated from Python's unicodedata).
 * Input text is UTF-8; every byte that is not part of a valid UTF-8 sequence counts as U+FFFD and is
 * therefore removed in step 1 (Python would have refused to decode such bytes at all).
 * Differences from HF that we accept: special tokens written in the input text (e.g. "[SEP]") are plain
 * text here, not special tokens; combining marks that are not Mn are not canonically reordered.
 * A tokenizer is immutable after loading, so one may be shared by threads. */
#ifndef EPEE_DATA_WORDPIECE_H
#define EPEE_DATA_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "data/tokenizer.h"

#define WP_MAX_WORD_CHARS 100 /* longer words become [UNK] (HF max_input_chars_per_word) */

typedef struct wp_tokenizer wp_tokenizer;

/* Loads vocab.txt: one token per line, id = line number - 1 ("\n" or "\r\n" line ends). The vocab must
 * contain [UNK], [CLS] and [SEP]. Returns NULL with e set on failure. */
wp_tokenizer *wp_load_file(const char *vocab_path, epee_err *e);
/* The same from memory (len bytes, need not be NUL-terminated). */
wp_tokenizer *wp_load_buffer(const char *vocab_txt, size_t len, epee_err *e);
void wp_free(wp_tokenizer *t);

int wp_vocab_size(const wp_tokenizer *t);
/* Id of a vocab entry (exact match), -1 if absent. A duplicated entry maps to its last line, as in HF. */
int wp_token_id(const wp_tokenizer *t, const char *piece);
/* Token text of id, NULL if id is out of range. */
const char *wp_id_to_token(const wp_tokenizer *t, int id);
/* Ids of [CLS], [SEP], [PAD], [UNK] (any pointer may be NULL); -1 for a missing one. Returns 0 if all four
 * exist, -1 otherwise. */
int wp_special_ids(const wp_tokenizer *t, int *cls, int *sep, int *pad, int *unk);

/* The WordPiece ids of text, without specials, into *ids (growable: *ids may be NULL with *cap 0; it is
 * realloc'ed as needed and the caller frees it). Sets *n to the count and returns it. */
int wp_tokenize(const wp_tokenizer *t, const char *text, int32_t **ids, int *n, int *cap);

/* The kind "wordpiece" (asset vocab.txt; needs [PAD]; tokenizer.lowercase must be true). */
extern const tok_kind tok_wordpiece;

#endif
