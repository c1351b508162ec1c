/* Progress for long work: a redrawn bar with rate and ETA on a terminal, plain lines otherwise
 * (every `plain_every` seconds), so logs and CI output stay readable. */
#ifndef EPEE_PROGRESS_H
#define EPEE_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
  FILE *out;
  const char *label, *unit;
  int64_t total, done;
  double t0, last_draw;
  int tty;
  double plain_every;
} progress;

double now_seconds(void); /* monotonic clock */
void progress_start(progress *p, FILE *out, const char *label, int64_t total, const char *unit);
/* advance by n units; `info` (may be NULL) is appended, e.g. "loss 0.31 lr 2.0e-04" */
void progress_update(progress *p, int64_t n, const char *info);
void progress_finish(progress *p, const char *info);

#endif
