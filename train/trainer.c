#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/adamw.h"
#include "core/atomic_file.h"
#include "core/json.h"
#include "core/profile.h"
#include "core/progress.h"
#include "infer/batch.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/hf_init.h"
#include "train/job.h"
#include "train/multi_exit_loss.h"
#include "train/posttrain.h"
#include "train/run_dir.h"
#include "train/schedule.h"
#include "train/train_step.h"

/* The signal that asked training to stop (0: none). SIGTERM is what timeout, systemd, Slurm and docker send,
 * SIGHUP what a closed terminal sends: each stops at the next step boundary with a checkpoint, as Ctrl-C does. */
static volatile sig_atomic_t interrupted;
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
enum { N_STOP_SIGNALS = sizeof stop_signals / sizeof *stop_signals };
trainer_step_hook trainer_after_step;
static void on_stop_signal(int sig) { interrupted = sig; }

static const char *signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP"; }

static void run_path(char *out, size_t n, const epee_config *cfg, const char *file) {
  snprintf(out, n, "%s/%s", cfg->run.dir, file);
}

/* The training loop state beyond the job. */
typedef struct {
  job *j;
  const epee_config *cfg;
  epee_ctx ctx;
  engine eval;           /* dev evaluation through the serving path, on the same parameters */
  adamw opt;
  adamw_group groups[PG_COUNT];
  float *w;              /* normalised exit weights [L] */
  float *best;           /* best parameters so far [ps.total] */
  int has_best;
  train_state st;
  FILE *metrics;
  char ckpt_path[4096];
  long last_ckpt_step;   /* -1: none written yet */
  double last_ckpt_time; /* now_seconds() of the last checkpoint (or of the start): train.checkpoint_every_s */
  char *config_json;
  batch_buf bb;
  img_aug aug; /* training augmentation of image sets */
  profile prof; /* run.profile: ctx.prof points here */
} trainer;

static double select_metric(const trainer *t, const double *acc, const double *f1) {
  int L = t->j->m.n_layers;
  switch (t->cfg->train.best_metric) {
  case CFG_BEST_LAST_F1: return f1[L - 1];
  case CFG_BEST_MEAN_ACC: {
    double s = 0;
    for (int l = 0; l < L; l++) s += acc[l];
    return s / L;
  }
  default: return acc[L - 1];
  }
}

/* A checkpoint of the state now; after_batch: the current batch is trained, so a resume starts after it. */
static int save_checkpoint(trainer *t, int after_batch, epee_err *e) {
  t->st.batch += after_batch;
  int rc = checkpoint_save(t->ckpt_path, &t->j->m.ps, &t->opt, t->has_best ? t->best : NULL, &t->st,
                           t->config_json, e);
  t->st.batch -= after_batch;
  if (rc == 0) {
    t->last_ckpt_step = (long)t->st.step;
    t->last_ckpt_time = now_seconds();
  }
  return rc;
}

/* Dev evaluation: per-exit accuracy/F1, best-checkpoint bookkeeping, a checkpoint. Returns 1 to stop early. */
static int evaluate_and_checkpoint(trainer *t, epee_err *e, int *failed) {
  job *j = t->j;
  int L = j->m.n_layers, C = j->m.n_labels, N = j->enc[SPLIT_DEV].n;
  float *logits = epee_malloc(sizeof(float) * (size_t)N * L * C);
  double *acc = epee_malloc(sizeof(double) * (size_t)L), *f1 = epee_malloc(sizeof(double) * (size_t)L);
  eval_logits(&t->eval, &j->enc[SPLIT_DEV], t->cfg->calibrate.batch, logits);
  eval_per_exit(logits, j->enc[SPLIT_DEV].labels, N, L, C, acc, f1);
  double metric = select_metric(t, acc, f1);
  int improved = t->st.best_step < 0 || metric > t->st.best_metric;
  if (improved) {
    t->st.best_metric = metric;
    t->st.best_step = t->st.step;
    t->st.evals_since_best = 0;
    memcpy(t->best, j->m.ps.data, sizeof(float) * (size_t)j->m.ps.total);
    t->has_best = 1;
  } else {
    t->st.evals_since_best++;
  }
  printf("eval step %ld: dev acc per exit", (long)t->st.step);
  for (int l = 0; l < L; l++) printf(" %.4f", acc[l]);
  printf(" | %s %.4f%s\n", cfg_best_metric_names[t->cfg->train.best_metric], metric, improved ? " (best)" : "");
  json_t *o = json_object();
  json_object_set_new(o, "step", json_integer(t->st.step));
  json_object_set_new(o, "eval", json_string("dev"));
  json_object_set_new(o, "acc", json_nums(acc, L, 6));
  json_object_set_new(o, "macro_f1", json_nums(f1, L, 6));
  json_object_set_new(o, "metric", json_num(metric, 6));
  json_object_set_new(o, "best", json_boolean(improved));
  json_put_line(t->metrics, o);
  fflush(t->metrics);
  free(logits), free(acc), free(f1);
  if (save_checkpoint(t, 1, e)) {
    *failed = 1;
    return 1;
  }
  return t->cfg->train.early_stop > 0 && t->st.evals_since_best >= t->cfg->train.early_stop;
}

/* One optimizer step on batch b at the scheduled rates; returns the loss (NaN/Inf reported by the caller). */
static double train_step(trainer *t, const ds_batch *b, float *ce, double *lr_out) {
  job *j = t->j;
  const cfg_train *tc = &t->cfg->train;
  double since = prof_clock(t->ctx.prof);
  model_batch mb = batch_buf_fill(&t->bb, &j->enc[SPLIT_TRAIN], b, &t->aug, (uint64_t)t->cfg->run.seed,
                                  (uint64_t)t->st.step);
  prof_lap(t->ctx.prof, &since, "batch", PROF_OTHER, 0);
  long warm = (long)(tc->warmup * (double)t->st.total_steps);
  double lr = lr_at(tc->lr, (long)t->st.step, warm, (long)t->st.total_steps);
  double elr = lr_at(tc->exit_lr > 0 ? tc->exit_lr : tc->lr, (long)t->st.step, warm, (long)t->st.total_steps);
  float wd = (float)tc->weight_decay;
  t->groups[PG_BACKBONE] = (adamw_group){(float)lr, wd};
  t->groups[PG_BACKBONE_NODECAY] = (adamw_group){(float)lr, 0.0f};
  t->groups[PG_EXIT] = (adamw_group){(float)elr, wd};
  t->groups[PG_EXIT_NODECAY] = (adamw_group){(float)elr, 0.0f};
  *lr_out = lr;
  return train_step_run(&t->ctx, &j->m, &mb, t->bb.labels, t->w, (uint64_t)t->st.step, tc->clip, &t->opt, t->groups,
                        ce);
}

/* Sizes the activation arena once at the largest batch and length, then freezes it. */
static void warm_up(trainer *t) {
  job *j = t->j;
  const ds_encoded *d = &j->enc[SPLIT_TRAIN];
  int B = t->cfg->train.batch_size, T = d->max_len, L = j->m.n_layers;
  /* B examples padded to the longest length, every position real: the largest shape training meets */
  int *idx = epee_malloc(sizeof(int) * (size_t)B);
  for (int i = 0; i < B; i++) idx[i] = i % d->n;
  ds_batch big = {.idx = idx, .n = B, .max_len = T};
  model_batch mb = batch_buf_fill(&t->bb, d, &big, NULL, 0, 0);
  for (int i = 0; i < B * T; i++) t->bb.mask[i] = 1;
  ctx_reset(&t->ctx);
  tensor **logits = arena_alloc(&t->ctx.act, sizeof(tensor *) * (size_t)L);
  model_forward_all(&t->ctx, &j->m, &mb, logits);
  tape_backward(&t->ctx, multi_exit_loss(&t->ctx, L, logits, t->bb.labels, t->w, NULL), NULL);
  free(idx);
  params_zero_grad(&j->m.ps);
  ctx_reset(&t->ctx);
  arena_freeze(&t->ctx.act);
}

/* Keeps metrics.jsonl lines up to the resumed step, so a resumed run's log equals an uninterrupted one. */
static int truncate_metrics(const char *path, long step, epee_err *e) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  atomic_file af;
  FILE *o = atomic_open(&af, path, e);
  if (!o) {
    fclose(f);
    return -1;
  }
  char line[1 << 14];
  while (fgets(line, sizeof line, f)) {
    json_t *j = json_loads(line, 0, NULL);
    json_int_t s = json_integer_value(json_object_get(j, "step"));
    json_decref(j);
    if (s > step) break;
    fputs(line, o);
  }
  fclose(f);
  return atomic_commit(&af, e);
}

/* run.profile: the table of this process's steps, printed and saved as profile.json (atomically). */
static int write_profile(const trainer *t, epee_err *e) {
  prof_print(t->ctx.prof, stdout);
  char path[4200], *text = prof_json(t->ctx.prof);
  snprintf(path, sizeof path, "%s/profile.json", t->cfg->run.dir);
  int rc = atomic_write_text(path, text, e);
  free(text);
  if (rc == 0) printf("profile: %s\n", path);
  return rc;
}

static int train_loop(trainer *t, epee_err *e) {
  job *j = t->j;
  const cfg_train *tc = &t->cfg->train;
  int L = j->m.n_layers, B = tc->batch_size;
  float *ce = epee_malloc(sizeof(float) * (size_t)L);
  progress bar;
  progress_start(&bar, stdout, "train", t->st.total_steps, "step");
  bar.done = bar.start = t->st.step;
  int rc = 0, stop = 0;
  double t_last = now_seconds();
  long ex_since = 0;
  for (; t->st.epoch < 1000000 && t->st.step < t->st.total_steps && !stop; t->st.epoch++, t->st.batch = 0) {
    ds_plan plan;
    ds_plan_make(&j->enc[SPLIT_TRAIN], B, (uint64_t)t->cfg->run.seed, (int)t->st.epoch, 1, &plan);
    int nb = plan.n_batches;
    for (; t->st.batch < nb && t->st.step < t->st.total_steps; t->st.batch++) {
      if (interrupted) {
        stop = 1;
        rc = 128 + interrupted;
        break;
      }
      const ds_batch *b = &plan.batches[t->st.batch];
      double lr = 0, step_t0 = prof_clock(t->ctx.prof);
      double loss = train_step(t, b, ce, &lr);
      if (t->ctx.prof) prof_step(t->ctx.prof, now_seconds() - step_t0);
      if (!isfinite(loss)) {
        if (t->last_ckpt_step >= 0)
          rc = epee_errf(e, "step %ld: loss or gradient is not finite; stopped. Last good checkpoint: %s (step %ld)",
                         (long)t->st.step + 1, t->ckpt_path, t->last_ckpt_step);
        else
          rc = epee_errf(e, "step %ld: loss or gradient is not finite; stopped before any checkpoint was written "
                            "(try a lower train.lr)", (long)t->st.step + 1);
        stop = 1;
        break;
      }
      t->st.step++;
      ex_since += b->n;
      if (trainer_after_step) trainer_after_step((long)t->st.step, &j->m.ps);
      if (t->st.step % tc->log_every == 0 || t->st.step == t->st.total_steps) {
        double now = now_seconds(), rate = ex_since / (now - t_last);
        json_t *o = json_object(), *a = json_array();
        json_object_set_new(o, "step", json_integer(t->st.step));
        json_object_set_new(o, "epoch", json_integer(t->st.epoch));
        json_object_set_new(o, "loss", json_num(loss, 6));
        for (int l = 0; l < L; l++) json_array_append_new(a, json_num(ce[l], 6));
        json_object_set_new(o, "loss_exits", a);
        json_object_set_new(o, "lr", json_real(lr));
        json_object_set_new(o, "examples_per_s", json_num(rate, 1));
        json_put_line(t->metrics, o);
        fflush(t->metrics);
        t_last = now;
        ex_since = 0;
      }
      char info[96];
      snprintf(info, sizeof info, "loss %.4f last-exit %.4f lr %.2e", loss, ce[L - 1], lr);
      progress_update(&bar, 1, info);
      int at_eval = tc->eval_every > 0 ? t->st.step % tc->eval_every == 0 : t->st.batch + 1 == nb;
      if (at_eval || t->st.step == t->st.total_steps) {
        int failed = 0;
        stop = evaluate_and_checkpoint(t, e, &failed);
        if (failed) {
          rc = -1;
          break;
        }
        if (stop) printf("early stop: no improvement in %d evaluations\n", tc->early_stop);
        if (stop) break;
      } else if (tc->checkpoint_every_s > 0 && now_seconds() - t->last_ckpt_time >= tc->checkpoint_every_s &&
                 save_checkpoint(t, 1, e)) {
        rc = -1;
        stop = 1;
        break;
      }
    }
    ds_plan_free(&plan);
    if (stop && rc > 128) break;
  }
  progress_finish(&bar, NULL);
  if (t->ctx.prof && t->ctx.prof->steps > 0 && write_profile(t, e)) rc = rc ? rc : -1;
  if (rc > 128) {
    const char *sig = signal_name(rc - 128);
    if (save_checkpoint(t, 0, e))
      fprintf(stderr, "%s at step %ld: checkpoint NOT saved: %s\n", sig, (long)t->st.step, e->msg);
    else
      fprintf(stderr, "%s at step %ld: checkpoint saved to %s; continue with: epee-train --resume %s\n", sig,
              (long)t->st.step, t->ckpt_path, t->cfg->run.dir);
  }
  free(ce);
  return rc;
}

/* Takes run.dir for this process: its lock, then the leftovers of killed writers; a new run writes its config. */
static int claim_run_dir(const epee_config *cfg, train_mode mode, epee_err *e) {
  int lock = run_dir_lock(cfg->run.dir, e);
  if (lock < 0) return -1;
  char path[4096];
  run_dir_remove_stale_tmp(cfg->run.dir);
  if (mode == TRAIN_OVERWRITE) { /* so that a resume can never continue the old run's weights under the new config */
    run_path(path, sizeof path, cfg, "checkpoint.h5");
    if (unlink(path) != 0 && errno != ENOENT) {
      run_dir_unlock(lock);
      return epee_errf(e, "%s: cannot remove the previous run's checkpoint: %s", path, strerror(errno));
    }
  }
  run_path(path, sizeof path, cfg, "config.yaml");
  if (mode != TRAIN_RESUME && cfg_write(cfg, path, e)) {
    run_dir_unlock(lock);
    return -1;
  }
  return lock;
}

int trainer_run(const epee_config *cfg, train_mode mode, epee_err *e) {
  omp_set_num_threads(cfg_threads(cfg));
  if (mode == TRAIN_RESUME && run_dir_need_checkpoint(cfg->run.dir, "resume", e)) return -1;
  if (mode == TRAIN_NEW && run_dir_has_run(cfg->run.dir))
    return epee_errf(e, "%s: already holds a run; continue it with --resume %s, or replace it with --overwrite",
                     cfg->run.dir, cfg->run.dir);
  char path[4096];
  job j;
  trainer t;
  memset(&t, 0, sizeof t);
  int rc = -1, lock = -1;
  if (job_open(&j, cfg, e)) goto out_job; /* every input checked before anything is created */
  if ((lock = claim_run_dir(cfg, mode, e)) < 0) goto out_job;
  t.j = &j;
  t.cfg = cfg;
  t.last_ckpt_step = -1;
  t.config_json = cfg_to_json(cfg);
  run_path(t.ckpt_path, sizeof t.ckpt_path, cfg, "checkpoint.h5");
  int L = j.m.n_layers, B = cfg->train.batch_size;
  t.w = epee_malloc(sizeof(float) * (size_t)L);
  exit_weights(&cfg->train.loss_weights, L, t.w);
  t.best = epee_malloc(sizeof(float) * (size_t)j.m.ps.total);
  t.last_ckpt_time = now_seconds();
  batch_buf_init(&t.bb, &j.enc[SPLIT_TRAIN], B);
  t.aug = (img_aug){.crop_pad = cfg->image.crop_padding, .hflip = cfg->image.hflip};
  t.opt = (adamw){.beta1 = (float)cfg->train.adam_beta1, .beta2 = (float)cfg->train.adam_beta2,
                  .eps = (float)cfg->train.adam_eps};
  long per_epoch = (j.enc[SPLIT_TRAIN].n + B - 1) / B;
  t.st.total_steps = cfg->train.max_steps > 0 ? cfg->train.max_steps : (int64_t)cfg->train.epochs * per_epoch;
  t.st.best_step = -1;
  if (mode == TRAIN_RESUME) {
    if (checkpoint_load(t.ckpt_path, &j.m.ps, &t.opt, t.best, &t.has_best, &t.st, e)) goto out;
    t.last_ckpt_step = (long)t.st.step;
    printf("resume: %s at step %ld of %ld (epoch %ld, batch %ld)\n", t.ckpt_path, (long)t.st.step,
           (long)t.st.total_steps, (long)t.st.epoch, (long)t.st.batch);
  } else {
    j.m.arch->init(&j.m, (uint64_t)cfg->run.seed);
    if (hf_init_weights(&j.m, cfg, e)) goto out; /* model.init over the random initialisation */
  }
  run_path(path, sizeof path, cfg, "metrics.jsonl");
  if (mode == TRAIN_RESUME && truncate_metrics(path, (long)t.st.step, e)) goto out;
  t.metrics = fopen(path, mode == TRAIN_RESUME ? "a" : "w");
  if (!t.metrics) {
    epee_errf(e, "%s: cannot write", path);
    goto out;
  }
  printf("model: %s, %d layers, hidden %d, %d heads, %lld parameters; %ld steps (%ld per epoch), batch %d, "
         "%d threads\n", j.m.arch->name, L, j.m.hidden, cfg->model.heads, (long long)j.m.ps.total,
         (long)t.st.total_steps, per_epoch, B, cfg_threads(cfg));
  ctx_init(&t.ctx, 0, (uint64_t)cfg->run.seed);
  t.ctx.training = 1;
  if (engine_init(&t.eval, &j.m, cfg->calibrate.batch, j.enc[SPLIT_DEV].max_len > j.enc[SPLIT_TEST].max_len
                                                            ? j.enc[SPLIT_DEV].max_len : j.enc[SPLIT_TEST].max_len, e))
    goto out;
  warm_up(&t);
  if (cfg->run.profile) { /* after the warm-up: its one-off allocations are not a step's */
    prof_init(&t.prof);
    t.ctx.prof = &t.prof;
  }
  interrupted = 0;
  struct sigaction sa = {0}, old[N_STOP_SIGNALS];
  sa.sa_handler = on_stop_signal;
  for (int i = 0; i < N_STOP_SIGNALS; i++) sigaction(stop_signals[i], &sa, &old[i]);
  rc = train_loop(&t, e);
  for (int i = 0; i < N_STOP_SIGNALS; i++) sigaction(stop_signals[i], &old[i], NULL);
  if (rc != 0) goto out;
  if (t.has_best) memcpy(j.m.ps.data, t.best, sizeof(float) * (size_t)j.m.ps.total);
  printf("best dev %s %.4f at step %ld\n", cfg_best_metric_names[cfg->train.best_metric], t.st.best_metric,
         (long)t.st.best_step);
  t.eval.progress = stdout; /* after training: the full-depth passes and the timed runs show progress */
  rc = posttrain_run(&j, &t.eval, e);
out:
  if (t.metrics) fclose(t.metrics);
  engine_free(&t.eval);
  ctx_free(&t.ctx);
  batch_buf_free(&t.bb);
  free(t.w), free(t.best), free(t.config_json);
out_job:
  job_close(&j);
  run_dir_unlock(lock);
  return rc;
}

/* The run folder's saved config, with run.dir = dir: a copied or moved folder is the run, wherever it now is. */
static int load_run_config(const char *dir, const char *doing, epee_config *cfg, epee_err *e) {
  char path[4096];
  snprintf(path, sizeof path, "%s/config.yaml", dir);
  memset(cfg, 0, sizeof *cfg); /* cfg_free-able whatever fails */
  if (run_dir_need_checkpoint(dir, doing, e) || cfg_load(path, cfg, e)) return -1;
  free(cfg->run.dir);
  cfg->run.dir = strdup(dir);
  return cfg_validate(cfg, e);
}

int trainer_resume(const char *dir, epee_err *e) {
  epee_config cfg;
  int rc = load_run_config(dir, "resume", &cfg, e);
  if (rc == 0) rc = trainer_run(&cfg, TRAIN_RESUME, e);
  cfg_free(&cfg);
  return rc;
}

int trainer_calibrate_only(const char *run_dir, epee_err *e) {
  char path[4096];
  epee_config cfg;
  int rc = load_run_config(run_dir, "calibrate", &cfg, e), lock = -1;
  job j;
  memset(&j, 0, sizeof j);
  engine g;
  memset(&g, 0, sizeof g);
  if (rc == 0) {
    omp_set_num_threads(cfg_threads(&cfg));
    rc = job_open(&j, &cfg, e);
  }
  if (rc == 0 && (lock = run_dir_lock(run_dir, e)) < 0) rc = -1;
  if (rc == 0) run_dir_remove_stale_tmp(run_dir);
  if (rc == 0) { /* the best weights of the run: checkpoint.h5 holds them under best/ */
    adamw opt = {0};
    train_state st;
    int has_best = 0;
    float *best = epee_malloc(sizeof(float) * (size_t)j.m.ps.total);
    snprintf(path, sizeof path, "%s/checkpoint.h5", run_dir);
    rc = checkpoint_load(path, &j.m.ps, &opt, best, &has_best, &st, e);
    if (rc == 0 && has_best) memcpy(j.m.ps.data, best, sizeof(float) * (size_t)j.m.ps.total);
    free(best);
  }
  int T = j.enc[SPLIT_DEV].max_len > j.enc[SPLIT_TEST].max_len ? j.enc[SPLIT_DEV].max_len : j.enc[SPLIT_TEST].max_len;
  if (rc == 0) rc = engine_init(&g, &j.m, cfg.calibrate.batch, T, e);
  g.progress = stdout;
  if (rc == 0) rc = posttrain_run(&j, &g, e);
  engine_free(&g);
  job_close(&j);
  run_dir_unlock(lock);
  cfg_free(&cfg);
  return rc;
}
