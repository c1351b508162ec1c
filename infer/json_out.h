/* Writing JSON through cJSON (the one JSON library), with numbers rounded so that files stay readable (0.998734,
 * not float noise). Header-only: epee-infer's predictions and the trainer's metrics.jsonl use it. */
#ifndef EPEE_JSON_OUT_H
#define EPEE_JSON_OUT_H

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

#include "core/error.h"

/* x rounded to `decimals` places */
static inline double json_round(double x, int decimals) {
  double s = pow(10, decimals);
  return round(x * s) / s;
}

static inline void json_add_num(cJSON *o, const char *key, double x, int decimals) {
  cJSON_AddNumberToObject(o, key, json_round(x, decimals));
}

static inline void json_add_array(cJSON *o, const char *key, const double *x, int n, int decimals) {
  cJSON *a = cJSON_AddArrayToObject(o, key);
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(json_round(x[i], decimals)));
}

/* o as one line of JSON Lines on f; o is deleted */
static inline void json_put_line(FILE *f, cJSON *o) {
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!s) epee_fatal("cJSON ran out of memory");
  fprintf(f, "%s\n", s);
  cJSON_free(s);
}

#endif
