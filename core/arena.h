/* Bump arenas, one per lifetime (parameters, activations, scratch). 64-byte aligned.
 *
 * An arena may grow while it is not frozen (warm-up): extra chunks are malloc'd on overflow, and the next
 * arena_reset folds everything into one block of the high-water size. After arena_freeze, an overflow is a
 * caller bug and stops with the arena's name, the request and the capacity. So a training step or an
 * engine call allocates nothing once the arena has seen its largest shape. */
#ifndef EPEE_ARENA_H
#define EPEE_ARENA_H

#include <stddef.h>

#define EPEE_ALIGN 64

typedef struct arena_chunk arena_chunk;
typedef struct {
  const char *name;
  char *base;          /* main block */
  size_t cap, used;    /* bytes in base */
  size_t high;         /* high-water mark over base + chunks since the last reset */
  arena_chunk *extra;  /* overflow chunks, only while not frozen */
  size_t extra_used;   /* bytes handed out from extra chunks */
  int frozen;
} arena;

void arena_init(arena *a, const char *name, size_t cap);
void arena_free(arena *a);
/* Zero-initialised is NOT implied; use arena_calloc when needed. */
void *arena_alloc_at(arena *a, size_t bytes, const char *file, int line);
void *arena_calloc_at(arena *a, size_t bytes, const char *file, int line);
#define arena_alloc(a, n) arena_alloc_at((a), (n), __FILE__, __LINE__)
#define arena_calloc(a, n) arena_calloc_at((a), (n), __FILE__, __LINE__)
/* Everything allocated since is released; if the arena overflowed, base grows to the high-water size. */
void arena_reset(arena *a);
/* Marks for nested lifetimes inside one step (the engine frees a layer's temporaries after the layer). */
typedef struct { size_t used, extra_used, chunk_used; arena_chunk *extra; } arena_mark;
arena_mark arena_get_mark(const arena *a);
void arena_release(arena *a, arena_mark m);
void arena_freeze(arena *a);

#endif
