/* PNG decoding (libspng) and the ImageFolder / file-list readers -> img_set (rules in images.h). */
#include <dirent.h>
#include <errno.h>
#include <spng.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/images.h"
#include "data/readfile.h"
#include "data/utf8.h"

int img_decode_png(const uint8_t *buf, size_t len, const char *name, uint8_t **px, int *h, int *w, int *c,
                   epee_err *e) {
  *px = NULL;
  *h = *w = *c = 0;
  spng_ctx *ctx = spng_ctx_new(0);
  if (!ctx) epee_fatal("out of memory creating a PNG decoder");
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  spng_set_crc_action(ctx, SPNG_CRC_USE, SPNG_CRC_USE); /* let the fuzzer past the checksums */
#endif
  spng_set_image_limits(ctx, IMG_MAX_SIDE, IMG_MAX_SIDE);
  spng_set_chunk_limits(ctx, 1 << 24, 1 << 24); /* ancillary chunks (text, ICC) are kept in memory */
  struct spng_ihdr ih;
  size_t n = 0;
  uint8_t *out = NULL;
  int r = spng_set_png_buffer(ctx, buf, len), rc = -1;
  if (!r) r = spng_get_ihdr(ctx, &ih);
  if (r == SPNG_EUSER_WIDTH || r == SPNG_EUSER_HEIGHT) {
    epee_errf(e, "%s: PNG larger than %d x %d pixels", name, IMG_MAX_SIDE, IMG_MAX_SIDE);
    goto done;
  }
  if (r) {
    epee_errf(e, "%s: not a readable PNG: %s", name, spng_strerror(r));
    goto done;
  }
  /* libspng's G8 takes grey of up to 8 bits; 16-bit grey and grey + alpha go through RGB8 (R = G = B = grey) */
  int grey = ih.color_type == SPNG_COLOR_TYPE_GRAYSCALE || ih.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA;
  int fmt = ih.color_type == SPNG_COLOR_TYPE_GRAYSCALE && ih.bit_depth <= 8 ? SPNG_FMT_G8 : SPNG_FMT_RGB8;
  if ((r = spng_decoded_image_size(ctx, fmt, &n))) {
    epee_errf(e, "%s: not a readable PNG: %s", name, spng_strerror(r));
    goto done;
  }
  if (n > IMG_MAX_DECODED) {
    epee_errf(e, "%s: %u x %u PNG decodes to %zu bytes, above the limit of %llu", name, ih.width, ih.height, n,
              IMG_MAX_DECODED);
    goto done;
  }
  out = epee_malloc(n);
  /* then the chunks after the image data up to IEND, so that a file cut short or damaged there is refused too */
  if ((r = spng_decode_image(ctx, out, n, fmt, 0)) || (r = spng_decode_chunks(ctx))) {
    epee_errf(e, "%s: corrupt PNG: %s", name, spng_strerror(r));
    goto done;
  }
  size_t pixels = (size_t)ih.width * ih.height;
  if (grey && fmt == SPNG_FMT_RGB8) {
    for (size_t i = 0; i < pixels; i++) out[i] = out[3 * i];
    out = epee_realloc(out, pixels);
  }
  *px = out;
  out = NULL;
  *h = (int)ih.height;
  *w = (int)ih.width;
  *c = grey ? 1 : 3;
  rc = 0;
done:
  free(out);
  spng_ctx_free(ctx);
  return rc;
}

/* ---- files and folders ------------------------------------------------------------------------------ */

typedef struct {
  char **v;
  int n, cap;
} strv;

static void strv_push(strv *s, char *owned) {
  if (s->n == s->cap) s->v = epee_realloc(s->v, (size_t)(s->cap = s->cap ? 2 * s->cap : 16) * sizeof *s->v);
  s->v[s->n++] = owned;
}

static void strv_free(strv *s) {
  for (int i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
  memset(s, 0, sizeof *s);
}

static char *join_path(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  int slash = a > 0 && dir[a - 1] != '/';
  char *p = epee_malloc(a + slash + b + 1);
  memcpy(p, dir, a);
  if (slash) p[a] = '/';
  memcpy(p + a + slash, name, b + 1);
  return p;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The visible entries of dir (hidden ones, with a leading '.', are skipped), sorted by strcmp. */
static int list_dir(const char *dir, strv *out, epee_err *e) {
  DIR *d = opendir(dir);
  if (!d) return epee_errf(e, "%s: cannot open the folder: %s", dir, strerror(errno));
  for (struct dirent *de; (de = readdir(d));)
    if (de->d_name[0] != '.') strv_push(out, epee_strdup(de->d_name));
  closedir(d);
  if (out->n) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
  return 0;
}

static int is_png_name(const char *s) {
  size_t n = strlen(s);
  return n > 4 && !strcasecmp(s + n - 4, ".png");
}

/* Decodes paths[n] into out (labels[i], or -1 without labels); the pixel buffer grows with what is decoded. */
static int load_images(char *const *paths, const int *labels, int n, const img_opts *o, img_set *out, epee_err *e) {
  out->labels = epee_malloc((size_t)n * sizeof *out->labels);
  out->names = epee_malloc((size_t)n * sizeof *out->names);
  int size = o->size, C = o->channels, cap = 0;
  for (int i = 0; i < n; i++) {
    size_t len;
    uint8_t *file = (uint8_t *)data_read_file(paths[i], &len, e), *px = NULL;
    int h, w, c;
    if (!file) return -1;
    int rc = img_decode_png(file, len, paths[i], &px, &h, &w, &c, e);
    free(file);
    if (!rc) rc = img_fit(paths[i], h, w, c, o, &size, &C, e);
    if (rc < 0) {
      free(px);
      return -1;
    }
    size_t img = (size_t)size * (size_t)size * (size_t)C;
    if (i == cap) out->pixels = epee_realloc(out->pixels, (size_t)(cap = cap ? (2 * cap < n ? 2 * cap : n) : 1) * img);
    if (rc == 0) memcpy(out->pixels + (size_t)i * img, px, img);
    else img_resize_bilinear(px, h, w, C, out->pixels + (size_t)i * img, size, size);
    free(px);
    out->names[i] = epee_strdup(paths[i]);
    out->labels[i] = labels ? labels[i] : -1;
    out->n = i + 1;
  }
  out->H = out->W = size;
  out->C = C;
  return 0;
}

/* The known label list must not name a label twice (an image's label is its index there). */
static int check_known(const char *dir, char *const *known, int n_known, epee_err *e) {
  char **s = epee_malloc((size_t)n_known * sizeof *s);
  memcpy(s, known, (size_t)n_known * sizeof *s);
  qsort(s, (size_t)n_known, sizeof *s, cmp_str);
  int rc = 0;
  for (int k = 1; k < n_known && !rc; k++)
    if (!strcmp(s[k], s[k - 1])) rc = epee_errf(e, "%s: the label list given for it names '%s' twice", dir, s[k]);
  free(s);
  return rc;
}

static void join_names(char *const *names, int n, char *out, size_t cap) {
  size_t k = 0;
  out[0] = '\0';
  for (int i = 0; i < n; i++) {
    int w = snprintf(out + k, cap - k, "%s%s", i ? ", " : "", names[i]);
    if (w < 0 || (size_t)w >= cap - k) {
      strcpy(out + cap - 4, "...");
      return;
    }
    k += (size_t)w;
  }
}

/* Adds the .png files of class folder cdir to paths, with label; refuses anything else visible in it. */
static int scan_class(const char *cdir, int label, strv *paths, int **labels, int *lcap, epee_err *e) {
  strv files = {0};
  int rc = list_dir(cdir, &files, e), before = paths->n;
  for (int f = 0; f < files.n && !rc; f++) {
    char *p = join_path(cdir, files.v[f]);
    struct stat st;
    if (stat(p, &st))
      rc = epee_errf(e, "%s: cannot stat: %s", p, strerror(errno));
    else if (S_ISDIR(st.st_mode))
      rc = epee_errf(e, "%s: a folder inside a class folder (expected only .png images in %s)", p, cdir);
    else if (!S_ISREG(st.st_mode) || !is_png_name(files.v[f]))
      rc = epee_errf(e, "%s: not a .png file (a class folder holds only .png images; hidden files are skipped)", p);
    if (rc) {
      free(p);
      break;
    }
    strv_push(paths, p);
    if (paths->n > *lcap) *labels = epee_realloc(*labels, (size_t)(*lcap = paths->cap) * sizeof **labels);
    (*labels)[paths->n - 1] = label;
  }
  if (!rc && paths->n == before) rc = epee_errf(e, "%s: no .png images in the class folder", cdir);
  strv_free(&files);
  return rc;
}

int img_read_png_folder(const char *dir, char *const *known_labels, int n_known, const img_opts *o, img_set *out,
                        epee_err *e) {
  memset(out, 0, sizeof *out);
  strv classes = {0}, paths = {0};
  int *labels = NULL, lcap = 0;
  int rc = (n_known > 0 && check_known(dir, known_labels, n_known, e)) || list_dir(dir, &classes, e) ? -1 : 0;
  if (!rc && classes.n == 0) rc = epee_errf(e, "%s: no class folders (expected %s/<class>/<image>.png)", dir, dir);
  for (int k = 0; k < classes.n && !rc; k++) {
    char *cdir = join_path(dir, classes.v[k]);
    struct stat st;
    int label = n_known > 0 ? -1 : k; /* discovered: the index among the sorted folder names */
    for (int j = 0; j < n_known && label < 0; j++)
      if (!strcmp(known_labels[j], classes.v[k])) label = j;
    if (stat(cdir, &st) || !S_ISDIR(st.st_mode))
      rc = epee_errf(e, "%s: not a folder (expected only class folders holding .png images in %s)", cdir, dir);
    if (!rc && utf8_first_invalid(classes.v[k], strlen(classes.v[k])) >= 0) /* a label: JSON outputs name it */
      rc = epee_errf(e, "%s: the class folder's name is not valid UTF-8", cdir);
    if (!rc && label < 0) {
      char have[600];
      join_names(known_labels, n_known, have, sizeof have);
      rc = epee_errf(e, "%s: class folder '%s' is not one of the known labels (%s)", cdir, classes.v[k], have);
    }
    if (!rc) rc = scan_class(cdir, label, &paths, &labels, &lcap, e);
    free(cdir);
  }
  if (!rc) rc = load_images(paths.v, labels, paths.n, o, out, e);
  if (!rc) {
    int K = n_known > 0 ? n_known : classes.n;
    char *const *src = n_known > 0 ? known_labels : classes.v;
    out->label_names = epee_malloc((size_t)K * sizeof *out->label_names);
    for (; out->n_labels < K; out->n_labels++) out->label_names[out->n_labels] = epee_strdup(src[out->n_labels]);
  }
  strv_free(&classes);
  strv_free(&paths);
  free(labels);
  if (rc) img_set_free(out);
  return rc;
}

int img_read_png_files(char *const *paths, int n, const img_opts *o, img_set *out, epee_err *e) {
  memset(out, 0, sizeof *out);
  if (n < 1) return epee_errf(e, "no image files given");
  int rc = load_images(paths, NULL, n, o, out, e);
  if (rc) img_set_free(out);
  return rc;
}
