/* Tensors, the execution context and the tape (reverse-mode autograd).
 *
 * A tensor is a float32 row-major view, PyTorch dimension order, up to 4-D. Parameters live in a
 * param_store (data, grad, Adam m and v each one contiguous block); everything an op produces lives in
 * the context's activation arena and dies at ctx_reset.
 *
 * The tape records coarse ops in execution order (already topological) and replays their backward in
 * reverse. Backward functions ACCUMULATE into input grads, so a tensor used twice (a residual stream
 * feeding several exits) receives the sum. Outside grad mode nothing is recorded and ops save nothing. */
#ifndef EPEE_TENSOR_H
#define EPEE_TENSOR_H

#include <stdint.h>

#include "core/arena.h"
#include "core/error.h"

#define EPEE_MAX_DIMS 4

typedef struct tensor {
  float *data;
  float *grad;       /* params: always; activations: allocated (zeroed) on first use in backward */
  int64_t n;         /* number of elements */
  int ndim;
  int shape[EPEE_MAX_DIMS];
  int requires_grad; /* a parameter, or computed from one in grad mode */
  int is_leaf;       /* parameters and user inputs: grads accumulate across backward passes */
  int frozen;        /* serving parameters: never rewritten, so a linear op may keep a packed copy (dnnl_wrap.h) */
  const char *name;  /* parameters: the HuggingFace state_dict key */
} tensor;

typedef struct tape_entry tape_entry;
typedef void (*backward_fn)(tape_entry *e);

#define TAPE_MAX_IN 4
struct tape_entry {
  const char *op;
  backward_fn backward;
  tensor *out;
  tensor *in[TAPE_MAX_IN];
  void *saved[4];     /* op-specific saved state (e.g. LayerNorm mean/rstd, dropout mask) */
  int iarg[6];
  float farg[4];
};

typedef struct {
  tape_entry *entries;
  int n, cap;
} tape;

typedef struct epee_ctx {
  arena act;         /* activations, their grads and saved state: reset every step */
  tape tape;
  int grad_mode;     /* 1: record ops on the tape */
  int training;      /* 1: dropout active */
  uint64_t seed;     /* dropout stream: (seed, step, op counter) */
  uint64_t step;
  uint64_t dropout_calls;
  struct profile *prof; /* time per op kind (core/profile.h); NULL: not profiling */
} epee_ctx;

/* --- context ---------------------------------------------------------------------------------- */
void ctx_init(epee_ctx *c, size_t act_bytes, uint64_t seed);
void ctx_free(epee_ctx *c);
/* Drops all activations and the tape (start of a step). */
void ctx_reset(epee_ctx *c);

/* --- tensors ---------------------------------------------------------------------------------- */
/* New activation tensor in the context's arena; contents uninitialised. ndim = number of dims given. */
tensor *tensor_new_at(epee_ctx *c, int ndim, const int *shape, const char *file, int line);
#define tensor_new(c, ndim, shape) tensor_new_at((c), (ndim), (shape), __FILE__, __LINE__)
tensor *tensor_new2(epee_ctx *c, int d0, int d1);
tensor *tensor_new3(epee_ctx *c, int d0, int d1, int d2);
/* Wrap caller memory (an input batch) as a leaf tensor; no grad unless requires_grad is set later. */
tensor *tensor_wrap(epee_ctx *c, float *data, int ndim, const int *shape);
/* The grad buffer, allocated and zeroed in the activation arena on first request. */
float *tensor_grad(epee_ctx *c, tensor *t);
/* "[2, 3, 4]" into buf for messages */
const char *tensor_shape_str(const tensor *t, char *buf, int len);
int64_t shape_numel(int ndim, const int *shape);

/* --- op helpers (for op implementations) -------------------------------------------------------- */
/* Stops with the op name, the shapes of its operands and the caller's file:line. */
void op_fail(const char *op, const char *file, int line, const char *what, int nt, tensor *const *ts);
#define OP_CHECK(cond, opname, file, line, what, ...)                                                  \
  do {                                                                                                \
    if (!(cond)) {                                                                                    \
      tensor *ts_[] = {__VA_ARGS__};                                                                  \
      op_fail((opname), (file), (line), (what), (int)(sizeof ts_ / sizeof ts_[0]), ts_);             \
    }                                                                                                 \
  } while (0)
/* Records an op if grad mode is on and any input requires grad; returns the entry (NULL otherwise)
 * and marks out->requires_grad. Inputs may be NULL (optional bias). */
tape_entry *tape_record(epee_ctx *c, const char *op, backward_fn bw, tensor *out, int nin, tensor *const *in);
/* Whether tape_record would record an op of these inputs: an op that must save state for its backward asks first. */
int tape_wants(const epee_ctx *c, int nin, tensor *const *in);
/* Backward from `out`: zeroes non-leaf grads, seeds out->grad with dout[out->n] (NULL: all ones, the
 * usual d(loss)/d(loss) = 1 for a scalar loss), replays the tape in reverse. Leaf (parameter) grads
 * accumulate across calls. */
void tape_backward(epee_ctx *c, tensor *out, const float *dout);

#endif
