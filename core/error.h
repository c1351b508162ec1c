/* Error reporting shared by every layer.
 *
 * Two kinds of failure:
 *  - misuse of the library by its caller (shape mismatch, arena overflow, bad argument): a programming
 *    error, reported by EPEE_CHECK / epee_fatal with file:line, the failing call and a hint, then abort;
 *    active in every build type.
 *  - bad input from a user (a file, a config key, a tensor in a model file): reported as ONE line in an
 *    epee_err and returned as -1, so that the CLI prints it and exits non-zero, and a library user decides.
 * Header-only so that data/ (which needs nothing else from core) can use it. */
#ifndef EPEE_ERROR_H
#define EPEE_ERROR_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPEE_ERR_LEN 1024
typedef struct {
  char msg[EPEE_ERR_LEN];
} epee_err;

/* Sets e->msg (if e is non-NULL) and returns -1, so `return epee_errf(e, "...")` reads well. Control
 * characters (a newline inside an echoed value, say) become '?': an error is always one line. */
static inline int epee_errf(epee_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int epee_errf(epee_err *e, const char *fmt, ...) {
  if (e) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    for (char *c = e->msg; *c; c++)
      if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
  }
  return -1;
}

/* Prints "epee: file:line: message" and aborts; for caller bugs, never for user input. */
static inline void epee_fatal_at(const char *file, int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));
static inline void epee_fatal_at(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "epee: %s:%d: ", file, line);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stderr);
  abort();
}
#define epee_fatal(...) epee_fatal_at(__FILE__, __LINE__, __VA_ARGS__)

/* EPEE_CHECK(cond, hint...): stops with the failing condition, the caller's file:line and a hint. */
#define EPEE_CHECK(cond, ...)                                                                           \
  do {                                                                                                  \
    if (!(cond)) epee_fatal_at(__FILE__, __LINE__, "check failed: %s\n  ---> hint: %s", #cond,         \
                               epee_hint_(__VA_ARGS__));                                                \
  } while (0)
static inline const char *epee_hint_(const char *s) { return s; }

/* Checked allocation: aborts with file:line and the size that could not be had. */
static inline void *epee_malloc_at(size_t n, const char *file, int line) {
  void *p = malloc(n ? n : 1);
  if (!p) epee_fatal_at(file, line, "out of memory allocating %zu bytes", n);
  return p;
}
static inline void *epee_calloc_at(size_t n, size_t sz, const char *file, int line) {
  void *p = calloc(n ? n : 1, sz ? sz : 1);
  if (!p) epee_fatal_at(file, line, "out of memory allocating %zu x %zu bytes", n, sz);
  return p;
}
static inline void *epee_realloc_at(void *q, size_t n, const char *file, int line) {
  void *p = realloc(q, n ? n : 1);
  if (!p) epee_fatal_at(file, line, "out of memory reallocating %zu bytes", n);
  return p;
}
static inline char *epee_strdup_at(const char *s, const char *file, int line) {
  size_t n = strlen(s) + 1;
  return memcpy(epee_malloc_at(n, file, line), s, n);
}
#define epee_malloc(n) epee_malloc_at((n), __FILE__, __LINE__)
#define epee_strdup(s) epee_strdup_at((s), __FILE__, __LINE__)
#define epee_calloc(n, sz) epee_calloc_at((n), (sz), __FILE__, __LINE__)
#define epee_realloc(p, n) epee_realloc_at((p), (n), __FILE__, __LINE__)

#endif
