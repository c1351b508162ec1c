#include "train/job.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *const split_names[SPLIT_COUNT] = {"train", "dev", "test"};

/* Before any work: a missing split names the file and what it should contain (e.g. user-provided clinical data). */
static int check_readable(const cfg_data *d, int s, const char *path, epee_err *e) {
  if (access(path, R_OK) != 0) {
    char cols[512];
    snprintf(cols, sizeof cols, "'%s'%s%s%s", d->text_column, d->text_b_column[0] ? ", '" : "", d->text_b_column,
             d->text_b_column[0] ? "'" : "");
    return epee_errf(e, "data.%s: %s: cannot read it; expected a TSV file with a header line naming the columns %s "
                        "and '%s' (or JSON Lines with those keys)", split_names[s], path, cols, d->label_column);
  }
  return 0;
}

static int load_split(job *j, int s, const char *path, epee_err *e) {
  const cfg_data *d = &j->cfg->data;
  ds_columns cols = {.text_col = d->text_column,
                     .text_b_col = d->text_b_column[0] ? d->text_b_column : NULL,
                     .label_col = d->label_column,
                     .allow_missing_label = 0};
  /* train discovers the label set unless the config fixes it; dev and test must use the same set */
  char **known = s == SPLIT_TRAIN ? d->labels.v : j->labels;
  int n_known = s == SPLIT_TRAIN ? d->labels.n : j->n_labels;
  if (ds_read(path, &cols, known, n_known, &j->raw[s], e)) return -1;
  if (s == SPLIT_TRAIN) {
    j->labels = j->raw[s].label_names;
    j->n_labels = j->raw[s].n_labels;
  }
  if (ds_encode(&j->raw[s], j->tok, j->cfg->tokenizer.max_length, &j->enc[s], e)) return -1;
  printf("data: %-5s %6d examples from %s (%d truncated to %d tokens)\n", split_names[s], j->enc[s].n, path,
         j->enc[s].n_truncated, j->cfg->tokenizer.max_length);
  return 0;
}

int job_open(job *j, const epee_config *cfg, epee_err *e) {
  memset(j, 0, sizeof *j);
  j->cfg = cfg;
  const char *paths[SPLIT_COUNT] = {cfg->data.train, cfg->data.dev, cfg->data.test};
  for (int s = 0; s < SPLIT_COUNT; s++)
    if (check_readable(&cfg->data, s, paths[s], e)) return -1;
  const tok_kind *kind = tok_find_kind(cfg_tokenizer_kind(cfg));
  if (!kind) return epee_errf(e, "tokenizer.kind: '%s' is not a tokenizer of this build", cfg_tokenizer_kind(cfg));
  const char *files[TOK_MAX_ASSETS] = {cfg->tokenizer.vocab, cfg->tokenizer.merges};
  j->tok = tok_load_files(kind, files, cfg->tokenizer.lowercase, e);
  if (!j->tok) return -1;
  for (int s = 0; s < SPLIT_COUNT; s++)
    if (load_split(j, s, paths[s], e)) return -1;
  if (j->n_labels < 2) return epee_errf(e, "%s: found %d label(s); a classifier needs at least 2", cfg->data.train, j->n_labels);
  if (cfg->model.num_labels && cfg->model.num_labels != j->n_labels)
    return epee_errf(e, "model.num_labels is %d but the data has %d labels", cfg->model.num_labels, j->n_labels);
  printf("data: %d labels:", j->n_labels);
  for (int i = 0; i < j->n_labels; i++) printf(" %s", j->labels[i]);
  printf("\n");
  const cfg_model *mc = &cfg->model;
  model_config mcfg = {.vocab = j->tok->vocab_size, .hidden = mc->hidden, .layers = mc->layers, .heads = mc->heads,
                       .intermediate = mc->intermediate, .max_position = mc->max_position,
                       .type_vocab = mc->type_vocab, .num_labels = j->n_labels,
                       .embedding_size = mc->embedding_size, .hidden_groups = mc->hidden_groups,
                       .exit_norm = mc->exit_norm, .hidden_dropout = (float)mc->hidden_dropout,
                       .attention_dropout = (float)mc->attention_dropout, .exit_dropout = (float)mc->exit_dropout,
                       .layer_norm_eps = (float)mc->layer_norm_eps, .init_std = (float)mc->init_std};
  if (cfg->tokenizer.max_length > mc->max_position)
    return epee_errf(e, "tokenizer.max_length %d exceeds model.max_position %d", cfg->tokenizer.max_length, mc->max_position);
  return model_create(&j->m, model_find_arch(model_arch_names[mc->arch]), &mcfg, PARAMS_TRAIN, 0, e);
}

void job_close(job *j) {
  for (int s = 0; s < SPLIT_COUNT; s++) {
    ds_encoded_free(&j->enc[s]);
    ds_raw_free(&j->raw[s]);
  }
  model_free(&j->m);
  tok_free(j->tok);
  memset(j, 0, sizeof *j);
}
