/* Parameter store: every parameter's data, grad, Adam m and Adam v each live in ONE contiguous block
 * (same offsets in all four), so zeroing, norms, clipping and AdamW are flat loops and a checkpoint is
 * four arrays plus names. Parameters are declared first (names, shapes, group), then allocated once. */
#ifndef EPEE_PARAMS_H
#define EPEE_PARAMS_H

#include "core/tensor.h"

/* Optimizer groups: backbone vs exit heads (own learning rate), with vs without weight decay. */
enum { PG_BACKBONE = 0, PG_BACKBONE_NODECAY = 1, PG_EXIT = 2, PG_EXIT_NODECAY = 3, PG_COUNT = 4 };

typedef struct {
  tensor **t;        /* declared parameters, in declaration order */
  int *group;        /* PG_* per parameter */
  int64_t *offset;   /* element offset of each parameter inside the blocks */
  int n, cap;
  int64_t total;     /* elements per block (with 64-byte alignment padding) */
  float *data, *grad, *m, *v;
  size_t bytes;      /* of the one mapping that holds data (and grad, m, v) */
} param_store;

void params_init(param_store *ps);
void params_free(param_store *ps);
/* Declares a parameter named by its HuggingFace state_dict key. Weight decay follows the HF fine-tuning
 * convention: none for biases and LayerNorm weights, i.e. for every 1-D parameter. */
tensor *params_declare(param_store *ps, const char *name, int ndim, const int *shape, int is_exit);
/* What the parameters are for: training needs gradients and AdamW moments next to the weights (4x the
 * memory); serving holds the weights only (grad, m and v stay NULL, no tensor requires grad). */
typedef enum { PARAMS_TRAIN, PARAMS_SERVE } params_use;
/* Allocates the blocks `use` needs (zeroed) and points every tensor's data (and grad) into them. */
void params_allocate(param_store *ps, params_use use);
tensor *params_find(const param_store *ps, const char *name);
void params_zero_grad(param_store *ps);
double params_grad_norm(const param_store *ps);
/* The global L2 norm of the grads is NaN or Inf exactly when some grad is (squares summed in double cannot
 * overflow): one pass serves as the trainer's non-finite check too. The factor torch's clip_grad_norm_ scales
 * the grads by so that their norm is at most max_norm: max_norm / (norm + 1e-6) when norm > max_norm > 0, else 1
 * (adamw_step applies it). */
float params_clip_factor(double norm, double max_norm);

#endif
