#include "core/profile.h"

#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/progress.h"
#include "core/tensor.h"

const char *const prof_phase_names[] = {"forward", "backward", "other"};

void prof_init(profile *p) {
  memset(p, 0, sizeof *p);
  p->mark = now_seconds();
}

void prof_start(profile *p) { p->mark = now_seconds(); }

static prof_row *row(profile *p, const char *name, prof_phase phase) {
  for (int i = 0; i < p->n; i++)
    if (p->rows[i].phase == phase && (p->rows[i].name == name || !strcmp(p->rows[i].name, name))) return &p->rows[i];
  EPEE_CHECK(p->n < PROF_MAX_ROWS, "more op kinds than the profile's table holds: raise PROF_MAX_ROWS");
  prof_row *r = &p->rows[p->n++];
  memset(r, 0, sizeof *r);
  r->name = name, r->phase = phase;
  return r;
}

/* Forward FLOPs of the GEMM ops (the backward does twice as many: the data and the weight gradients), 0 for the
 * others. Shapes as the ops take them (core/ops.h). */
static double gemm_flops(const char *op, const tensor *out, const tensor *const *in) {
  /* "linear", "linear+gelu", ...: the product of the fused ops counts, not their epilogue */
  if (!strncmp(op, "linear", 6)) return 2.0 * (double)out->n * in[1]->shape[1]; /* W [N, K] */
  if (!strncmp(op, "conv1d", 6)) return 2.0 * (double)out->n * in[1]->shape[0]; /* W [K, N] */
  if (!strcmp(op, "patch_embed")) return 2.0 * (double)out->n * (double)(in[1]->n / in[1]->shape[0]); /* [D, CPP] */
  if (!strcmp(op, "bmm")) return 2.0 * (double)out->n * in[0]->shape[in[0]->ndim - 1];
  if (!strcmp(op, "attention")) return 4.0 * (double)in[0]->n * in[0]->shape[1]; /* q [B, T, D]: QK^T and PV */
  return 0;
}

/* Bytes an elementwise-like op moves: its inputs and output once forward; backward reads the inputs and the
 * output's gradient and writes the inputs' gradients. Lookups move only the rows they touch. */
static double bytes_moved(const char *op, const tensor *out, int nin, const tensor *const *in, prof_phase phase) {
  if (!strcmp(op, "embedding") || !strcmp(op, "gather_rows") || !strcmp(op, "narrow"))
    return 8.0 * (double)out->n;
  double sum_in = 0;
  for (int i = 0; i < nin; i++) sum_in += in[i] ? (double)in[i]->n : 0;
  return 4.0 * (phase == PROF_FORWARD ? sum_in + (double)out->n : 2 * sum_in + (double)out->n);
}

static void account(profile *p, const char *op, const tensor *out, int nin, const tensor *const *in, prof_phase ph,
                    double seconds) {
  prof_row *r = row(p, op, ph);
  double flops = gemm_flops(op, out, in);
  r->gemm = flops > 0;
  r->work += flops > 0 ? flops * (ph == PROF_FORWARD ? 1 : 2) : bytes_moved(op, out, nin, in, ph);
  r->seconds += seconds;
  r->calls++;
}

void prof_forward(profile *p, const char *op, const tensor *out, int nin, const tensor *const *in) {
  double t = now_seconds();
  account(p, op, out, nin, in, PROF_FORWARD, t - p->mark);
  p->mark = t;
}

void prof_backward(profile *p, const char *op, const tensor *out, int nin, const tensor *const *in, double seconds) {
  account(p, op, out, nin, in, PROF_BACKWARD, seconds);
}

void prof_add(profile *p, const char *name, prof_phase phase, double seconds, double bytes) {
  prof_row *r = row(p, name, phase);
  r->seconds += seconds;
  r->work += bytes;
  r->calls++;
}

double prof_clock(const profile *p) { return p ? now_seconds() : 0; }

void prof_lap(profile *p, double *since, const char *name, prof_phase phase, double bytes) {
  if (!p) return;
  double t = now_seconds();
  prof_add(p, name, phase, t - *since, bytes);
  *since = t;
}

void prof_step(profile *p, double seconds) {
  p->steps++;
  p->step_seconds += seconds;
}

/* ---- reporting: rows by time, per step ------------------------------------------------------------------- */

static int by_time(const void *a, const void *b) {
  double x = ((const prof_row *)a)->seconds, y = ((const prof_row *)b)->seconds;
  return (x < y) - (x > y);
}

/* The rows sorted, and the unattributed rest of the steps' time as a last row. */
static int sorted(const profile *p, prof_row *out) {
  double sum = 0;
  for (int i = 0; i < p->n; i++) out[i] = p->rows[i], sum += p->rows[i].seconds;
  qsort(out, (size_t)p->n, sizeof *out, by_time);
  out[p->n] = (prof_row){.name = "(unattributed)", .phase = PROF_OTHER, .seconds = p->step_seconds - sum};
  return p->n + 1;
}

/* GFLOP/s of a GEMM row, GB/s of another; 0 when unknown */
static double rate(const prof_row *r) { return r->seconds > 0 && r->work > 0 ? r->work / r->seconds * 1e-9 : 0; }

void prof_print(const profile *p, FILE *f) {
  prof_row rows[PROF_MAX_ROWS + 1];
  int n = sorted(p, rows);
  double steps = p->steps > 0 ? (double)p->steps : 1, step_ms = 1e3 * p->step_seconds / steps;
  fprintf(f, "profile: %lld steps, %.1f ms per step\n", (long long)p->steps, step_ms);
  fprintf(f, "  %-8s %-16s %9s %7s %10s %14s\n", "phase", "op", "ms/step", "share", "calls/step", "rate");
  for (int i = 0; i < n; i++) {
    const prof_row *r = &rows[i];
    char rt[32] = "";
    if (rate(r) > 0) snprintf(rt, sizeof rt, "%.1f %s", rate(r), r->gemm ? "GFLOP/s" : "GB/s");
    fprintf(f, "  %-8s %-16s %9.3f %6.1f%% %10.1f %14s\n", prof_phase_names[r->phase], r->name,
            1e3 * r->seconds / steps, p->step_seconds > 0 ? 100 * r->seconds / p->step_seconds : 0,
            (double)r->calls / steps, rt);
  }
}

char *prof_json(const profile *p) {
  prof_row rows[PROF_MAX_ROWS + 1];
  int n = sorted(p, rows);
  double steps = p->steps > 0 ? (double)p->steps : 1;
  json_t *o = json_object(), *a = json_array();
  json_object_set_new(o, "steps", json_integer(p->steps));
  json_object_set_new(o, "step_ms", json_num(1e3 * p->step_seconds / steps, 3));
  for (int i = 0; i < n; i++) {
    const prof_row *r = &rows[i];
    json_t *j = json_object();
    json_object_set_new(j, "op", json_string(r->name));
    json_object_set_new(j, "phase", json_string(prof_phase_names[r->phase]));
    json_object_set_new(j, "ms_per_step", json_num(1e3 * r->seconds / steps, 3));
    json_object_set_new(j, "share", json_num(p->step_seconds > 0 ? r->seconds / p->step_seconds : 0, 4));
    json_object_set_new(j, "calls_per_step", json_num((double)r->calls / steps, 2));
    if (rate(r) > 0) json_object_set_new(j, r->gemm ? "gflops" : "gbytes_per_s", json_num(rate(r), 2));
    json_array_append_new(a, j);
  }
  json_object_set_new(o, "rows", a);
  return json_text(o, 2);
}
