#include "core/progress.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_time(char *buf, size_t n, double s) {
  if (s < 0 || s > 1e7) {
    snprintf(buf, n, "--:--");
    return;
  }
  int t = (int)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(buf, n, "%02d:%02d", t / 60, t % 60);
}

static void draw(progress *p, const char *info, int final) {
  double el = now_seconds() - p->t0;
  double rate = el > 0 ? (double)(p->done - p->start) / el : 0.0;
  double eta = rate > 0 ? (double)(p->total - p->done) / rate : -1;
  char e1[32], e2[32];
  fmt_time(e1, sizeof e1, el);
  fmt_time(e2, sizeof e2, eta);
  double frac = p->total > 0 ? (double)p->done / (double)p->total : 0.0;
  if (p->tty) {
    char bar[31];
    int w = (int)(frac * 30 + 0.5);
    for (int i = 0; i < 30; i++) bar[i] = i < w ? '#' : '.';
    bar[30] = 0;
    fprintf(p->out, "\r\033[K%s [%s] %3.0f%% %lld/%lld %.1f %s/s %s<%s %s", p->label, bar, 100 * frac,
            (long long)p->done, (long long)p->total, rate, p->unit, e1, e2, info ? info : "");
    if (final) fputc('\n', p->out);
  } else {
    fprintf(p->out, "%s %lld/%lld (%.0f%%) %.1f %s/s elapsed %s eta %s %s\n", p->label, (long long)p->done,
            (long long)p->total, 100 * frac, rate, p->unit, e1, e2, info ? info : "");
  }
  fflush(p->out);
  p->drawn = 1;
}

void progress_start(progress *p, FILE *out, const char *label, int64_t total, const char *unit) {
  memset(p, 0, sizeof *p);
  p->out = out;
  p->label = label;
  p->unit = unit;
  p->total = total;
  p->t0 = p->last_draw = now_seconds();
  p->tty = isatty(fileno(out));
  /* EPEE_PROGRESS_EVERY: seconds between plain lines (a sweep reading its trials' output asks for more) */
  const char *every = getenv("EPEE_PROGRESS_EVERY");
  p->plain_every = every && atof(every) > 0 ? atof(every) : 10.0;
}

void progress_start_quiet(progress *p, FILE *out, const char *label, int64_t total, const char *unit) {
  progress_start(p, out, label, total, unit);
  p->quiet_for = 2.0;
}

void progress_update(progress *p, int64_t n, const char *info) {
  p->done += n;
  double t = now_seconds();
  if (t - p->t0 < p->quiet_for) return;
  if (!p->drawn || t - p->last_draw >= (p->tty ? 0.1 : p->plain_every)) {
    p->last_draw = t;
    draw(p, info, 0);
  }
}

void progress_finish(progress *p, const char *info) {
  if (p->drawn || now_seconds() - p->t0 >= p->quiet_for) draw(p, info, 1);
}
