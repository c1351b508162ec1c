#include "data/json_flat.h"

#include <string.h>

#include "data/utf8.h"

typedef struct {
  const char *s;
  size_t n, i;
  size_t *err_col;
  epee_err *e;
} parser;

static int fail(parser *p, const char *what) {
  *p->err_col = p->i + 1;
  return epee_errf(p->e, "%s", what);
}

static void skip_ws(parser *p) {
  while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\r' || p->s[p->i] == '\n'))
    p->i++;
}

static int hex4(parser *p, unsigned *v) {
  if (p->n - p->i < 4) return fail(p, "\\u needs 4 hex digits");
  *v = 0;
  for (int k = 0; k < 4; k++) {
    char c = p->s[p->i + k];
    unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                 : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                 : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                        : 16u;
    if (d == 16) return fail(p, "\\u needs 4 hex digits");
    *v = *v * 16 + d;
  }
  p->i += 4;
  return 0;
}

/* A string starting at the opening quote; *out is malloc'ed. Unescaped output is never longer than the
 * input (\uXXXX: 6 bytes -> at most 3; a surrogate pair: 12 -> 4). */
static int parse_string(parser *p, char **out) {
  p->i++; /* opening quote */
  char *o = epee_malloc(p->n - p->i + 1);
  size_t k = 0;
  for (;;) {
    if (p->i >= p->n) {
      free(o);
      return fail(p, "unterminated string");
    }
    unsigned char c = (unsigned char)p->s[p->i];
    if (c == '"') break;
    if (c < 0x20) {
      free(o);
      return fail(p, "control character in a string (escape it)");
    }
    if (c != '\\') {
      o[k++] = (char)c;
      p->i++;
      continue;
    }
    if (++p->i >= p->n) {
      free(o);
      return fail(p, "unterminated string");
    }
    char esc = p->s[p->i++];
    const char *simple = strchr("\"\\/bfnrt", esc);
    if (simple && esc) {
      o[k++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
      continue;
    }
    if (esc != 'u') {
      p->i -= 2; /* point at the backslash */
      free(o);
      return fail(p, "invalid escape");
    }
    unsigned hi, lo;
    if (hex4(p, &hi)) {
      free(o);
      return -1;
    }
    uint32_t cp = hi;
    if (hi >= 0xDC00 && hi <= 0xDFFF) {
      free(o);
      return fail(p, "lone low surrogate in \\u escape");
    }
    if (hi >= 0xD800 && hi <= 0xDBFF) {
      if (p->n - p->i < 2 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
        free(o);
        return fail(p, "high surrogate \\u escape not followed by a low one");
      }
      p->i += 2;
      if (hex4(p, &lo)) {
        free(o);
        return -1;
      }
      if (lo < 0xDC00 || lo > 0xDFFF) {
        free(o);
        return fail(p, "high surrogate \\u escape not followed by a low one");
      }
      cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp == 0) {
      free(o);
      return fail(p, "\\u0000 is not supported in text");
    }
    k += (size_t)utf8_encode(cp, o + k);
  }
  p->i++; /* closing quote */
  o[k] = '\0';
  *out = o;
  return 0;
}

static char *dup_n(const char *s, size_t n) {
  char *d = epee_malloc(n + 1);
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

/* End of the run of decimal digits starting at s[i]. */
static size_t digits_end(const char *s, size_t i, size_t n) {
  while (i < n && s[i] >= '0' && s[i] <= '9') i++;
  return i;
}

/* A number, true, false or null: copied as text (*out = NULL for null). */
static int parse_literal(parser *p, char **out) {
  const char *s = p->s;
  size_t a = p->i, n = p->n;
  for (const char *w = "true\0false\0null\0"; *w; w += strlen(w) + 1) {
    size_t l = strlen(w);
    if (n - a >= l && memcmp(s + a, w, l) == 0) {
      p->i += l;
      *out = strcmp(w, "null") ? dup_n(w, l) : NULL;
      return 0;
    }
  }
  /* JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
  size_t i = a + (a < n && s[a] == '-'), d;
  if (i < n && s[i] == '0') i++;
  else if ((d = digits_end(s, i, n)) > i) i = d;
  else return fail(p, "invalid value (expected a string, number, true, false or null)");
  if (i < n && s[i] == '.') {
    if ((d = digits_end(s, i + 1, n)) == i + 1) return fail(p, "invalid number");
    i = d;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i += 1 + (i + 1 < n && (s[i + 1] == '+' || s[i + 1] == '-'));
    if ((d = digits_end(s, i, n)) == i) return fail(p, "invalid number");
    i = d;
  }
  *out = dup_n(s + a, i - a);
  p->i = i;
  return 0;
}

void json_fields_free(json_field *fields, int n) {
  for (int k = 0; k < n; k++) {
    free(fields[k].key);
    free(fields[k].value);
  }
  free(fields);
}

int json_parse_flat(const char *s, size_t n, json_field **fields, size_t *err_col, epee_err *e) {
  parser p = {s, n, 0, err_col, e};
  json_field *f = NULL;
  int nf = 0, cap = 0;
  skip_ws(&p);
  if (p.i >= n || s[p.i] != '{') {
    fail(&p, "expected a JSON object '{'");
    goto error;
  }
  p.i++;
  skip_ws(&p);
  if (p.i < n && s[p.i] == '}') {
    p.i++;
  } else {
    for (;;) {
      char *key = NULL, *value = NULL;
      skip_ws(&p);
      if (p.i >= n || s[p.i] != '"') {
        fail(&p, "expected a \"key\"");
        goto error;
      }
      if (parse_string(&p, &key)) goto error;
      skip_ws(&p);
      if (p.i >= n || s[p.i] != ':') {
        free(key);
        fail(&p, "expected ':' after the key");
        goto error;
      }
      p.i++;
      skip_ws(&p);
      int rc;
      size_t value_at = p.i;
      if (p.i < n && (s[p.i] == '{' || s[p.i] == '[')) {
        *err_col = p.i + 1;
        rc = epee_errf(e, "value of \"%s\" is an object or array; only flat objects are supported", key);
      } else {
        rc = p.i < n && s[p.i] == '"' ? parse_string(&p, &value) : parse_literal(&p, &value);
      }
      if (rc) {
        free(key);
        goto error;
      }
      if (value) {
        if (nf == cap) f = epee_realloc(f, (size_t)(cap = cap ? 2 * cap : 8) * sizeof *f);
        f[nf].key = key;
        f[nf].is_string = s[value_at] == '"';
        f[nf++].value = value;
      } else {
        free(key);
      }
      skip_ws(&p);
      if (p.i < n && s[p.i] == ',') {
        p.i++;
        continue;
      }
      if (p.i < n && s[p.i] == '}') {
        p.i++;
        break;
      }
      fail(&p, "expected ',' or '}'");
      goto error;
    }
  }
  skip_ws(&p);
  if (p.i != n) {
    fail(&p, "unexpected text after the object");
    goto error;
  }
  *fields = f;
  return nf;
error:
  json_fields_free(f, nf);
  return -1;
}
