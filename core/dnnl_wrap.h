/* The only door to oneDNN (its 2.x C API is gone in 3.x): every GEMM of the framework goes through
 * here. Row-major float32; W in PyTorch [out, in] orientation, transposes by flags, never by copies.
 * Each function has a naive reference (dwref_*) that the tests hold it against. */
#ifndef EPEE_DNNL_WRAP_H
#define EPEE_DNNL_WRAP_H

/* Y[M,N] = X[M,K] W[N,K]^T (+ b[N]) */
void dw_linear_fwd(const float *x, const float *w, const float *b, float *y, int M, int N, int K);
/* dX[M,K] += dY[M,N] W[N,K] */
void dw_linear_bwd_data(const float *dy, const float *w, float *dx, int M, int N, int K);
/* dW[N,K] += dY[M,N]^T X[M,K];  db[N] += column sums of dY (either may be NULL) */
void dw_linear_bwd_weights(const float *dy, const float *x, float *dw, float *db, int M, int N, int K);
/* C[M,N] = beta C + op(A) op(B), op(A) [M,K] (A stored [K,M] when ta), op(B) [K,N] (B stored [N,K] when tb) */
void dw_gemm(int ta, int tb, int M, int N, int K, const float *a, const float *b, float beta, float *c);
/* plain dnnl_sgemm C = A B, for benchmarks' raw-GEMM baseline */
void dw_sgemm_raw(int ta, int tb, int M, int N, int K, const float *a, const float *b, float *c);
/* releases oneDNN-side state (none is kept today; kept so callers have one shutdown point) */
void dw_shutdown(void);

/* naive references (double accumulation) */
void dwref_gemm(int ta, int tb, int M, int N, int K, const float *a, const float *b, float beta, float *c);

#endif
