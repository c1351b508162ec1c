/* JSON through jansson, the one JSON library: strict reading with errors that name the place, and writing with
 * one number format. Header-only, like core/error.h, so that data/ can use it too. */
#ifndef EPEE_JSON_H
#define EPEE_JSON_H

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"

/* Strict reading: RFC 8259, and a key given twice is refused (JSON leaves it undefined: Python keeps the last,
 * others the first). \u0000 is refused too (jansson's default): every string read is a C string. */
#define EPEE_JSON_STRICT JSON_REJECT_DUPLICATES

/* s[0..n) as one JSON object or array; NULL with e = "where:LINE:COL: what is wrong", LINE counted from `line`,
 * the line of where that s starts on (1 for a whole file). */
static inline json_t *epee_json_parse(const char *s, size_t n, const char *where, int line, epee_err *e) {
  json_error_t err;
  json_t *j = json_loadb(s, n, EPEE_JSON_STRICT, &err);
  if (!j) epee_errf(e, "%s:%d:%d: %s", where, line + err.line - 1, err.column, err.text);
  return j;
}

/* x rounded to `decimals` places */
static inline double json_round(double x, int decimals) {
  double s = pow(10, decimals);
  return round(x * s) / s;
}

/* x rounded to `decimals` places (files stay readable: 0.998734, not float noise); null when x is not finite
 * (JSON has no NaN). */
static inline json_t *json_num(double x, int decimals) {
  if (!isfinite(x)) return json_null();
  double r = json_round(x, decimals);
  return json_real(isfinite(r) ? r : x);
}

static inline json_t *json_nums(const double *x, int n, int decimals) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(a, json_num(x[i], decimals));
  return a;
}

/* x as the double of its shortest decimal that reads back as x (1e-12, 0.1; not the float's double expansion
 * 0.100000001); null when x is not finite. */
static inline json_t *json_float(float x) {
  if (!isfinite(x)) return json_null();
  char buf[32];
  for (int digits = 6; digits <= 9; digits++) {
    snprintf(buf, sizeof buf, "%.*g", digits, (double)x);
    if ((float)strtod(buf, NULL) == x) break;
  }
  return json_real(strtod(buf, NULL));
}

static inline json_t *json_floats(const float *v, int n) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(a, json_float(v[i]));
  return a;
}

/* j's text, compact on one line (indent 0) or indented for files people read; j is released. Reals get 9
 * significant digits: every json_float prints as its shortest decimal, every json_num as rounded. */
static inline char *json_text(json_t *j, int indent) {
  char *s = json_dumps(j, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9) | (indent ? JSON_INDENT(indent) : JSON_COMPACT));
  json_decref(j);
  if (!s) epee_fatal("jansson could not write a JSON text (out of memory)");
  return s;
}

/* j as one line of JSON Lines on f; j is released. */
static inline void json_put_line(FILE *f, json_t *j) {
  char *s = json_text(j, 0);
  fprintf(f, "%s\n", s);
  free(s);
}

#endif
