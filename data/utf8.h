/* UTF-8 decoding and encoding shared by the tokenizer and the dataset readers (one definition of
 * "valid UTF-8": RFC 3629, no overlong forms, no surrogates, nothing above U+10FFFF). */
#ifndef EPEE_DATA_UTF8_H
#define EPEE_DATA_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_REPLACEMENT 0xFFFDu

/* Decodes the code point starting at s[0] (n >= 1 bytes available) into *cp and returns the number of bytes
 * it used (1..4). An invalid or truncated sequence yields *cp = U+FFFD and consumes exactly ONE byte, so a
 * valid character right after a broken one is never swallowed. */
int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Writes cp (<= U+10FFFF) as 1..4 bytes to out and returns the count. */
int utf8_encode(uint32_t cp, char *out);

/* Returns -1 if s[0..n) is valid UTF-8, else the byte offset of the first invalid sequence. */
long utf8_first_invalid(const char *s, size_t n);

/* A malloc'ed copy of the C string s with every invalid sequence's byte replaced by U+FFFD (as utf8_decode
 * reads it): for text that must be UTF-8 (JSON) made from bytes that need not be (file names). */
char *utf8_repair(const char *s);

/* 3 when s[0..n) starts with a UTF-8 byte order mark (EF BB BF, as Windows editors write), else 0: text files
 * skip it, so that it never becomes part of a column name or a vocabulary piece. */
size_t utf8_bom_len(const char *s, size_t n);

#endif
