/* Dataset readers: TSV and JSON Lines -> ds_raw (formats and label rules in dataset.h). */
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "core/json.h"
#include "data/dataset.h"
#include "data/readfile.h"
#include "data/utf8.h"

/* ---- lines --------------------------------------------------------------------------------------- */

typedef struct {
  char *buf; /* the whole file, NUL-terminated; lines are cut in place */
  size_t len, pos;
  int line; /* number of the line last returned */
} lines;

/* Next non-blank line, NUL-terminated without its "\n" / "\r\n", length in *n; NULL at the end. */
static char *next_line(lines *it, size_t *n) {
  while (it->pos < it->len) {
    char *s = it->buf + it->pos;
    char *nl = memchr(s, '\n', it->len - it->pos);
    size_t l = nl ? (size_t)(nl - s) : it->len - it->pos;
    it->pos += l + 1;
    it->line++;
    if (nl) *nl = '\0';
    if (l > 0 && s[l - 1] == '\r') s[--l] = '\0';
    if (l > 0) {
      *n = l;
      return s;
    }
  }
  return NULL;
}

static int check_line(const char *path, int line, const char *s, size_t n, epee_err *e) {
  if (strlen(s) != n) return epee_errf(e, "%s:%d: NUL byte at column %zu", path, line, strlen(s) + 1);
  long bad = utf8_first_invalid(s, n);
  if (bad >= 0) return epee_errf(e, "%s:%d: invalid UTF-8 at byte %ld of the line", path, line, bad + 1);
  return 0;
}

/* ---- rows as read, labels still text ------------------------------------------------------------- */

typedef struct {
  char *text, *text_b, *label, *id; /* text_b / label / id NULL when absent */
  int line;
} row;

typedef struct {
  row *v;
  int n, cap;
  int has_label; /* the file has the label column */
} rows;

static char *dup_or_null(const char *s) { return s ? epee_strdup(s) : NULL; }

static void rows_push(rows *r, const char *text, const char *text_b, const char *label, const char *id, int line) {
  if (r->n == r->cap) r->v = epee_realloc(r->v, (size_t)(r->cap = r->cap ? 2 * r->cap : 1024) * sizeof *r->v);
  r->v[r->n++] = (row){epee_strdup(text), dup_or_null(text_b), dup_or_null(label), dup_or_null(id), line};
}

static void rows_free(rows *r) { /* frees what was not handed over to a ds_raw */
  for (int i = 0; i < r->n; i++) {
    free(r->v[i].text);
    free(r->v[i].text_b);
    free(r->v[i].label);
    free(r->v[i].id);
  }
  free(r->v);
}

/* "a, b, c" into out (cut with "..." when long). */
static void join_names(char *const *names, int n, char *out, size_t cap) {
  size_t k = 0;
  out[0] = '\0';
  for (int i = 0; i < n && k + 4 < cap; i++) {
    int w = snprintf(out + k, cap - k, "%s%s", i ? ", " : "", names[i]);
    if (w < 0 || (size_t)w >= cap - k) {
      snprintf(out + (cap > 4 ? cap - 4 : 0), 4, "...");
      return;
    }
    k += (size_t)w;
  }
}

/* ---- TSV ----------------------------------------------------------------------------------------- */

/* Splits s at tabs in place into (*f)[0..count) (grown as needed); returns count. */
static int split_tabs(char *s, char ***f, int *cap) {
  int n = 0;
  for (;;) {
    if (n == *cap) *f = epee_realloc(*f, (size_t)(*cap = *cap ? 2 * *cap : 16) * sizeof **f);
    (*f)[n++] = s;
    char *tab = strchr(s, '\t');
    if (!tab) return n;
    *tab = '\0';
    s = tab + 1;
  }
}

/* Index of column name in the header, -1 if absent; -2 (error set) if present twice. */
static int find_column(const char *path, char **hdr, int nh, const char *name, epee_err *e) {
  int at = -1;
  for (int k = 0; k < nh; k++) {
    if (strcmp(hdr[k], name)) continue;
    if (at >= 0) return epee_errf(e, "%s:1: column '%s' appears twice in the header", path, name), -2;
    at = k;
  }
  return at;
}

static int read_tsv(const char *path, lines *it, const ds_columns *c, rows *out, epee_err *e) {
  size_t n;
  char *s = next_line(it, &n);
  if (!s) return epee_errf(e, "%s:1: empty file (expected a tab-separated header line naming the columns)", path);
  if (check_line(path, it->line, s, n, e)) return -1;
  int header_line = it->line, cap = 0, rc = -1;
  char **hdr = NULL, **f = NULL;
  int nh = split_tabs(s, &hdr, &cap);
  const char *names[4] = {c->text_col, c->text_b_col, c->label_col, c->id_col};
  int col[4] = {-1, -1, -1, -1};
  for (int k = 0; k < 4; k++) {
    if (!names[k]) continue;
    col[k] = find_column(path, hdr, nh, names[k], e);
    if (col[k] == -2) goto done;
    if (col[k] == -1 && !(k == 2 && c->allow_missing_label)) {
      char have[600];
      join_names(hdr, nh, have, sizeof have);
      epee_errf(e, "%s:%d: no column '%s' in the header (columns: %s)", path, header_line, names[k], have);
      goto done;
    }
  }
  out->has_label = col[2] >= 0;
  int fcap = 0;
  while ((s = next_line(it, &n))) {
    if (check_line(path, it->line, s, n, e)) goto done;
    int nf = split_tabs(s, &f, &fcap);
    if (nf != nh) {
      epee_errf(e, "%s:%d: %d tab-separated fields, expected %d as in the header", path, it->line, nf, nh);
      goto done;
    }
    rows_push(out, f[col[0]], col[1] >= 0 ? f[col[1]] : NULL, col[2] >= 0 ? f[col[2]] : NULL,
              col[3] >= 0 ? f[col[3]] : NULL, it->line);
  }
  if (out->n == 0) {
    epee_errf(e, "%s:%d: no examples after the header", path, it->line + 1);
    goto done;
  }
  rc = 0;
done:
  free(hdr);
  free(f);
  return rc;
}

/* ---- JSON Lines ---------------------------------------------------------------------------------- */

/* A label or id value as text (a string as is; a number as 1, 2500, -0.5: 2.5e3 and 2500.0 are the same one as
 * 2500; true, false); NULL for an object or array. buf holds the converted ones. */
static const char *scalar_text(const json_t *v, char buf[32]) {
  double x = json_number_value(v);
  if (json_is_string(v)) return json_string_value(v);
  if (json_is_integer(v)) snprintf(buf, 32, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
  else if (json_is_real(v) && x == floor(x) && fabs(x) < 1e15) snprintf(buf, 32, "%.0f", x + 0.0); /* -0 is 0 */
  else if (json_is_real(v))
    for (int prec = 1; prec <= 17; prec++) { /* the shortest text that reads back as the same number */
      snprintf(buf, 32, "%.*g", prec, x);
      if (strtod(buf, NULL) == x) break;
    }
  else if (json_is_boolean(v)) snprintf(buf, 32, "%s", json_is_true(v) ? "true" : "false");
  else return NULL;
  return buf;
}

/* The value of key (NULL: absent or null). A text must be a JSON string: 42 is not the text "42" but a wrong
 * column; a label or id may also be a number or true/false. */
static int field(const char *path, int line, const json_t *o, const char *key, int text, char buf[32],
                 const char **value, epee_err *e) {
  const json_t *v = json_object_get(o, key);
  *value = json_is_null(v) ? NULL : scalar_text(v, buf);
  if (v && !json_is_null(v) && (!*value || (text && !json_is_string(v))))
    return epee_errf(e, "%s:%d: value of \"%s\" is %s; expected a string%s", path, line, key,
                     json_is_object(v) ? "an object" : json_is_array(v) ? "an array" : *value,
                     text ? "" : ", a number or true/false");
  return 0;
}

/* One line's object into out; *first_line is the line of the first record, which decides whether the file is
 * labelled. */
static int read_record(const char *path, int line, const json_t *o, const ds_columns *c, int *first_line, rows *out,
                       epee_err *e) {
  if (!json_is_object(o)) return epee_errf(e, "%s:%d: expected one JSON object per line, found an array", path, line);
  const char *text, *text_b = NULL, *label = NULL, *id = NULL;
  char bufs[4][32];
  if (field(path, line, o, c->text_col, 1, bufs[0], &text, e) ||
      (c->text_b_col && field(path, line, o, c->text_b_col, 1, bufs[1], &text_b, e)) ||
      (c->label_col && field(path, line, o, c->label_col, 0, bufs[2], &label, e)) ||
      (c->id_col && field(path, line, o, c->id_col, 0, bufs[3], &id, e)))
    return -1;
  const char *missing = !text ? c->text_col : (c->text_b_col && !text_b) ? c->text_b_col
                        : (c->id_col && !id) ? c->id_col : NULL;
  if (!*first_line) {
    *first_line = line;
    out->has_label = label != NULL;
    if (!label && c->label_col && !c->allow_missing_label) missing = c->label_col;
  } else if (!missing && out->has_label != (label != NULL)) {
    return epee_errf(e, "%s:%d: %s key \"%s\" %s line %d", path, line, label ? "has" : "lacks", c->label_col,
                     label ? "which was absent on" : "which was present on", *first_line);
  }
  if (missing) return epee_errf(e, "%s:%d: no key \"%s\" in the object", path, line, missing);
  rows_push(out, text, text_b, label, id, line);
  return 0;
}

static int read_jsonl(const char *path, lines *it, const ds_columns *c, rows *out, epee_err *e) {
  size_t n;
  char *s;
  int first_line = 0;
  while ((s = next_line(it, &n))) {
    if (check_line(path, it->line, s, n, e)) return -1;
    json_t *o = epee_json_parse(s, n, path, it->line, e);
    int rc = o ? read_record(path, it->line, o, c, &first_line, out, e) : -1;
    json_decref(o);
    if (rc) return -1;
  }
  if (out->n == 0) return epee_errf(e, "%s:1: empty file (expected one JSON object per line)", path);
  return 0;
}

/* ---- labels -------------------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct {
  const char *name;
  int index;
} named;
static int cmp_named(const void *a, const void *b) { return strcmp(((const named *)a)->name, ((const named *)b)->name); }

/* Fills out->label_names (known list, or discovered) and maps every row's label to its index. */
static int map_labels(const char *path, rows *r, char *const *known, int n_known, ds_raw *out, epee_err *e) {
  for (int i = 0; i < r->n; i++)
    if (r->has_label && r->v[i].label[0] == '\0') return epee_errf(e, "%s:%d: empty label", path, r->v[i].line);
  if (n_known > 0) {
    out->label_names = epee_malloc((size_t)n_known * sizeof *out->label_names);
    for (int k = 0; k < n_known; k++) out->label_names[out->n_labels++] = epee_strdup(known[k]);
  } else if (r->has_label) { /* discover: sorted unique labels of this file */
    char **all = epee_malloc((size_t)r->n * sizeof *all);
    for (int i = 0; i < r->n; i++) all[i] = r->v[i].label;
    qsort(all, (size_t)r->n, sizeof *all, cmp_str);
    out->label_names = epee_malloc((size_t)r->n * sizeof *out->label_names);
    for (int i = 0; i < r->n; i++)
      if (i == 0 || strcmp(all[i], all[i - 1])) out->label_names[out->n_labels++] = epee_strdup(all[i]);
    free(all);
  }
  int nl = out->n_labels, rc = 0;
  named *by_name = epee_malloc((size_t)(nl ? nl : 1) * sizeof *by_name);
  for (int k = 0; k < nl; k++) by_name[k] = (named){out->label_names[k], k};
  qsort(by_name, (size_t)nl, sizeof *by_name, cmp_named);
  for (int k = 1; k < nl && !rc; k++)
    if (!strcmp(by_name[k].name, by_name[k - 1].name))
      rc = epee_errf(e, "%s: the label list given for it names '%s' twice", path, by_name[k].name);
  for (int i = 0; i < r->n && !rc; i++) {
    named key = {r->v[i].label, -1}, *hit = r->has_label ? bsearch(&key, by_name, (size_t)nl, sizeof key, cmp_named) : NULL;
    out->labels[i] = hit ? hit->index : -1;
    if (r->has_label && !hit) {
      char have[600];
      join_names(out->label_names, nl, have, sizeof have);
      rc = epee_errf(e, "%s:%d: unknown label '%s' (known: %s)", path, r->v[i].line, r->v[i].label, have);
    }
  }
  free(by_name);
  return rc;
}

/* ---- public -------------------------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), l = strlen(suffix);
  return n >= l && !strcmp(s + n - l, suffix);
}

ds_format ds_format_of(const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return DS_IMAGE_FOLDER;
  if (ends_with(path, ".npz")) return DS_NPZ;
  if (ends_with(path, ".png") || ends_with(path, ".PNG")) return DS_PNG;
  if (ends_with(path, ".jsonl") || ends_with(path, ".json") || ends_with(path, ".ndjson")) return DS_JSONL;
  return DS_TSV;
}

int ds_read(const char *path, const ds_columns *cols, char *const *known_labels, int n_known, ds_raw *out,
            epee_err *e) {
  EPEE_CHECK(cols && cols->text_col, "ds_columns.text_col is required");
  EPEE_CHECK(n_known >= 0 && (n_known == 0 || known_labels), "known_labels[n_known]");
  memset(out, 0, sizeof *out);
  lines it = {0};
  it.buf = data_read_file(path, &it.len, e);
  if (!it.buf) return -1;
  it.pos = utf8_bom_len(it.buf, it.len);
  rows r = {0};
  int rc = ds_format_of(path) == DS_JSONL ? read_jsonl(path, &it, cols, &r, e) : read_tsv(path, &it, cols, &r, e);
  if (rc == 0) {
    out->n = r.n;
    out->labels = epee_malloc((size_t)r.n * sizeof *out->labels);
    rc = map_labels(path, &r, known_labels, n_known, out, e);
  }
  if (rc == 0) { /* hand the texts (and ids) over */
    out->texts = epee_malloc((size_t)r.n * sizeof *out->texts);
    out->lines = epee_malloc((size_t)r.n * sizeof *out->lines);
    if (cols->text_b_col) out->texts_b = epee_malloc((size_t)r.n * sizeof *out->texts_b);
    if (cols->id_col) out->ids = epee_malloc((size_t)r.n * sizeof *out->ids);
    for (int i = 0; i < r.n; i++) {
      out->texts[i] = r.v[i].text;
      out->lines[i] = r.v[i].line;
      if (out->texts_b) out->texts_b[i] = r.v[i].text_b;
      if (out->ids) out->ids[i] = r.v[i].id;
      r.v[i].text = r.v[i].text_b = r.v[i].id = NULL;
    }
  }
  rows_free(&r);
  free(it.buf);
  if (rc) ds_raw_free(out);
  return rc;
}

void ds_raw_free(ds_raw *d) {
  for (int i = 0; d->texts && i < d->n; i++) free(d->texts[i]);
  for (int i = 0; d->texts_b && i < d->n; i++) free(d->texts_b[i]);
  for (int i = 0; d->ids && i < d->n; i++) free(d->ids[i]);
  for (int k = 0; k < d->n_labels; k++) free(d->label_names[k]);
  free(d->texts);
  free(d->texts_b);
  free(d->ids);
  free(d->lines);
  free(d->labels);
  free(d->label_names);
  memset(d, 0, sizeof *d);
}
