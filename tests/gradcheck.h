/* Op checker: the fast kernel against a naive double-precision reference, and every differentiable
 * input's gradient (from the tape) against central finite differences OF THAT DOUBLE REFERENCE, so the
 * numerical side carries no float rounding. The projection loss sum(out * R), R random, checks all of
 * the output's Jacobian at once. */
#ifndef EPEE_GRADCHECK_H
#define EPEE_GRADCHECK_H

#include "core/tensor.h"

#define GC_MAX_IN 4

typedef struct {
  const char *name;
  int n_in;
  int ndim[GC_MAX_IN];
  int shape[GC_MAX_IN][EPEE_MAX_DIMS];
  int diff[GC_MAX_IN];   /* 1: gradient-check this input */
  /* optional: fill input i (default N(0, 1)) */
  void (*init)(int i, float *x, int64_t n, const void *arg);
  tensor *(*fast)(epee_ctx *c, tensor **in, const void *arg);
  /* double reference: in[i] has numel(shape[i]) values; out has the fast output's numel */
  void (*ref)(const double *const *in, double *out, const void *arg);
  const void *arg;
} gc_case;

typedef struct {
  double fwd_err;             /* max |fast - ref| / (|ref| + 1e-3 max|ref|) */
  double grad_err[GC_MAX_IN]; /* worst relative error over sampled coordinates */
  double worst;               /* max of all the above */
} gc_result;

/* Runs the case with inputs drawn from seed; checks up to `samples` coordinates per input
 * (all when fewer). Prints one line with the worst errors. */
gc_result gc_run(const gc_case *k, uint64_t seed, int samples);

/* Draws the case's inputs into c exactly as gc_run does (so other checks can rerun a case). */
void gc_make_inputs(const gc_case *k, epee_ctx *c, uint64_t seed, tensor **in);

/* Runs fn in a forked child; 1 when the child aborted and its stderr holds every string of want[]
 * (misuse checks: the op, the shapes, the caller's file:line). */
int gc_aborts_saying(void (*fn)(void), int nwant, const char *const *want);

/* CUnit helper: runs and asserts worst <= tol. */
void gc_assert(const gc_case *k, uint64_t seed, int samples, double tol);

#endif
