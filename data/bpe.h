/* GPT-2's byte-level BPE tokenizer, the tokenizer kind "bpe" (data/tokenizer.h). It gives exactly the ids of
 * OpenAI's encoder.py and of npm gpt-3-encoder's Encoder.js (checked on every GO text by experiments/bpe_check.sh):
 *   1. the text, UTF-8, is decoded as node decodes a file (each maximal invalid subpart becomes U+FFFD);
 *   2. it is cut by GPT-2's regex  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      with JavaScript's classes (node's Unicode version, JS's \s);
 *   3. each piece's UTF-8 bytes start as one symbol per byte, merged pairwise by rank (merges.txt line order);
 *   4. each final symbol is looked up in vocab.json.
 * Assets: vocab.json (token -> id, the bytes of gpt-3-encoder's encoder.json) and merges.txt ("#version: 0.2",
 * then "A B" per line; its vocab.bpe). Specials: no [CLS]; [SEP] and padding are both <|endoftext|> (below).
 * The tokenizer is immutable after loading, so threads may share it. */
#ifndef EPEE_DATA_BPE_H
#define EPEE_DATA_BPE_H

#include "data/tokenizer.h"

extern const tok_kind tok_bpe;

#endif
