#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "core/params.h"

#include <math.h>
#include <string.h>
#include <sys/mman.h>

#include "core/dnnl_wrap.h"
#include "core/vec.h"

#define PARAM_ALIGN 16 /* floats: every parameter starts on a 64-byte boundary */

void params_init(param_store *ps) { memset(ps, 0, sizeof *ps); }

void params_free(param_store *ps) {
  if (ps->data && !ps->grad) dw_forget_weights(ps->data, ps->bytes); /* serving: packed copies may exist */
  for (int i = 0; i < ps->n; i++) {
    free((char *)ps->t[i]->name);
    free(ps->t[i]);
  }
  free(ps->t);
  free(ps->group);
  free(ps->offset);
#ifdef __SANITIZE_ADDRESS__
  free(ps->data);
#else
  if (ps->data) munmap(ps->data, ps->bytes); /* one mapping holds all four blocks */
#endif
  memset(ps, 0, sizeof *ps);
}

tensor *params_declare(param_store *ps, const char *name, int ndim, const int *shape, int is_exit) {
  EPEE_CHECK(!ps->data, "declare every parameter before params_allocate");
  EPEE_CHECK(ndim >= 1 && ndim <= EPEE_MAX_DIMS, "parameters have 1..4 dims");
  if (params_find(ps, name)) epee_fatal("parameter '%s' declared twice", name);
  if (ps->n == ps->cap) {
    ps->cap = ps->cap ? 2 * ps->cap : 64;
    ps->t = epee_realloc(ps->t, sizeof(tensor *) * (size_t)ps->cap);
    ps->group = epee_realloc(ps->group, sizeof(int) * (size_t)ps->cap);
    ps->offset = epee_realloc(ps->offset, sizeof(int64_t) * (size_t)ps->cap);
  }
  tensor *t = epee_calloc(1, sizeof *t);
  t->ndim = ndim;
  memcpy(t->shape, shape, sizeof(int) * (size_t)ndim);
  t->n = shape_numel(ndim, shape);
  t->requires_grad = 1;
  t->is_leaf = 1;
  t->name = strdup(name);
  EPEE_CHECK(t->name != NULL, "out of memory");
  int decay = ndim > 1;
  ps->t[ps->n] = t;
  ps->group[ps->n] = is_exit ? (decay ? PG_EXIT : PG_EXIT_NODECAY) : (decay ? PG_BACKBONE : PG_BACKBONE_NODECAY);
  ps->offset[ps->n] = ps->total;
  ps->total += (t->n + PARAM_ALIGN - 1) / PARAM_ALIGN * PARAM_ALIGN;
  ps->n++;
  return t;
}

void params_allocate(param_store *ps, params_use use) {
  EPEE_CHECK(!ps->data, "params_allocate called twice");
  int blocks = use == PARAMS_TRAIN ? 4 : 1;
  size_t bytes = sizeof(float) * (size_t)ps->total * blocks;
  /* Fresh anonymous pages are zero already: no memset pass (it cost 0.5 s for BERT-base on a VM, more than
   * reading the checkpoint), and the pages are faulted in by whoever writes them first, in parallel when the
   * writers are (model import). Page-aligned, so every parameter's 64-byte alignment holds. */
  ps->bytes = bytes ? bytes : 1;
#ifdef __SANITIZE_ADDRESS__ /* ASan checks heap blocks, not mappings: keep its view of every parameter */
  void *mem = epee_calloc(ps->bytes, 1);
#else
  void *mem = mmap(NULL, ps->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) epee_fatal("out of memory: %zu parameter bytes", bytes);
#endif
  ps->data = mem;
  if (use == PARAMS_TRAIN) {
    ps->grad = ps->data + ps->total;
    ps->m = ps->grad + ps->total;
    ps->v = ps->m + ps->total;
  }
  for (int i = 0; i < ps->n; i++) {
    ps->t[i]->data = ps->data + ps->offset[i];
    ps->t[i]->grad = ps->grad ? ps->grad + ps->offset[i] : NULL;
    ps->t[i]->requires_grad = ps->grad != NULL;
    ps->t[i]->frozen = use == PARAMS_SERVE;
  }
}

tensor *params_find(const param_store *ps, const char *name) {
  for (int i = 0; i < ps->n; i++)
    if (strcmp(ps->t[i]->name, name) == 0) return ps->t[i];
  return NULL;
}

/* The flat gradient block in chunks, each thread a contiguous share (one thread alone is far from the memory
 * bandwidth), each chunk in a per-ISA kernel (core/vec.h). */
enum { CHUNK = 1 << 16 };

void params_zero_grad(param_store *ps) {
  float *g = ps->grad;
  int64_t n = ps->total;
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < n; o += CHUNK) memset(g + o, 0, sizeof(float) * (size_t)(n - o < CHUNK ? n - o : CHUNK));
}

double params_grad_norm(const param_store *ps) {
  double s = 0.0;
  const float *g = ps->grad;
  int64_t n = ps->total;
  /* padding between parameters is always zero, so the flat loop is exact */
#pragma omp parallel for reduction(+ : s) schedule(static)
  for (int64_t o = 0; o < n; o += CHUNK) s += vec_sumsq(g + o, n - o < CHUNK ? n - o : CHUNK);
  return sqrt(s);
}

float params_clip_factor(double norm, double max_norm) {
  return max_norm > 0 && isfinite(norm) && norm > max_norm ? (float)(max_norm / (norm + 1e-6)) : 1.0f; /* torch: 1e-6 */
}
