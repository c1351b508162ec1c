#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

struct arena_chunk {
  arena_chunk *next;
  size_t cap, used;
  char *mem;
};

static size_t align_up(size_t n) { return (n + EPEE_ALIGN - 1) & ~(size_t)(EPEE_ALIGN - 1); }

static char *aligned_block(size_t bytes) {
  void *p = NULL;
  if (bytes == 0) bytes = EPEE_ALIGN;
  if (posix_memalign(&p, EPEE_ALIGN, bytes) != 0) epee_fatal("out of memory: arena block of %zu bytes", bytes);
  return p;
}

void arena_init(arena *a, const char *name, size_t cap) {
  memset(a, 0, sizeof *a);
  a->name = name;
  a->cap = align_up(cap);
  a->base = a->cap ? aligned_block(a->cap) : NULL;
}

static void free_chunks(arena_chunk *c, arena_chunk *stop) {
  while (c && c != stop) {
    arena_chunk *n = c->next;
    free(c->mem);
    free(c);
    c = n;
  }
}

void arena_free(arena *a) {
  free_chunks(a->extra, NULL);
  free(a->base);
  memset(a, 0, sizeof *a);
}

void *arena_alloc_at(arena *a, size_t bytes, const char *file, int line) {
  bytes = align_up(bytes ? bytes : 1);
  if (a->used + bytes <= a->cap) {
    void *p = a->base + a->used;
    a->used += bytes;
    if (a->used + a->extra_used > a->high) a->high = a->used + a->extra_used;
    return p;
  }
  if (a->frozen)
    epee_fatal_at(file, line,
                  "arena '%s' overflow: %zu bytes requested, %zu of %zu used\n"
                  "  ---> hint: the arena was sized at warm-up; run warm-up at the largest batch and length",
                  a->name, bytes, a->used, a->cap);
  arena_chunk *c = a->extra;
  if (!c || c->used + bytes > c->cap) {
    size_t cap = bytes > (size_t)64 << 20 ? bytes : (size_t)64 << 20;
    c = epee_calloc(1, sizeof *c);
    c->mem = aligned_block(cap);
    c->cap = cap;
    c->next = a->extra;
    a->extra = c;
  }
  void *p = c->mem + c->used;
  c->used += bytes;
  a->extra_used += bytes;
  if (a->used + a->extra_used > a->high) a->high = a->used + a->extra_used;
  return p;
}

void *arena_calloc_at(arena *a, size_t bytes, const char *file, int line) {
  void *p = arena_alloc_at(a, bytes, file, line);
  memset(p, 0, bytes);
  return p;
}

void arena_reset(arena *a) {
  /* high > cap also after chunks were released by marks: the high-water size is what counts */
  if (a->extra || a->high > a->cap) {
    free_chunks(a->extra, NULL);
    a->extra = NULL;
    free(a->base);
    a->cap = align_up(a->high);
    a->base = aligned_block(a->cap);
  }
  a->used = 0;
  a->extra_used = 0;
}

arena_mark arena_get_mark(const arena *a) {
  return (arena_mark){a->used, a->extra_used, a->extra ? a->extra->used : 0, a->extra};
}

void arena_release(arena *a, arena_mark m) {
  /* chunks added after the mark go; the newest surviving chunk and the base block rewind */
  free_chunks(a->extra, m.extra);
  a->extra = m.extra;
  if (a->extra) a->extra->used = m.chunk_used;
  a->used = m.used;
  a->extra_used = m.extra_used;
}

void arena_freeze(arena *a) { a->frozen = 1; }
