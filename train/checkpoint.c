#include "train/checkpoint.h"

#include <math.h>
#include <string.h>

#include "core/h5io.h"
#include "infer/model_file.h"

#define CKPT_FORMAT "epee-checkpoint"
#define CKPT_VERSION "2" /* 2: sealed (core/h5io.h) */
/* counters, and the best metric's double bits (exact across resume, so best/early-stop decisions match) */
enum { ST_STEP, ST_EPOCH, ST_BATCH, ST_BEST_STEP, ST_EVALS, ST_TOTAL, ST_ADAM_T, ST_BEST_BITS, ST_N };

static int all_finite(const float *x, int64_t n) {
  int ok = 1;
#pragma omp parallel for reduction(& : ok) schedule(static)
  for (int64_t i = 0; i < n; i++) ok &= isfinite(x[i]) != 0;
  return ok;
}

int checkpoint_save(const char *path, const param_store *ps, const adamw *opt, const float *best,
                    const train_state *st, const char *config_json, epee_err *e) {
  if (!all_finite(ps->data, ps->total))
    return epee_errf(e, "%s: not written: the parameters contain NaN or Inf", path);
  char tmp[4200];
  hid_t f = h5_create_tmp(path, tmp, sizeof tmp, e);
  if (f < 0) return -1;
  int n = (int)ps->total;
  uint64_t s[ST_N] = {(uint64_t)st->step, (uint64_t)st->epoch, (uint64_t)st->batch, (uint64_t)st->best_step,
                      (uint64_t)st->evals_since_best, (uint64_t)st->total_steps, (uint64_t)opt->t, 0};
  memcpy(&s[ST_BEST_BITS], &st->best_metric, sizeof(double));
  int ok = h5_write_attr_str(f, "format", CKPT_FORMAT, e) == 0 &&
           h5_write_attr_str(f, "format_version", CKPT_VERSION, e) == 0 &&
           h5_write_attr_str(f, "config", config_json ? config_json : "{}", e) == 0 &&
           weights_write(f, ps, "weights", e) == 0 &&
           h5_write_floats(f, "optimizer/m", ps->m, 1, &n, e) == 0 &&
           h5_write_floats(f, "optimizer/v", ps->v, 1, &n, e) == 0 &&
           h5_write_u64(f, "state/counters", s, ST_N, e) == 0 &&
           (!best || h5_write_floats(f, "best/params", best, 1, &n, e) == 0);
  return h5_commit(f, tmp, path, ok, e);
}

int checkpoint_load(const char *path, param_store *ps, adamw *opt, float *best, int *has_best, train_state *st,
                    epee_err *e) {
  hid_t f = h5_open_sealed(path, e);
  if (f < 0) return -1;
  int n = (int)ps->total, rc = -1;
  uint64_t s[ST_N];
  char *fmt = h5_read_attr_str(f, path, "format", e);
  if (!fmt) goto done;
  if (strcmp(fmt, CKPT_FORMAT) != 0) {
    epee_errf(e, "%s: format '%s' is not an epee-train checkpoint", path, fmt);
    goto done;
  }
  if (weights_read(f, path, ps, "weights", e) || h5_read_floats(f, path, "optimizer/m", ps->m, 1, &n, e) ||
      h5_read_floats(f, path, "optimizer/v", ps->v, 1, &n, e) || h5_read_u64(f, path, "state/counters", s, ST_N, e))
    goto done;
  *has_best = h5_exists(f, "best/params");
  if (*has_best && h5_read_floats(f, path, "best/params", best, 1, &n, e)) goto done;
  st->step = (int64_t)s[ST_STEP];
  st->epoch = (int64_t)s[ST_EPOCH];
  st->batch = (int64_t)s[ST_BATCH];
  st->best_step = (int64_t)s[ST_BEST_STEP];
  st->evals_since_best = (int64_t)s[ST_EVALS];
  st->total_steps = (int64_t)s[ST_TOTAL];
  memcpy(&st->best_metric, &s[ST_BEST_BITS], sizeof(double));
  opt->t = (int64_t)s[ST_ADAM_T];
  rc = 0;
done:
  free(fmt);
  H5Fclose(f);
  return rc;
}
