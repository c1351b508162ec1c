/* Where a training step's time goes, per op kind with forward and backward apart: seconds, calls and work, so
 * that every row gets a rate (GFLOP/s for the GEMM ops linear, conv1d, bmm, attention, patch_embed; GB/s for the
 * rest, counting each operand read or written once: an estimate of the traffic, not a measurement).
 *
 * The hooks sit in the tape (core/tensor.c): ops put themselves on the tape when they finish, so a forward op's
 * time is the time since the previous one finished (or since ctx_reset); a backward op's time is its backward
 * call. The trainer adds what happens outside the tape (the batch, the optimizer) with prof_add. The cost is one
 * clock read and a short table lookup per op; the profile is off (NULL) unless asked for.
 *
 *   profile p; prof_init(&p); ctx.prof = &p;   ... steps, prof_step(&p, seconds) after each ...
 *   prof_print(&p, stdout); char *json = prof_json(&p); */
#ifndef EPEE_PROFILE_H
#define EPEE_PROFILE_H

#include <stdint.h>
#include <stdio.h>

struct tensor;

typedef enum { PROF_FORWARD, PROF_BACKWARD, PROF_OTHER } prof_phase;
extern const char *const prof_phase_names[];

typedef struct {
  const char *name; /* the op's name on the tape ("linear", "gelu", ...) or the trainer's ("adamw", ...) */
  prof_phase phase;
  int gemm;         /* work is FLOPs (else bytes) */
  double seconds, work;
  int64_t calls;
} prof_row;

enum { PROF_MAX_ROWS = 96 };
typedef struct profile {
  prof_row rows[PROF_MAX_ROWS];
  int n;
  double mark;          /* when the last forward op finished (or the step started) */
  int64_t steps;
  double step_seconds;  /* wall time of the steps, as the trainer measured them */
} profile;

void prof_init(profile *p);
/* The step starts now (ctx_reset calls it). */
void prof_start(profile *p);
/* A forward op `op` just finished, with its inputs in[nin] (NULL entries allowed) and output out. */
void prof_forward(profile *p, const char *op, const struct tensor *out, int nin, const struct tensor *const *in);
/* The backward of that op took `seconds`. */
void prof_backward(profile *p, const char *op, const struct tensor *out, int nin, const struct tensor *const *in,
                   double seconds);
/* Anything else (name must outlive the profile: a string literal) with its work in bytes (0: unknown). */
void prof_add(profile *p, const char *name, prof_phase phase, double seconds, double bytes);
/* For timing a stretch outside the tape: t = prof_clock(p); ...; prof_lap(p, &t, "adamw", PROF_OTHER, bytes) adds
 * the time since t and restarts t. Both do nothing when p is NULL (not profiling). */
double prof_clock(const profile *p);
void prof_lap(profile *p, double *since, const char *name, prof_phase phase, double bytes);
/* One step ended; it took `seconds` of wall time in all. */
void prof_step(profile *p, double seconds);

/* The table, per step: phase, op, ms, share of the step, calls, GFLOP/s or GB/s; the rows sorted by time, the
 * unattributed rest last. */
void prof_print(const profile *p, FILE *f);
/* The same as a JSON document (malloc'ed text): {"steps", "step_ms", "rows": [{"op", "phase", "ms_per_step",
 * "share", "calls_per_step", "gflops" | "gbytes_per_s"}, ...]}. */
char *prof_json(const profile *p);

#endif
