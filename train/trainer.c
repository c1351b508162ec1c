#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/adamw.h"
#include "core/progress.h"
#include "infer/batch.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/job.h"
#include "train/multi_exit_loss.h"
#include "train/posttrain.h"
#include "train/schedule.h"

static volatile sig_atomic_t interrupted;
trainer_step_hook trainer_after_step;
static void on_sigint(int sig) {
  (void)sig;
  interrupted = 1;
}

static int mkdir_p(const char *dir, epee_err *e) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", dir);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) && errno != EEXIST) return epee_errf(e, "%s: cannot create directory: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0777) && errno != EEXIST) return epee_errf(e, "%s: cannot create directory: %s", buf, strerror(errno));
  return 0;
}

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
  char *config_json;
  batch_buf bb;
  img_aug aug; /* training augmentation of image sets */
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
  fprintf(t->metrics, "{\"step\":%ld,\"eval\":\"dev\",\"acc\":[", (long)t->st.step);
  for (int l = 0; l < L; l++) fprintf(t->metrics, "%s%.6f", l ? "," : "", acc[l]);
  fprintf(t->metrics, "],\"macro_f1\":[");
  for (int l = 0; l < L; l++) fprintf(t->metrics, "%s%.6f", l ? "," : "", f1[l]);
  fprintf(t->metrics, "],\"metric\":%.6f,\"best\":%s}\n", metric, improved ? "true" : "false");
  fflush(t->metrics);
  free(logits), free(acc), free(f1);
  if (checkpoint_save(t->ckpt_path, &j->m.ps, &t->opt, t->has_best ? t->best : NULL, &t->st, t->config_json, e)) {
    *failed = 1;
    return 1;
  }
  t->last_ckpt_step = (long)t->st.step;
  return t->cfg->train.early_stop > 0 && t->st.evals_since_best >= t->cfg->train.early_stop;
}

/* One optimizer step on batch b; returns the loss (NaN/Inf reported by the caller). */
static double train_step(trainer *t, const ds_batch *b, float *ce, double *lr_out) {
  job *j = t->j;
  int L = j->m.n_layers;
  model_batch mb = batch_buf_fill(&t->bb, &j->enc[SPLIT_TRAIN], b, &t->aug, (uint64_t)t->cfg->run.seed,
                                  (uint64_t)t->st.step);
  ctx_reset(&t->ctx);
  t->ctx.step = (uint64_t)t->st.step;
  tensor **logits = arena_alloc(&t->ctx.act, sizeof(tensor *) * (size_t)L);
  model_forward_all(&t->ctx, &j->m, &mb, logits);
  tensor *loss = multi_exit_loss(&t->ctx, L, logits, t->bb.labels, t->w, ce);
  double value = loss->data[0];
  if (!isfinite(value)) return value;
  params_zero_grad(&j->m.ps);
  tape_backward(&t->ctx, loss, NULL);
  if (params_grad_nonfinite(&j->m.ps)) return NAN;
  params_clip_grad_norm(&j->m.ps, t->cfg->train.clip);
  const cfg_train *tc = &t->cfg->train;
  long warm = (long)(tc->warmup * (double)t->st.total_steps);
  double lr = lr_at(tc->lr, (long)t->st.step, warm, (long)t->st.total_steps);
  double elr = lr_at(tc->exit_lr > 0 ? tc->exit_lr : tc->lr, (long)t->st.step, warm, (long)t->st.total_steps);
  float wd = (float)tc->weight_decay;
  t->groups[PG_BACKBONE] = (adamw_group){(float)lr, wd};
  t->groups[PG_BACKBONE_NODECAY] = (adamw_group){(float)lr, 0.0f};
  t->groups[PG_EXIT] = (adamw_group){(float)elr, wd};
  t->groups[PG_EXIT_NODECAY] = (adamw_group){(float)elr, 0.0f};
  adamw_step(&t->opt, &j->m.ps, t->groups);
  *lr_out = lr;
  return value;
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
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *o = fopen(tmp, "w");
  if (!o) {
    fclose(f);
    return epee_errf(e, "%s: cannot write", tmp);
  }
  char line[1 << 14];
  while (fgets(line, sizeof line, f)) {
    long s;
    if (sscanf(line, "{\"step\":%ld", &s) == 1 && s > step) break;
    fputs(line, o);
  }
  fclose(f);
  if (fclose(o) || rename(tmp, path)) return epee_errf(e, "%s: cannot rewrite", path);
  return 0;
}

static int train_loop(trainer *t, epee_err *e) {
  job *j = t->j;
  const cfg_train *tc = &t->cfg->train;
  int L = j->m.n_layers, B = tc->batch_size;
  float *ce = epee_malloc(sizeof(float) * (size_t)L);
  progress bar;
  progress_start(&bar, stdout, "train", t->st.total_steps, "step");
  bar.done = t->st.step;
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
        rc = 130;
        break;
      }
      const ds_batch *b = &plan.batches[t->st.batch];
      double lr = 0;
      double loss = train_step(t, b, ce, &lr);
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
        fprintf(t->metrics, "{\"step\":%ld,\"epoch\":%ld,\"loss\":%.6f,\"loss_exits\":[", (long)t->st.step,
                (long)t->st.epoch, loss);
        for (int l = 0; l < L; l++) fprintf(t->metrics, "%s%.6f", l ? "," : "", ce[l]);
        fprintf(t->metrics, "],\"lr\":%.6e,\"examples_per_s\":%.1f}\n", lr, rate);
        fflush(t->metrics);
        t_last = now;
        ex_since = 0;
      }
      char info[96];
      snprintf(info, sizeof info, "loss %.4f last-exit %.4f lr %.2e", loss, ce[L - 1], lr);
      progress_update(&bar, 1, info);
      int at_eval = tc->eval_every > 0 ? t->st.step % tc->eval_every == 0 : t->st.batch + 1 == nb;
      if (at_eval || t->st.step == t->st.total_steps) {
        t->st.batch++; /* the checkpoint records this batch as done */
        int failed = 0;
        stop = evaluate_and_checkpoint(t, e, &failed);
        t->st.batch--;
        if (failed) {
          rc = -1;
          break;
        }
        if (stop) printf("early stop: no improvement in %d evaluations\n", tc->early_stop);
        if (stop) break;
      }
    }
    ds_plan_free(&plan);
    if (stop && rc == 130) break;
  }
  progress_finish(&bar, NULL);
  if (rc == 130) {
    if (checkpoint_save(t->ckpt_path, &j->m.ps, &t->opt, t->has_best ? t->best : NULL, &t->st, t->config_json, e))
      fprintf(stderr, "interrupted at step %ld: checkpoint NOT saved: %s\n", (long)t->st.step, e->msg);
    else
      fprintf(stderr, "interrupted at step %ld: checkpoint saved to %s; continue with: epee-train --resume %s\n",
              (long)t->st.step, t->ckpt_path, t->cfg->run.dir);
  }
  free(ce);
  return rc;
}

int trainer_run(const epee_config *cfg, const char *resume_dir, epee_err *e) {
  (void)resume_dir; /* the config of a resumed run is the one saved in its folder: the caller loads it */
  omp_set_num_threads(cfg->run.threads);
  if (mkdir_p(cfg->run.dir, e)) return -1;
  char path[4096];
  if (!resume_dir) {
    run_path(path, sizeof path, cfg, "config.yaml");
    if (cfg_write(cfg, path, e)) return -1;
  }
  job j;
  trainer t;
  memset(&t, 0, sizeof t);
  int rc = -1;
  if (job_open(&j, cfg, e)) goto out_job;
  t.j = &j;
  t.cfg = cfg;
  t.last_ckpt_step = -1;
  t.config_json = cfg_to_json(cfg);
  run_path(t.ckpt_path, sizeof t.ckpt_path, cfg, "checkpoint.h5");
  int L = j.m.n_layers, B = cfg->train.batch_size;
  t.w = epee_malloc(sizeof(float) * (size_t)L);
  exit_weights(&cfg->train.loss_weights, L, t.w);
  t.best = epee_malloc(sizeof(float) * (size_t)j.m.ps.total);
  batch_buf_init(&t.bb, &j.enc[SPLIT_TRAIN], B);
  t.aug = (img_aug){.crop_pad = cfg->image.crop_padding, .hflip = cfg->image.hflip};
  t.opt = (adamw){.beta1 = (float)cfg->train.adam_beta1, .beta2 = (float)cfg->train.adam_beta2,
                  .eps = (float)cfg->train.adam_eps};
  long per_epoch = (j.enc[SPLIT_TRAIN].n + B - 1) / B;
  t.st.total_steps = cfg->train.max_steps > 0 ? cfg->train.max_steps : (int64_t)cfg->train.epochs * per_epoch;
  t.st.best_step = -1;
  if (resume_dir) {
    if (checkpoint_load(t.ckpt_path, &j.m.ps, &t.opt, t.best, &t.has_best, &t.st, e)) goto out;
    t.last_ckpt_step = (long)t.st.step;
    printf("resume: %s at step %ld of %ld (epoch %ld, batch %ld)\n", t.ckpt_path, (long)t.st.step,
           (long)t.st.total_steps, (long)t.st.epoch, (long)t.st.batch);
  } else {
    j.m.arch->init(&j.m, (uint64_t)cfg->run.seed);
  }
  run_path(path, sizeof path, cfg, "metrics.jsonl");
  if (resume_dir && truncate_metrics(path, (long)t.st.step, e)) goto out;
  t.metrics = fopen(path, resume_dir ? "a" : "w");
  if (!t.metrics) {
    epee_errf(e, "%s: cannot write", path);
    goto out;
  }
  printf("model: %s, %d layers, hidden %d, %d heads, %lld parameters; %ld steps (%ld per epoch), batch %d, "
         "%d threads\n", j.m.arch->name, L, j.m.hidden, cfg->model.heads, (long long)j.m.ps.total,
         (long)t.st.total_steps, per_epoch, B, cfg->run.threads);
  ctx_init(&t.ctx, 0, (uint64_t)cfg->run.seed);
  t.ctx.training = 1;
  if (engine_init(&t.eval, &j.m, cfg->calibrate.batch, j.enc[SPLIT_DEV].max_len > j.enc[SPLIT_TEST].max_len
                                                            ? j.enc[SPLIT_DEV].max_len : j.enc[SPLIT_TEST].max_len, e))
    goto out;
  warm_up(&t);
  interrupted = 0;
  struct sigaction sa = {0}, old;
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, &old);
  rc = train_loop(&t, e);
  sigaction(SIGINT, &old, NULL);
  if (rc != 0) goto out;
  if (t.has_best) memcpy(j.m.ps.data, t.best, sizeof(float) * (size_t)j.m.ps.total);
  printf("best dev %s %.4f at step %ld\n", cfg_best_metric_names[cfg->train.best_metric], t.st.best_metric,
         (long)t.st.best_step);
  rc = posttrain_run(&j, &t.eval, e);
out:
  if (t.metrics) fclose(t.metrics);
  engine_free(&t.eval);
  ctx_free(&t.ctx);
  batch_buf_free(&t.bb);
  free(t.w), free(t.best), free(t.config_json);
out_job:
  job_close(&j);
  return rc;
}

int trainer_calibrate_only(const char *run_dir, epee_err *e) {
  char path[4096];
  snprintf(path, sizeof path, "%s/config.yaml", run_dir);
  epee_config cfg;
  int rc = cfg_load(path, &cfg, e);
  if (rc == 0) rc = cfg_validate(&cfg, e);
  job j;
  memset(&j, 0, sizeof j);
  engine g;
  memset(&g, 0, sizeof g);
  if (rc == 0) {
    omp_set_num_threads(cfg.run.threads);
    rc = job_open(&j, &cfg, e);
  }
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
  if (rc == 0) rc = posttrain_run(&j, &g, e);
  engine_free(&g);
  job_close(&j);
  cfg_free(&cfg);
  return rc;
}
