#include "data/utf8.h"

#include <string.h>

#include "core/error.h"

int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned char c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  int len;
  uint32_t v, min;
  if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1Fu, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0Fu, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07u, min = 0x10000;
  else goto invalid; /* continuation byte, C0/C1 (always overlong) or F5..FF */
  if ((size_t)len > n) goto invalid;
  for (int i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) goto invalid;
    v = (v << 6) | (s[i] & 0x3Fu);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) goto invalid;
  *cp = v;
  return len;
invalid:
  *cp = UTF8_REPLACEMENT;
  return 1;
}

int utf8_encode(uint32_t cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

long utf8_first_invalid(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    if (u[i] < 0x80) { /* ASCII fast path */
      i++;
      continue;
    }
    uint32_t cp;
    int k = utf8_decode(u + i, n - i, &cp);
    /* a genuine U+FFFD in the text is encoded as 3 bytes; a decoding failure consumes 1 */
    if (cp == UTF8_REPLACEMENT && k == 1) return (long)i;
    i += (size_t)k;
  }
  return -1;
}

char *utf8_repair(const char *s) {
  size_t n = strlen(s), k = 0;
  char *out = epee_malloc(3 * n + 1); /* a bad byte becomes 3 */
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    int len = utf8_decode((const unsigned char *)s + i, n - i, &cp);
    k += (size_t)utf8_encode(cp, out + k);
    i += (size_t)len;
  }
  out[k] = '\0';
  return out;
}

size_t utf8_bom_len(const char *s, size_t n) { return n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3) ? 3 : 0; }
