#include "core/adamw.h"

#include <math.h>

#include "core/simd.h"

enum { CHUNK = 16384 }; /* threads take blocks of CHUNK elements, each run by a per-ISA kernel (core/simd.h) */

/* One block of one tensor: m, v, then the decoupled-decay update; c1, c2 the bias corrections. The gradient is
 * read once, scaled and cleared: clipping and zeroing cost no passes of their own over the gradients. */
EPEE_VECTOR_CLONES static void update_chunk(float *p, float *gr, float *m, float *v, int64_t n, float b1, float b2,
                                            float c1, float c2, float eps, float lr, float decay, float scale) {
#pragma omp simd
  for (int64_t j = 0; j < n; j++) {
    float gj = gr[j] * scale;
    gr[j] = 0.0f;
    m[j] = b1 * m[j] + (1.0f - b1) * gj;
    v[j] = b2 * v[j] + (1.0f - b2) * gj * gj;
    p[j] = p[j] * decay - lr * (m[j] / c1) / (sqrtf(v[j] / c2) + eps);
  }
}

void adamw_step(adamw *opt, param_store *ps, const adamw_group *groups, float grad_scale) {
  opt->t++;
  const float b1 = opt->beta1, b2 = opt->beta2, eps = opt->eps;
  const float c1 = 1.0f - powf(b1, (float)opt->t), c2 = 1.0f - powf(b2, (float)opt->t);
  for (int i = 0; i < ps->n; i++) {
    const adamw_group *g = &groups[ps->group[i]];
    const float lr = g->lr, decay = 1.0f - g->lr * g->weight_decay;
    int64_t o = ps->offset[i], n = ps->t[i]->n;
    float *p = ps->data + o, *gr = ps->grad + o, *m = ps->m + o, *v = ps->v + o;
#pragma omp parallel for schedule(static) if (n > 4 * CHUNK)
    for (int64_t o = 0; o < n; o += CHUNK) {
      int64_t k = n - o < CHUNK ? n - o : CHUNK;
      update_chunk(p + o, gr + o, m + o, v + o, k, b1, b2, c1, c2, eps, lr, decay, grad_scale);
    }
  }
}
