/* Running a sweep: each trial is an epee-train process of its own (a crash, a NaN or a leak in one trial cannot
 * take the sweep down), in its own process group so that Ctrl-C reaches the sweep, which then asks every running
 * trial to save a checkpoint. The trials' output goes to TRIAL/train.log; their progress lines feed one line per
 * running trial and an overall bar. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/machine.h"
#include "core/progress.h"
#include "train/run_dir.h"
#include "train/sweep.h"

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) { stop_signal = sig; }

typedef struct {
  int t;            /* trial index */
  pid_t pid;
  int fd;           /* the read end of its stdout + stderr */
  FILE *log;
  char buf[4096];   /* a partial line */
  size_t len;
  char last[256];   /* its latest progress line */
  char error[512];  /* its latest "epee-train: ..." line */
  double t0;
} child;

static char *path_in(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *s = epee_malloc(n);
  snprintf(s, n, "%s/%s", dir, name);
  return s;
}

static void remove_in(const char *dir, const char *name) {
  char *p = path_in(dir, name);
  unlink(p);
  free(p);
}

/* The argv of trial t: `--resume DIR` when it has a checkpoint, else the base config with its overrides. */
static char **trial_argv(const sweep_plan *p, int t, const char *exe, const char *dir, int resume, int overwrite) {
  int n = 0;
  char **a = epee_malloc(sizeof(char *) * (size_t)(p->n_fixed + p->trials[t].n + 6));
  a[n++] = epee_strdup(exe);
  if (resume) {
    a[n++] = epee_strdup("--resume");
    a[n++] = epee_strdup(dir);
  } else {
    if (overwrite) a[n++] = epee_strdup("--overwrite");
    a[n++] = epee_strdup(p->config);
    for (int i = 0; i < p->n_fixed; i++) a[n++] = epee_strdup(p->fixed[i]);
    for (int i = 0; i < p->trials[t].n; i++) a[n++] = epee_strdup(p->trials[t].set[i]);
    char *q = sweep_yaml_scalar(dir);
    size_t len = strlen(q) + 9;
    a[n] = epee_malloc(len);
    snprintf(a[n++], len, "run.dir=%s", q);
    free(q);
  }
  a[n] = NULL;
  return a;
}

static int start(const sweep_plan *p, const sweep_options *o, int t, const trial_result *r, child *c, epee_err *e) {
  char *dir = sweep_trial_dir(p, t);
  int resume = !o->overwrite && r->status == TRIAL_INTERRUPTED;
  struct stat st;
  char *cfg = path_in(dir, "config.yaml");
  int overwrite = stat(cfg, &st) == 0; /* a run of this very config (sweep_plan_check) that never checkpointed */
  free(cfg);
  if (!resume) /* its results must come from this run */
    for (const char *const *f = (const char *const[]){"results.json", "summary.json", "model.h5", NULL}; *f; f++)
      remove_in(dir, *f);
  if (mkdir(p->dir, 0777) && errno != EEXIST) {
    free(dir);
    return epee_errf(e, "%s: cannot create: %s", p->dir, strerror(errno));
  }
  mkdir(dir, 0777);
  char *logp = path_in(dir, "train.log");
  memset(c, 0, sizeof *c);
  c->t = t;
  c->log = fopen(logp, "a");
  free(logp);
  int fds[2];
  if (!c->log || pipe(fds)) {
    if (c->log) fclose(c->log);
    free(dir);
    return epee_errf(e, "%s: cannot start the trial: %s", p->trials[t].name, strerror(errno));
  }
  if (sweep_trial_record(dir, TRIAL_RUNNING, "", r->seconds, e)) {
    fclose(c->log), close(fds[0]), close(fds[1]);
    free(dir);
    return -1;
  }
  char **argv = trial_argv(p, t, o->exe, dir, resume, overwrite || o->overwrite);
  fprintf(c->log, "=== sweep: %s", argv[0]);
  for (char **a = argv + 1; *a; a++) fprintf(c->log, " %s", *a);
  fprintf(c->log, "\n");
  fflush(c->log);
  fflush(stdout), fflush(stderr);
  pid_t parent = getpid();
  c->pid = fork();
  if (c->pid == 0) {
    setpgid(0, 0); /* the terminal's Ctrl-C goes to the sweep, which forwards it once */
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* a sweep killed outright: its trials checkpoint and stop, to be resumed */
    if (getppid() != parent) _exit(128 + SIGTERM);
    dup2(fds[1], 1), dup2(fds[1], 2);
    close(fds[0]), close(fds[1]);
    setenv("EPEE_PROGRESS_EVERY", "2", 1);
    execv(argv[0], argv);
    fprintf(stderr, "epee-train: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  for (char **a = argv; *a; a++) free(*a);
  free(argv);
  close(fds[1]);
  free(dir);
  if (c->pid < 0) {
    fclose(c->log), close(fds[0]);
    return epee_errf(e, "cannot fork a trial: %s", strerror(errno));
  }
  c->fd = fds[0];
  c->t0 = now_seconds();
  return 0;
}

/* The lines read from a trial: logged; progress and errors kept for the display and the table. */
static void take_line(child *c, const char *line) {
  fprintf(c->log, "%s\n", line);
  if (!strncmp(line, "epee-train: ", 12)) snprintf(c->error, sizeof c->error, "%.511s", line + 12);
  else if (strstr(line, " eta ")) snprintf(c->last, sizeof c->last, "%.255s", line);
}

/* Reads what is there; 1 at end of file. */
static int drain(child *c) {
  char tmp[4096];
  ssize_t n = read(c->fd, tmp, sizeof tmp);
  if (n < 0 && errno == EINTR) return 0;
  if (n <= 0) {
    if (c->len) c->buf[c->len] = 0, take_line(c, c->buf), c->len = 0;
    return 1;
  }
  for (ssize_t i = 0; i < n; i++) {
    char ch = tmp[i];
    if (ch == '\n' || ch == '\r' || c->len == sizeof c->buf - 1) {
      c->buf[c->len] = 0;
      if (c->len) take_line(c, c->buf);
      c->len = 0;
      if (ch == '\n' || ch == '\r') continue;
    }
    c->buf[c->len++] = ch;
  }
  return 0;
}

/* ---- the display ----------------------------------------------------------------------------------------- */

typedef struct {
  int tty, width, drawn;     /* drawn: lines of the last redraw, to move back over them */
  double t0, last_plain;
  int done_now;              /* trials finished by this process, for the ETA */
  double done_seconds;
} display;

static void fmt_clock(char *buf, size_t n, double s) {
  if (!(s >= 0) || s > 1e7) snprintf(buf, n, "--:--");
  else if (s >= 3600) snprintf(buf, n, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
  else snprintf(buf, n, "%02d:%02d", (int)s / 60, (int)s % 60);
}

static void status_line(const sweep_plan *p, const trial_result *r, int running, int jobs, const display *d, char *buf,
                        size_t n) {
  int done = 0, failed = 0;
  for (int t = 0; t < p->n_trials; t++) done += r[t].status == TRIAL_DONE, failed += r[t].status == TRIAL_FAILED;
  int left = p->n_trials - done - failed;
  double el = now_seconds() - d->t0;
  double eta = d->done_now ? d->done_seconds / d->done_now * (left - 0.5 * running) / (jobs < left ? jobs : left) : -1;
  char e1[32], e2[32], bar[21];
  fmt_clock(e1, sizeof e1, el);
  fmt_clock(e2, sizeof e2, left ? eta : 0);
  int w = (int)(20.0 * (done + failed) / p->n_trials + 0.5);
  for (int i = 0; i < 20; i++) bar[i] = i < w ? '#' : '.';
  bar[20] = 0;
  char f[32] = "";
  if (failed) snprintf(f, sizeof f, ", %d failed", failed);
  snprintf(buf, n, "sweep [%s] %d/%d trials done%s, %d running, elapsed %s eta %s", bar, done, p->n_trials, f, running,
           e1, e2);
}

static void draw(display *d, const sweep_plan *p, const trial_result *r, const child *c, int nc, int jobs, int force) {
  double now = now_seconds();
  char line[600];
  if (d->tty) {
    if (d->drawn) fprintf(stdout, "\033[%dA", d->drawn);
    for (int i = 0; i < nc; i++) {
      snprintf(line, sizeof line, "  [%d] %s: %s", c[i].t + 1, p->trials[c[i].t].name,
               c[i].last[0] ? c[i].last : "starting");
      fprintf(stdout, "\r\033[K%.*s\n", d->width - 1, line);
    }
    status_line(p, r, nc, jobs, d, line, sizeof line);
    fprintf(stdout, "\r\033[K%.*s\n\033[J", d->width - 1, line);
    d->drawn = nc + 1;
  } else if (force || now - d->last_plain >= 30) {
    for (int i = 0; i < nc; i++)
      printf("  [%d] %s: %s\n", c[i].t + 1, p->trials[c[i].t].name, c[i].last[0] ? c[i].last : "starting");
    status_line(p, r, nc, jobs, d, line, sizeof line);
    printf("%s\n", line);
    d->last_plain = now;
  }
  fflush(stdout);
}

/* A line above the live block (a trial started or ended). */
static void say(display *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(display *d, const char *fmt, ...) {
  if (d->tty && d->drawn) fprintf(stdout, "\033[%dA\033[J", d->drawn), d->drawn = 0;
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}

/* ---- the loop -------------------------------------------------------------------------------------------- */

/* A finished process: its status recorded, the table rewritten. */
static void finish(const sweep_plan *p, const sweep_options *o, child *c, int wstatus, trial_result *r, display *d,
                   int *best, epee_err *e) {
  int t = c->t;
  double secs = now_seconds() - c->t0;
  char *dir = sweep_trial_dir(p, t);
  int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  trial_status s = code == 0 ? TRIAL_DONE : code > 128 ? TRIAL_INTERRUPTED : TRIAL_FAILED;
  if (s == TRIAL_FAILED && !c->error[0]) snprintf(c->error, sizeof c->error, "exit status %d (see train.log)", code);
  epee_err ignore;
  if (sweep_trial_record(dir, s, s == TRIAL_FAILED ? c->error : "", r[t].seconds + secs, &ignore))
    say(d, "sweep: %s\n", ignore.msg);
  fprintf(c->log, "=== sweep: %s after %.0f s%s%s\n", trial_status_names[s], secs, s == TRIAL_FAILED ? ": " : "",
          s == TRIAL_FAILED ? c->error : "");
  fclose(c->log);
  close(c->fd);
  sweep_trial_read(dir, &r[t]);
  free(dir);
  if (s == TRIAL_DONE) {
    d->done_now++, d->done_seconds += secs;
    say(d, "sweep: trial %d/%d %s done in %.0f s: EPEE dev acc %.4f at %.2f layers (%.2fx layers, %.2fx wall)\n",
        t + 1, p->n_trials, p->trials[t].name, secs, r[t].epee_dev_acc, r[t].mean_exit, r[t].layer_speedup,
        r[t].wall_speedup);
  } else if (s == TRIAL_FAILED) {
    say(d, "sweep: trial %d/%d %s FAILED: %s\n", t + 1, p->n_trials, p->trials[t].name, c->error);
  } else {
    say(d, "sweep: trial %d/%d %s interrupted (rerun the sweep to resume it)\n", t + 1, p->n_trials,
        p->trials[t].name);
  }
  if (sweep_report(p, &o->best, r, best, e)) say(d, "sweep: %s\n", e->msg);
}

int sweep_run(const sweep_plan *p, const sweep_options *o, epee_err *e) {
  int cores = machine_cores();
  if (o->jobs > 1 && o->jobs * o->threads > cores)
    return epee_errf(e, "--jobs %d x run.threads %d = %d threads, over the %d cores this process may use: lower "
                        "--jobs or run.threads", o->jobs, o->threads, o->jobs * o->threads, cores);
  int lock = run_dir_lock(p->dir, e); /* one sweep at a time in a folder; trials lock their own folders */
  if (lock < 0) return -1;
  run_dir_remove_stale_tmp(p->dir);
  char *yaml = path_in(p->dir, "sweep.yaml");
  int rc = sweep_plan_write(p, yaml, e);
  free(yaml);
  if (rc) {
    run_dir_unlock(lock);
    return -1;
  }
  int n = p->n_trials, best = -1;
  trial_result *r = epee_malloc(sizeof(trial_result) * (size_t)n);
  int *queue = epee_malloc(sizeof(int) * (size_t)n), nq = 0, skipped = 0, resumes = 0;
  for (int t = 0; t < n; t++) {
    char *dir = sweep_trial_dir(p, t);
    sweep_trial_read(dir, &r[t]);
    free(dir);
    if (o->overwrite) r[t].status = TRIAL_PENDING, r[t].seconds = 0;
    if (r[t].status == TRIAL_DONE) skipped++;
    else queue[nq++] = t, resumes += r[t].status == TRIAL_INTERRUPTED;
  }
  printf("sweep %s: %d trials (%s); %d finished (skipped), %d to resume, %d to start; %d at a time, %d threads each\n",
         p->dir, n, p->method == SWEEP_RANDOM ? "random" : "grid", skipped, resumes, nq - resumes, o->jobs, o->threads);
  fflush(stdout);

  struct sigaction sa = {0}, ign = {0}, old[4];
  sa.sa_handler = on_signal;
  ign.sa_handler = SIG_IGN; /* a closed output (`| head`) must not kill the sweep and orphan its trials */
  const int sigs[4] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
  stop_signal = 0;
  for (int i = 0; i < 4; i++) sigaction(sigs[i], i < 3 ? &sa : &ign, &old[i]);

  display d = {.tty = isatty(1), .width = 120, .t0 = now_seconds(), .last_plain = now_seconds()};
  struct winsize ws;
  if (d.tty && ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) d.width = ws.ws_col;
  child *c = epee_malloc(sizeof(child) * (size_t)(o->jobs > 0 ? o->jobs : 1));
  int nc = 0, next = 0, forwarded = 0;
  rc = 0;
  while (next < nq || nc > 0) {
    while (!stop_signal && !rc && nc < o->jobs && next < nq) {
      int t = queue[next++];
      if (start(p, o, t, &r[t], &c[nc], e)) {
        rc = -1;
        break;
      }
      say(&d, "sweep: trial %d/%d %s: %s\n", t + 1, n, p->trials[t].name,
          !o->overwrite && r[t].status == TRIAL_INTERRUPTED ? "resuming from its checkpoint" : "starting");
      r[t].status = TRIAL_RUNNING;
      nc++;
    }
    if ((stop_signal || rc) && !forwarded) {
      for (int i = 0; i < nc; i++) kill(c[i].pid, stop_signal ? stop_signal : SIGTERM);
      forwarded = 1, next = nq;
    }
    if (nc == 0) break;
    struct pollfd pf[64];
    unsigned np = (unsigned)(nc < 64 ? nc : 64);
    for (unsigned i = 0; i < np; i++) pf[i] = (struct pollfd){.fd = c[i].fd, .events = POLLIN};
    if (poll(pf, np, 1000) > 0)
      for (int i = 0; i < (int)np; i++) {
        if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)) || !drain(&c[i])) continue;
        int ws_;
        while (waitpid(c[i].pid, &ws_, 0) < 0 && errno == EINTR) {}
        finish(p, o, &c[i], ws_, r, &d, &best, e);
        c[i] = c[--nc];
        pf[i] = pf[np - 1], np--, i--;
      }
    draw(&d, p, r, c, nc, o->jobs, 0);
  }
  for (int i = 0; i < 4; i++) sigaction(sigs[i], &old[i], NULL);
  free(c);
  int failed = 0, left = 0;
  for (int t = 0; t < n; t++) failed += r[t].status == TRIAL_FAILED, left += r[t].status != TRIAL_DONE;
  epee_err re;
  if (sweep_report(p, &o->best, r, &best, &re) && !rc) rc = -1, *e = re;
  char *md = path_in(p->dir, "sweep.md");
  printf("sweep %s: %d of %d trials done, %d failed; table %s, plot sweep.svg\n", p->dir, n - left, n, failed, md);
  if (best >= 0) printf("sweep: best trial %d, %s -> %s/best_model.h5\n", best + 1, p->trials[best].name, p->dir);
  free(md);
  free(r), free(queue);
  run_dir_unlock(lock);
  if (rc) return -1;
  if (stop_signal) return 128 + stop_signal;
  return failed ? 1 : 0;
}
