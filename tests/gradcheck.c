#include "tests/gradcheck.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/rng.h"

static double *to_double(const float *x, int64_t n) {
  double *d = epee_malloc(sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++) d[i] = x[i];
  return d;
}

static double project(const gc_case *k, double **in, double *out, const float *R, int64_t n_out) {
  k->ref((const double *const *)in, out, k->arg);
  double s = 0.0;
  for (int64_t i = 0; i < n_out; i++) s += out[i] * R[i];
  return s;
}

void gc_make_inputs(const gc_case *k, epee_ctx *c, uint64_t seed, tensor **in) {
  for (int i = 0; i < k->n_in; i++) {
    int64_t n = shape_numel(k->ndim[i], k->shape[i]);
    float *buf = arena_alloc(&c->act, sizeof(float) * (size_t)n);
    if (k->init)
      k->init(i, buf, n, k->arg);
    else
      rng_fill_normal(buf, n, 1.0f, seed, 100 + (uint64_t)i);
    in[i] = tensor_wrap(c, buf, k->ndim[i], k->shape[i]);
    in[i]->requires_grad = k->diff[i];
  }
}

gc_result gc_run(const gc_case *k, uint64_t seed, int samples) {
  gc_result r = {0};
  epee_ctx c;
  ctx_init(&c, 1 << 20, seed);
  tensor *in[GC_MAX_IN] = {0};
  gc_make_inputs(k, &c, seed, in);
  tensor *out = k->fast(&c, in, k->arg);

  /* forward against the double reference */
  double *din[GC_MAX_IN] = {0};
  for (int i = 0; i < k->n_in; i++) din[i] = to_double(in[i]->data, in[i]->n);
  double *ref = epee_malloc(sizeof(double) * (size_t)out->n);
  k->ref((const double *const *)din, ref, k->arg);
  double maxref = 0.0;
  for (int64_t j = 0; j < out->n; j++) maxref = fmax(maxref, fabs(ref[j]));
  for (int64_t j = 0; j < out->n; j++) {
    double e = fabs(out->data[j] - ref[j]) / (fabs(ref[j]) + 1e-3 * maxref + 1e-30);
    if (!(e <= r.fwd_err)) r.fwd_err = isnan(e) ? INFINITY : fmax(r.fwd_err, e);
  }
  r.worst = r.fwd_err;

  /* backward through the tape with a random projection */
  float *R = arena_alloc(&c.act, sizeof(float) * (size_t)out->n);
  rng_fill_normal(R, out->n, 1.0f, seed, 7);
  if (out->requires_grad) tape_backward(&c, out, R);

  for (int i = 0; i < k->n_in; i++) {
    if (!k->diff[i]) continue;
    int64_t n = in[i]->n;
    int64_t m = samples < n ? samples : n;
    double *num = epee_malloc(sizeof(double) * (size_t)m);
    int64_t *idx = epee_malloc(sizeof(int64_t) * (size_t)m);
    double scale = 0.0;
    for (int64_t s = 0; s < m; s++) {
      idx[s] = m == n ? s : (int64_t)(rng_hash(seed, 300 + (uint64_t)i, (uint64_t)s) % (uint64_t)n);
      double x0 = din[i][idx[s]], h = 1e-6 * fmax(1.0, fabs(x0));
      din[i][idx[s]] = x0 + h;
      double fp = project(k, din, ref, R, out->n);
      din[i][idx[s]] = x0 - h;
      double fm = project(k, din, ref, R, out->n);
      din[i][idx[s]] = x0;
      num[s] = (fp - fm) / (2 * h);
      scale = fmax(scale, fabs(num[s]));
    }
    const float *g = in[i]->grad;
    for (int64_t s = 0; s < m; s++) {
      double a = g ? g[idx[s]] : 0.0;
      double e = fabs(a - num[s]) / fmax(fmax(fabs(a), fabs(num[s])), 1e-3 * scale + 1e-30);
      if (isnan(e)) e = INFINITY;
      r.grad_err[i] = fmax(r.grad_err[i], e);
    }
    r.worst = fmax(r.worst, r.grad_err[i]);
    free(num);
    free(idx);
  }
  printf("  [gradcheck] %-40s fwd %.2e", k->name, r.fwd_err);
  for (int i = 0; i < k->n_in; i++)
    if (k->diff[i]) printf("  d%d %.2e", i, r.grad_err[i]);
  printf("\n");
  for (int i = 0; i < k->n_in; i++) free(din[i]);
  free(ref);
  ctx_free(&c);
  return r;
}

void gc_assert(const gc_case *k, uint64_t seed, int samples, double tol) {
  gc_result r = gc_run(k, seed, samples);
  CU_ASSERT(r.worst <= tol);
}

/* Runs fn in a child; true when the child aborted and its stderr holds every string of want[]. */
int gc_aborts_saying(void (*fn)(void), int nwant, const char *const *want) {
  int fd[2];
  if (pipe(fd) != 0) return 0;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 2);
    close(fd[0]);
    fn();
    _exit(0);
  }
  close(fd[1]);
  char msg[4096] = "";
  size_t len = 0;
  ssize_t r;
  while (len < sizeof msg - 1 && (r = read(fd[0], msg + len, sizeof msg - 1 - len)) > 0) len += (size_t)r;
  msg[len] = '\0';
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  int ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  for (int i = 0; i < nwant; i++) ok &= strstr(msg, want[i]) != NULL;
  if (!ok) printf("\n  child stderr: %s", msg);
  return ok;
}
