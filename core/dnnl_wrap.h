/* The only door to oneDNN (its 2.x C API is gone in 3.x): every GEMM of the framework goes through here.
 * Row-major float32; W stays in PyTorch [out, in] orientation, transposes are expressed by strides or
 * flags, never by copies. oneDNN failures stop with the call and the shape (epee_fatal).
 *
 * Per pass, the faster of two oneDNN routes as measured (the .c says how): matmul primitives for the
 * linear forward (16 rows or more, bias fused) and for dw_bmm; dnnl_sgemm for the linear backward, small
 * forwards and dw_gemm. Primitives are created once per (batch, shape, transposes, bias, accumulate,
 * threads) and kept in a bounded cache with one CPU engine and stream, all made on first use under a
 * mutex, so concurrent callers are safe. dw_shutdown frees them (call it once at exit; the wrapper
 * re-initialises if used again).
 *
 * Each entry point has a naive reference (dwref_*, plain loops with double accumulation) for the tests. */
#ifndef EPEE_DNNL_WRAP_H
#define EPEE_DNNL_WRAP_H

#include <stddef.h>
#include <stdio.h>

/* Activations a linear forward can apply as a matmul post-op (oneDNN's gelu_erf and gelu_tanh). */
typedef enum { DW_ACT_NONE, DW_ACT_GELU_ERF, DW_ACT_GELU_TANH } dw_act;
/* Linear layers, W stored [N,K] (PyTorch nn.Linear) or, when w_kn, [K,N] (HF Conv1D); op(W) is [K,N] either way.
 * Y[M,N] = act(X[M,K] op(W) + b[N]) + R[M,N]: b and R may be NULL. Returns 1 when it applied all of it as the
 * matmul primitive's post-ops (16 rows or more), 0 when it applied only the bias (the sgemm route) and the caller
 * must still apply act and R. */
int dw_linear_fwd(const float *x, const float *w, int w_kn, const float *b, dw_act act, const float *r, float *y, int M,
                  int N, int K);
/* dw_linear_fwd for weights that do not change until dw_forget_weights is called on them (serving): the first call
 * keeps a copy of W in the layout oneDNN's matmul runs fastest from, and the calls of 16 rows or more use it. */
int dw_linear_fwd_frozen(const float *x, const float *w, int w_kn, const float *b, dw_act act, const float *r, float *y,
                         int M, int N, int K);
/* Drops the packed copies of any weights in [lo, lo + bytes): call it before that memory is freed or rewritten. */
void dw_forget_weights(const void *lo, size_t bytes);
/* dX[M,K] += dY[M,N] op(W)^T */
void dw_linear_bwd_data(const float *dy, const float *w, int w_kn, float *dx, int M, int N, int K);
/* dW += the gradient of W in its stored layout (dY^T X or X^T dY);  db[N] += column sums of dY (either may be
 * NULL) */
void dw_linear_bwd_weights(const float *dy, const float *x, int w_kn, float *dw, float *db, int M, int N, int K);
/* For i < batch: C_i[M,N] = op(A_i) op(B_i), or += when accumulate. op(A_i) is [M,K] (A_i stored [K,M]
 * when ta), op(B_i) is [K,N] (B_i stored [N,K] when tb); slices are contiguous, one after the other. */
void dw_bmm(int batch, int ta, int tb, int M, int N, int K, const float *a, const float *b, float *c, int accumulate);
/* One strided GEMM, C = alpha op(A) op(B) + beta C, leading dims as BLAS (row-major). Runs single-threaded
 * when called inside an OpenMP parallel region, so callers can parallelise over independent GEMMs
 * (attention does, one per (batch, head) on strided head slices). */
void dw_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc);
/* Plain dnnl_sgemm C[M,N] = op(A) op(B) on contiguous operands: the benchmarks' raw-GEMM baseline. */
void dw_sgemm_raw(int ta, int tb, int M, int N, int K, const float *a, const float *b, float *c);
/* One line naming what a benchmark figure was measured on: the CPU model (/proc/cpuinfo), the ISA oneDNN
 * dispatches to (dnnl_get_effective_cpu_isa), the compiler's vector width and the OpenMP thread count. */
void dw_describe_machine(FILE *f);
/* Releases the primitive cache, the stream and the engine. */
void dw_shutdown(void);

/* naive references, same contracts as above */
void dwref_linear_fwd(const float *x, const float *w, int w_kn, const float *b, dw_act act, const float *r, float *y,
                      int M, int N, int K); /* act and R always applied */
void dwref_linear_bwd_data(const float *dy, const float *w, int w_kn, float *dx, int M, int N, int K);
void dwref_linear_bwd_weights(const float *dy, const float *x, int w_kn, float *dw, float *db, int M, int N, int K);
void dwref_bmm(int batch, int ta, int tb, int M, int N, int K, const float *a, const float *b, float *c, int accumulate);

#endif
