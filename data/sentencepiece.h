/* ALBERT's tokenizer as the tok_kind "sentencepiece": HuggingFace's (slow, Python) AlbertTokenizer with
 * remove_space=True, keep_accents=False and do_lower_case = tokenizer.lowercase, over Debian's libsentencepiece
 * (through data/spm_shim.h). One asset, "spiece.model": a serialized SentencePiece ModelProto.
 *   1. preprocess_text: split on Python's whitespace (str.split()) and join with single spaces; `` and '' -> ";
 *      NFKD, then drop every code point of nonzero canonical combining class; Python str.lower() if lowercase
 *      (full case mapping, final sigma). Unicode data: GNU libunistring 1.0, Unicode 14.0.0 like Debian 12's
 *      Python 3.11 and equal to its unicodedata on every code point, but for the final sigma's Cased and
 *      Case_Ignorable, taken from data/unicode_tables.c (libunistring misses U+0027).
 *   2. the model's own EncodeAsPieces (its normalizer, e.g. nmt_nfkc, then unigram segmentation);
 *   3. AlbertTokenizer._tokenize's rule: a piece of two or more characters ending in a digit then ',' is
 *      re-encoded without its ',' (and without U+2581) and followed by the piece ","; when the piece did not
 *      start with U+2581, the re-encoding loses the U+2581 that the dummy prefix put in front of it;
 *   4. PieceToId for every piece (the unknown id for a non-piece).
 * Input is UTF-8; every byte that is not part of a valid UTF-8 sequence counts as U+FFFD (data/utf8.h), the
 * same as Python's bytes.decode(errors="surrogateescape") with each escape then read as U+FFFD.
 * Difference from HF that we accept: special tokens written in the input text (e.g. "[SEP]") are plain text.
 * Specials: cls = "[CLS]", sep = "[SEP]", pad = "<pad>" (albert-base-v2's layout: <pad> 0, <unk> 1, [CLS] 2,
 * [SEP] 3, [MASK] 4); a model without one of them is refused. */
#ifndef EPEE_DATA_SENTENCEPIECE_H
#define EPEE_DATA_SENTENCEPIECE_H

#include <stddef.h>

#include "data/tokenizer.h"

extern const tok_kind tok_sentencepiece;

/* Step 1 alone: text preprocessed as above, as a malloc'ed NUL-terminated UTF-8 string of *len bytes. For tests
 * and experiments/spm_dump.c, which check it against Python and against scripts/fetch_data.sh. */
char *albert_preprocess(const char *text, int lowercase, size_t *len);

#endif
