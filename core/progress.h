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
  int64_t start; /* units done before this process (a resumed run): rate and ETA count only what it did */
  double t0, last_draw;
  int tty;
  double plain_every;
  double quiet_for; /* nothing is drawn before this many seconds: a phase that ends sooner prints nothing */
  int drawn;
} progress;

double now_seconds(void); /* monotonic clock */
void progress_start(progress *p, FILE *out, const char *label, int64_t total, const char *unit);
/* progress_start for a phase of a longer job: silent unless it lasts over 2 s */
void progress_start_quiet(progress *p, FILE *out, const char *label, int64_t total, const char *unit);
/* advance by n units; `info` (may be NULL) is appended, e.g. "loss 0.31 lr 2.0e-04" */
void progress_update(progress *p, int64_t n, const char *info);
void progress_finish(progress *p, const char *info);

#endif
