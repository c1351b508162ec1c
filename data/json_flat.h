/* A minimal JSON reader for the one thing JSON Lines datasets need: a flat object whose values are
 * strings, numbers, true/false or null. */
#ifndef EPEE_DATA_JSON_FLAT_H
#define EPEE_DATA_JSON_FLAT_H

#include <stddef.h>

#include "core/error.h"

typedef struct {
  char *key, *value; /* UTF-8, escapes resolved; a number/true/false value is its literal text */
  int is_string;     /* value was a JSON string (not a number, true or false) */
} json_field;

/* Parses s[0..n) (valid UTF-8, no NUL) as one flat JSON object. null values are left out (= key absent).
 * Returns the number of fields with *fields malloc'ed (free with json_fields_free), or -1 with e = what is
 * wrong and *err_col = its 1-based byte column (the caller adds file:line). */
int json_parse_flat(const char *s, size_t n, json_field **fields, size_t *err_col, epee_err *e);
void json_fields_free(json_field *fields, int n);

#endif
