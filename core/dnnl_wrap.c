#include "core/dnnl_wrap.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* ---- matmul primitives: one per shape, cached ---------------------------------------------------------- */

/* Everything a matmul primitive is specialised for. `threads` too: oneDNN tunes a primitive for the
 * OpenMP thread count at creation, so a changed count must not reuse it. */
typedef struct {
  int batch, M, N, K, ta, tb, bias, acc, act, resid, packed, threads; /* packed: weights in oneDNN's own layout */
} mm_key;

typedef struct mm_prim {
  mm_key key;
  dnnl_primitive_t prim;
  dnnl_memory_desc_t src, wei, bias, dst, scratch; /* the residual post-op's source is laid out as dst */
  int users;           /* callers executing it right now: an entry in use is never evicted */
  uint64_t last_used;  /* LRU clock */
  struct mm_prim *next; /* in its hash bucket */
} mm_prim;

/* A frozen weight matrix (serving) copied into the layout its matmuls run fastest from (dw_linear_fwd_frozen). */
typedef struct packed_w {
  const float *w; /* the plain weights this copies: the key */
  int N, K, w_kn;
  dnnl_memory_desc_t md;
  void *data;
  struct packed_w *next;
} packed_w;

static void packed_free(packed_w *p) {
  free(p->data);
  free(p);
}

/* Bounded because shapes follow the batch and the padded length; a miss costs ~0.3 ms (and oneDNN's own
 * primitive cache usually makes a re-creation a hit), an entry ~70 KB of JIT code. Found through a hash
 * table: a linear scan of the list cost more than the GEMM itself at batch-1 sizes. */
#define MM_CACHE_MAX 256
#define MM_BUCKETS 1024 /* power of two */

/* The CPU stream just runs the primitive on the calling thread (oneDNN's stream_t::enqueue_primitive
 * calls execute directly), so one stream serves concurrent callers; only the cache needs the lock. */
static struct {
  pthread_mutex_t lock;
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  mm_prim *bucket[MM_BUCKETS];
  int n;
  uint64_t clock;
  packed_w *packed[MM_BUCKETS]; /* frozen weights in the primitive's layout, by address */
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static unsigned key_hash(const mm_key *k) {
  const int *f = &k->batch;
  uint64_t h = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < sizeof *k / sizeof(int); i++) h = (h ^ (uint32_t)f[i]) * 0x100000001B3ull;
  return (unsigned)(h ^ (h >> 29)) & (MM_BUCKETS - 1);
}

static void key_str(const mm_key *k, char *buf, size_t len) {
  snprintf(buf, len, "batch=%d M=%d N=%d K=%d ta=%d tb=%d bias=%d accumulate=%d act=%d residual=%d packed=%d",
           k->batch, k->M, k->N, k->K, k->ta, k->tb, k->bias, k->acc, k->act, k->resid, k->packed);
}

static void dnnl_ok(dnnl_status_t st, const char *call, const mm_key *k) {
  if (st == dnnl_success) return;
  char buf[160] = "";
  if (k) key_str(k, buf, sizeof buf);
  epee_fatal("oneDNN %s failed: %s (%s)", call, dnnl_status2str(st), buf);
}
#define DNNL_OK(call, key) dnnl_ok((call), #call, (key))

/* 3-D {batch, rows, cols} descriptor of contiguous [rows, cols] slices, or of their transpose when t
 * (the data is stored [cols, rows]): the transpose is only a change of strides. */
static dnnl_memory_desc_t md_3d(int batch, int rows, int cols, int t, const mm_key *k) {
  dnnl_memory_desc_t md;
  dnnl_dims_t dims = {batch, rows, cols};
  dnnl_dims_t strides = {(dnnl_dim_t)rows * cols, t ? 1 : cols, t ? rows : 1};
  DNNL_OK(dnnl_memory_desc_init_by_strides(&md, 3, dims, dnnl_f32, strides), k);
  return md;
}

/* called with g.lock held */
static void engine_up(void) {
  if (!g.engine) {
    DNNL_OK(dnnl_engine_create(&g.engine, dnnl_cpu, 0), NULL);
    DNNL_OK(dnnl_stream_create(&g.stream, g.engine, dnnl_stream_default_flags), NULL);
  }
}

/* called with g.lock held; wei: the packed weights' layout when k->packed */
static mm_prim *mm_create(const mm_key *k, const dnnl_memory_desc_t *wei) {
  engine_up();
  mm_prim *p = epee_calloc(1, sizeof *p);
  p->key = *k;
  p->src = md_3d(k->batch, k->M, k->K, k->ta, k);
  p->wei = k->packed ? *wei : md_3d(k->batch, k->K, k->N, k->tb, k);
  p->dst = md_3d(k->batch, k->M, k->N, 0, k);
  p->bias = md_3d(1, 1, k->N, 0, k); /* one row, broadcast over batch and rows */
  dnnl_matmul_desc_t desc;
  DNNL_OK(dnnl_matmul_desc_init(&desc, &p->src, &p->wei, k->bias ? &p->bias : NULL, &p->dst), k);
  dnnl_primitive_attr_t attr;
  DNNL_OK(dnnl_primitive_attr_create(&attr), k);
  /* the caller brings the scratchpad: with the library's, two threads running one cached primitive at
   * the same time corrupt each other's results */
  DNNL_OK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), k);
  /* post-ops run in this order on the product (+ bias): C += (sum), then the activation, then + R (binary add of
   * a full [M, N] tensor) */
  dnnl_post_ops_t po;
  DNNL_OK(dnnl_post_ops_create(&po), k);
  if (k->acc) DNNL_OK(dnnl_post_ops_append_sum(po, 1.0f), k);
  dnnl_alg_kind_t alg = k->act == DW_ACT_GELU_ERF ? dnnl_eltwise_gelu_erf : dnnl_eltwise_gelu_tanh;
  if (k->act) DNNL_OK(dnnl_post_ops_append_eltwise(po, 1.0f, alg, 0.0f, 0.0f), k);
  if (k->resid) DNNL_OK(dnnl_post_ops_append_binary(po, dnnl_binary_add, &p->dst), k);
  DNNL_OK(dnnl_primitive_attr_set_post_ops(attr, po), k);
  DNNL_OK(dnnl_post_ops_destroy(po), k);
  dnnl_primitive_desc_t pd;
  DNNL_OK(dnnl_primitive_desc_create(&pd, &desc, attr, g.engine, NULL), k);
  DNNL_OK(dnnl_primitive_create(&p->prim, pd), k);
  p->scratch = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  DNNL_OK(dnnl_primitive_desc_destroy(pd), k);
  DNNL_OK(dnnl_primitive_attr_destroy(attr), k);
  return p;
}

static void mm_destroy(mm_prim *p) {
  dnnl_primitive_destroy(p->prim);
  free(p);
}

/* drops the least recently used entry that nobody is executing (called with g.lock held, on a miss only:
 * the scan costs microseconds next to the creation) */
static void mm_evict(void) {
  mm_prim **victim = NULL;
  for (int b = 0; b < MM_BUCKETS; b++)
    for (mm_prim **pp = &g.bucket[b]; *pp; pp = &(*pp)->next)
      if (!(*pp)->users && (!victim || (*pp)->last_used < (*victim)->last_used)) victim = pp;
  if (!victim) return;
  mm_prim *p = *victim;
  *victim = p->next;
  mm_destroy(p);
  g.n--;
}

static mm_prim *mm_acquire(const mm_key *k, const dnnl_memory_desc_t *wei) {
  unsigned h = key_hash(k);
  pthread_mutex_lock(&g.lock);
  mm_prim *p = g.bucket[h];
  while (p && memcmp(&p->key, k, sizeof *k) != 0) p = p->next;
  if (!p) {
    if (g.n >= MM_CACHE_MAX) mm_evict();
    p = mm_create(k, wei);
    p->next = g.bucket[h];
    g.bucket[h] = p;
    g.n++;
  }
  p->users++;
  p->last_used = ++g.clock;
  pthread_mutex_unlock(&g.lock);
  return p;
}

static void mm_release(mm_prim *p) {
  pthread_mutex_lock(&g.lock);
  p->users--;
  pthread_mutex_unlock(&g.lock);
}

/* Each calling thread's scratchpad, grown to the largest size a primitive asked for: no allocation per call
 * after warm-up (the sizes, 130-260 KB at BERT shapes, sit at malloc's mmap threshold, so a buffer per
 * call could cost an mmap and page faults each time). Freed at thread exit, or by dw_shutdown. */
typedef struct {
  void *p;
  size_t n;
} scratch_buf;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v) {
  scratch_buf *s = v;
  free(s->p);
  free(s);
}

static void scratch_key_make(void) {
  if (pthread_key_create(&scratch_key, scratch_free) != 0) epee_fatal("pthread_key_create failed");
}

static void *scratch_get(size_t n) {
  pthread_once(&scratch_once, scratch_key_make);
  scratch_buf *s = pthread_getspecific(scratch_key);
  if (!s) {
    s = epee_calloc(1, sizeof *s);
    if (pthread_setspecific(scratch_key, s) != 0) epee_fatal("pthread_setspecific failed");
  }
  if (s->n < n) {
    free(s->p);
    s->p = NULL;
    if (posix_memalign(&s->p, 64, n) != 0) epee_fatal("out of memory: %zu bytes of oneDNN scratchpad", n);
    s->n = n;
  }
  return s->p;
}

/* C (+)= op(A) op(B) (+ bias), then the key's post-ops (r: the residual), through the cached primitive; the
 * memory objects are thin handles around the caller's pointers, made per call so that concurrent callers never
 * share them. */
static void mm_run(const mm_key *k, const dnnl_memory_desc_t *wei, const float *a, const float *b, const float *bias,
                   const float *r, float *c) {
  mm_prim *p = mm_acquire(k, wei);
  dnnl_memory_t m[6];
  DNNL_OK(dnnl_memory_create(&m[0], &p->src, g.engine, (void *)a), k);
  DNNL_OK(dnnl_memory_create(&m[1], &p->wei, g.engine, (void *)b), k);
  DNNL_OK(dnnl_memory_create(&m[2], &p->dst, g.engine, c), k);
  dnnl_exec_arg_t args[6] = {{DNNL_ARG_SRC, m[0]}, {DNNL_ARG_WEIGHTS, m[1]}, {DNNL_ARG_DST, m[2]}};
  int n = 3;
  if (k->bias) {
    DNNL_OK(dnnl_memory_create(&m[n], &p->bias, g.engine, (void *)bias), k);
    args[n] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, m[n]};
    n++;
  }
  if (k->resid) {
    DNNL_OK(dnnl_memory_create(&m[n], &p->dst, g.engine, (void *)r), k);
    int index = (k->acc != 0) + (k->act != 0); /* the binary add is the last post-op */
    args[n] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1, m[n]};
    n++;
  }
  size_t sb = dnnl_memory_desc_get_size(&p->scratch);
  if (sb) {
    DNNL_OK(dnnl_memory_create(&m[n], &p->scratch, g.engine, scratch_get(sb)), k);
    args[n] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, m[n]};
    n++;
  }
  DNNL_OK(dnnl_primitive_execute(p->prim, g.stream, n, args), k);
  DNNL_OK(dnnl_stream_wait(g.stream), k);
  for (int i = 0; i < n; i++) dnnl_memory_destroy(m[i]);
  mm_release(p);
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
  case dnnl_cpu_isa_sse41: return "sse41";
  case dnnl_cpu_isa_avx: return "avx";
  case dnnl_cpu_isa_avx2: return "avx2";
  case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
  case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
  case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
  case dnnl_cpu_isa_avx512_core: return "avx512_core";
  case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
  case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
  case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
  default: return "all";
  }
}

void dw_describe_machine(FILE *f) {
  char line[512], cpu[256] = "unknown CPU";
  FILE *c = fopen("/proc/cpuinfo", "r");
  while (c && fgets(line, sizeof line, c))
    if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
      snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
      cpu[strcspn(cpu, "\n")] = '\0';
      break;
    }
  if (c) fclose(c);
  /* the clone our vector loops run (core/simd.h): what the ifuncs pick on this CPU */
#if defined(EPEE_ONE_ISA) && defined(__AVX512F__)
  const char *vec = "AVX-512 (built for one ISA)";
#elif defined(EPEE_ONE_ISA) && defined(__AVX2__)
  const char *vec = "AVX2 (built for one ISA)";
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  const char *vec = __builtin_cpu_supports("x86-64-v4")   ? "AVX-512 (x86-64-v4)"
                    : __builtin_cpu_supports("x86-64-v3") ? "AVX2 + FMA (x86-64-v3)"
                                                          : "baseline x86-64 (SSE2)";
#else
  const char *vec = "the compiler's target";
#endif
  fprintf(f, "machine: %s; oneDNN ISA %s; our vector loops %s; %d OpenMP threads\n", cpu,
          isa_name(dnnl_get_effective_cpu_isa()), vec, omp_get_max_threads());
}

void dw_shutdown(void) {
  pthread_once(&scratch_once, scratch_key_make);
  scratch_buf *s = pthread_getspecific(scratch_key);
  if (s) {
    scratch_free(s);
    pthread_setspecific(scratch_key, NULL);
  }
  pthread_mutex_lock(&g.lock);
  for (int b = 0; b < MM_BUCKETS; b++)
    while (g.bucket[b]) {
      mm_prim *p = g.bucket[b];
      g.bucket[b] = p->next;
      mm_destroy(p);
    }
  g.n = 0;
  for (int b = 0; b < MM_BUCKETS; b++)
    while (g.packed[b]) {
      packed_w *p = g.packed[b];
      g.packed[b] = p->next;
      packed_free(p);
    }
  if (g.stream) dnnl_stream_destroy(g.stream);
  if (g.engine) dnnl_engine_destroy(g.engine);
  g.stream = NULL;
  g.engine = NULL;
  pthread_mutex_unlock(&g.lock);
}

/* ---- public entry points ------------------------------------------------------------------------------ */

void dw_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) { /* an empty product (oneDNN rejects the zero leading dims it implies) */
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
    return;
  }
  dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success)
    epee_fatal("oneDNN dnnl_sgemm(%c%c, M=%d, N=%d, K=%d, lda=%d, ldb=%d, ldc=%d) failed: %s", ta ? 'T' : 'N',
               tb ? 'T' : 'N', M, N, K, lda, ldb, ldc, dnnl_status2str(st));
}

void dw_sgemm_raw(int ta, int tb, int M, int N, int K, const float *a, const float *b, float *c) {
  dw_gemm(ta, tb, M, N, K, 1.0f, a, ta ? M : K, b, tb ? K : N, 0.0f, c, N);
}

/* One batched primitive call rather than a loop of sgemm: oneDNN splits the batch over the threads itself;
 * measured 2.2 vs 2.6 ms for 96 x [128 x 64] x [64 x 128] on one thread, equal with accumulation. */
void dw_bmm(int batch, int ta, int tb, int M, int N, int K, const float *a, const float *b, float *c, int accumulate) {
  if (batch == 0 || M == 0 || N == 0) return;
  if (K == 0) { /* an empty sum: oneDNN rejects zero dims */
    if (!accumulate) memset(c, 0, sizeof(float) * (size_t)batch * M * N);
    return;
  }
  mm_key k = {batch, M, N, K, ta, tb, 0, accumulate != 0, DW_ACT_NONE, 0, 0, omp_get_max_threads()};
  mm_run(&k, NULL, a, b, NULL, NULL, c);
}

/* Which oneDNN call serves which linear pass was decided by measurement at BERT shapes (N, K in {768, 3072},
 * 2 threads, quiet machine): for the forward, the matmul primitive with the bias fused ran 6-30% faster
 * than dnnl_sgemm from 16 up to ~1024 rows and even at 2048, but is 1.5-3x slower below 16 rows (a fixed
 * cost and a blocking meant for many rows; one row is the early-exit engine's pooler case). For both
 * backward GEMMs dnnl_sgemm with beta = 1 was 5-60% faster than the primitive, which needs a sum post-op
 * and a transposed ('ba') source there. */
#define LINEAR_PRIMITIVE_MIN_ROWS 16

/* ---- frozen weights, packed once (serving) ----
 * oneDNN runs a matmul faster from weights in a layout of its own choosing (format_tag_any) than from PyTorch's
 * [N, K]: measured at 32 rows, BERT-default sizes, 2 threads, 12-15% on AVX2 (gemm:jit) and 15-35% on AVX-512
 * (brg:avx512_core), the copy the kernel otherwise makes of W on every call. The layout is asked of a 32-row
 * primitive and serves every row count (checked: the same implementation from 1 to 2048 rows). */
static unsigned ptr_hash(const void *w) {
  uint64_t h = (uint64_t)(uintptr_t)w * 0x9E3779B97F4A7C15ull;
  return (unsigned)(h >> 40) & (MM_BUCKETS - 1);
}

/* called with g.lock held */
static packed_w *pack(const float *w, int w_kn, int N, int K) {
  engine_up();
  mm_key k = {1, 32, N, K, 0, !w_kn, 0, 0, DW_ACT_NONE, 0, 1, 0};
  dnnl_memory_desc_t src = md_3d(1, 32, K, 0, &k), dst = md_3d(1, 32, N, 0, &k), any, plain = md_3d(1, K, N, !w_kn, &k);
  DNNL_OK(dnnl_memory_desc_init_by_tag(&any, 3, (dnnl_dims_t){1, K, N}, dnnl_f32, dnnl_format_tag_any), &k);
  dnnl_matmul_desc_t desc;
  DNNL_OK(dnnl_matmul_desc_init(&desc, &src, &any, NULL, &dst), &k);
  dnnl_primitive_desc_t pd;
  DNNL_OK(dnnl_primitive_desc_create(&pd, &desc, NULL, g.engine, NULL), &k);
  packed_w *p = epee_calloc(1, sizeof *p);
  *p = (packed_w){.w = w, .N = N, .K = K, .w_kn = w_kn, .md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)};
  DNNL_OK(dnnl_primitive_desc_destroy(pd), &k);
  size_t bytes = dnnl_memory_desc_get_size(&p->md);
  if (posix_memalign(&p->data, 64, bytes ? bytes : 64) != 0) epee_fatal("out of memory: %zu bytes of packed weights", bytes);
  dnnl_primitive_desc_t rpd;
  dnnl_primitive_t reorder;
  dnnl_memory_t from, to;
  DNNL_OK(dnnl_reorder_primitive_desc_create(&rpd, &plain, g.engine, &p->md, g.engine, NULL), &k);
  DNNL_OK(dnnl_primitive_create(&reorder, rpd), &k);
  DNNL_OK(dnnl_memory_create(&from, &plain, g.engine, (void *)w), &k);
  DNNL_OK(dnnl_memory_create(&to, &p->md, g.engine, p->data), &k);
  DNNL_OK(dnnl_primitive_execute(reorder, g.stream, 2, (dnnl_exec_arg_t[]){{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}), &k);
  DNNL_OK(dnnl_stream_wait(g.stream), &k);
  dnnl_memory_destroy(from), dnnl_memory_destroy(to);
  dnnl_primitive_destroy(reorder), dnnl_primitive_desc_destroy(rpd);
  return p;
}

/* the packed copy of w, made on first use */
static const packed_w *packed_get(const float *w, int w_kn, int N, int K) {
  unsigned h = ptr_hash(w);
  pthread_mutex_lock(&g.lock);
  packed_w *p = g.packed[h];
  while (p && !(p->w == w && p->N == N && p->K == K && p->w_kn == w_kn)) p = p->next;
  if (!p) {
    p = pack(w, w_kn, N, K);
    p->next = g.packed[h];
    g.packed[h] = p;
  }
  pthread_mutex_unlock(&g.lock);
  return p; /* entries live until dw_forget_weights: the caller owns that moment */
}

void dw_forget_weights(const void *lo, size_t bytes) {
  const char *a = lo, *b = a + bytes;
  pthread_mutex_lock(&g.lock);
  for (int i = 0; i < MM_BUCKETS; i++)
    for (packed_w **pp = &g.packed[i]; *pp;) {
      packed_w *p = *pp;
      if ((const char *)p->w >= a && (const char *)p->w < b) {
        *pp = p->next;
        packed_free(p);
      } else {
        pp = &p->next;
      }
    }
  pthread_mutex_unlock(&g.lock);
}

static int linear_fwd(const float *x, const float *w, int w_kn, int frozen, const float *b, dw_act act, const float *r,
                      float *y, int M, int N, int K) {
  if (M >= LINEAR_PRIMITIVE_MIN_ROWS && N > 0 && K > 0) {
    const packed_w *pw = frozen ? packed_get(w, w_kn, N, K) : NULL;
    mm_key k = {1, M, N, K, 0, !w_kn, b != NULL, 0, act, r != NULL, pw != NULL, omp_get_max_threads()};
    mm_run(&k, pw ? &pw->md : NULL, x, pw ? pw->data : w, b, r, y);
    return 1;
  }
  if (b) { /* Y starts as the bias and the GEMM accumulates onto it: one pass over Y, not two */
    for (int i = 0; i < M; i++) memcpy(y + (size_t)i * N, b, sizeof(float) * (size_t)N);
  }
  dw_gemm(0, !w_kn, M, N, K, 1.0f, x, K, w, w_kn ? N : K, b ? 1.0f : 0.0f, y, N);
  return act == DW_ACT_NONE && !r;
}

int dw_linear_fwd(const float *x, const float *w, int w_kn, const float *b, dw_act act, const float *r, float *y, int M,
                  int N, int K) {
  return linear_fwd(x, w, w_kn, 0, b, act, r, y, M, N, K);
}

int dw_linear_fwd_frozen(const float *x, const float *w, int w_kn, const float *b, dw_act act, const float *r, float *y,
                         int M, int N, int K) {
  return linear_fwd(x, w, w_kn, 1, b, act, r, y, M, N, K);
}

void dw_linear_bwd_data(const float *dy, const float *w, int w_kn, float *dx, int M, int N, int K) {
  dw_gemm(0, w_kn, M, K, N, 1.0f, dy, N, w, w_kn ? N : K, 1.0f, dx, K);
}

void dw_linear_bwd_weights(const float *dy, const float *x, int w_kn, float *dw, float *db, int M, int N, int K) {
  if (dw && w_kn) dw_gemm(1, 0, K, N, M, 1.0f, x, K, dy, N, 1.0f, dw, N); /* dW[K,N] += X^T dY */
  else if (dw) dw_gemm(1, 0, N, K, M, 1.0f, dy, N, x, K, 1.0f, dw, K);    /* dW[N,K] += dY^T X */
  if (!db) return;
  /* each thread owns a column range and walks the rows in order: contiguous, vectorised, and every
   * column is summed in the same order whatever the thread count */
#pragma omp parallel if ((int64_t)M * N > (1 << 15))
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int j0 = (int)((int64_t)N * t / nt), j1 = (int)((int64_t)N * (t + 1) / nt);
    for (int i = 0; i < M; i++) {
      const float *row = dy + (size_t)i * N;
      for (int j = j0; j < j1; j++) db[j] += row[j];
    }
  }
}

/* ---- naive references ------------------------------------------------------------------------------------ */

void dwref_bmm(int batch, int ta, int tb, int M, int N, int K, const float *a, const float *b, float *c, int accumulate) {
  for (int s = 0; s < batch; s++) {
    const float *A = a + (size_t)s * M * K, *B = b + (size_t)s * K * N;
    float *C = c + (size_t)s * M * N;
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) {
        double acc = accumulate ? C[(size_t)i * N + j] : 0.0;
        for (int p = 0; p < K; p++)
          acc += (double)(ta ? A[(size_t)p * M + i] : A[(size_t)i * K + p]) *
                 (tb ? B[(size_t)j * K + p] : B[(size_t)p * N + j]);
        C[(size_t)i * N + j] = (float)acc;
      }
  }
}

/* W[N,K] as stored, or W[K,N] when w_kn */
static double ref_w(const float *w, int w_kn, int n, int k, int N, int K) {
  return w_kn ? w[(size_t)k * N + n] : w[(size_t)n * K + k];
}

void dwref_linear_fwd(const float *x, const float *w, int w_kn, const float *b, dw_act act, const float *r, float *y,
                      int M, int N, int K) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double z = b ? b[j] : 0.0;
      for (int p = 0; p < K; p++) z += (double)x[(size_t)i * K + p] * ref_w(w, w_kn, j, p, N, K);
      if (act == DW_ACT_GELU_ERF) z = 0.5 * z * (1.0 + erf(z / sqrt(2.0)));
      if (act == DW_ACT_GELU_TANH) z = 0.5 * z * (1.0 + tanh(0.7978845608028654 * (z + 0.044715 * z * z * z)));
      y[(size_t)i * N + j] = (float)(z + (r ? r[(size_t)i * N + j] : 0.0));
    }
}

void dwref_linear_bwd_data(const float *dy, const float *w, int w_kn, float *dx, int M, int N, int K) {
  for (int i = 0; i < M; i++)
    for (int p = 0; p < K; p++) {
      double s = dx[(size_t)i * K + p];
      for (int j = 0; j < N; j++) s += (double)dy[(size_t)i * N + j] * ref_w(w, w_kn, j, p, N, K);
      dx[(size_t)i * K + p] = (float)s;
    }
}

void dwref_linear_bwd_weights(const float *dy, const float *x, int w_kn, float *dw, float *db, int M, int N, int K) {
  if (dw)
    for (int j = 0; j < N; j++)
      for (int p = 0; p < K; p++) {
        float *d = w_kn ? &dw[(size_t)p * N + j] : &dw[(size_t)j * K + p];
        double s = *d;
        for (int i = 0; i < M; i++) s += (double)dy[(size_t)i * N + j] * x[(size_t)i * K + p];
        *d = (float)s;
      }
  if (db)
    for (int j = 0; j < N; j++) {
      double s = db[j];
      for (int i = 0; i < M; i++) s += dy[(size_t)i * N + j];
      db[j] = (float)s;
    }
}
