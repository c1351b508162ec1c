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

/* A split lacking a class, or a dev split of one class, trains without an error yet scores or calibrates
 * nothing useful: warn on stderr before the run starts. */
static void warn_class_coverage(const job *j) {
  const char *paths[SPLIT_COUNT] = {j->cfg->data.train, j->cfg->data.dev, j->cfg->data.test};
  int *count = epee_malloc(sizeof(int) * (size_t)j->n_labels);
  for (int s = 0; s < SPLIT_COUNT; s++) {
    const ds_encoded *d = &j->enc[s];
    memset(count, 0, sizeof(int) * (size_t)j->n_labels);
    for (int i = 0; i < d->n; i++)
      if (d->labels[i] >= 0 && d->labels[i] < j->n_labels) count[d->labels[i]]++;
    char missing[512] = "";
    int n_missing = 0, only = -1;
    for (int c = 0; c < j->n_labels; c++) {
      if (count[c]) {
        only = only == -1 ? c : -2;
      } else if (strlen(missing) + strlen(j->labels[c]) + 8 < sizeof missing) {
        snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s'%s'", n_missing++ ? ", " : "",
                 j->labels[c]);
      }
    }
    if (s == SPLIT_DEV && only >= 0)
      fprintf(stderr, "warning: data.dev: %s: every example is of class '%s': calibration on it is meaningless "
                      "(any exit that always answers '%s' looks perfect)\n", paths[s], j->labels[only],
              j->labels[only]);
    else if (n_missing)
      fprintf(stderr, "warning: data.%s: %s: no example of class %s%s\n", split_names[s], paths[s], missing,
              s == SPLIT_TRAIN ? " of data.labels" : " of the train split");
  }
  free(count);
}

/* The model from the config, with the data's label count (and the tokenizer's vocabulary). */
static int job_build_model(job *j, const model_arch *arch, int vocab, epee_err *e) {
  const epee_config *cfg = j->cfg;
  if (j->n_labels < 2) return epee_errf(e, "%s: found %d label(s); a classifier needs at least 2", cfg->data.train, j->n_labels);
  if (cfg->model.num_labels && cfg->model.num_labels != j->n_labels)
    return epee_errf(e, "model.num_labels is %d but the data has %d labels", cfg->model.num_labels, j->n_labels);
  warn_class_coverage(j);
  printf("data: %d labels:", j->n_labels);
  for (int i = 0; i < j->n_labels; i++) printf(" %s", j->labels[i]);
  printf("\n");
  const cfg_model *mc = &cfg->model;
  model_config mcfg = {.vocab = vocab, .hidden = mc->hidden, .layers = mc->layers, .heads = mc->heads,
                       .intermediate = mc->intermediate, .max_position = mc->max_position,
                       .type_vocab = mc->type_vocab, .num_labels = j->n_labels,
                       .embedding_size = mc->embedding_size, .hidden_groups = mc->hidden_groups,
                       .exit_norm = mc->exit_norm, .image_size = mc->image_size, .patch_size = mc->patch_size,
                       .channels = mc->channels, .hidden_dropout = (float)mc->hidden_dropout,
                       .attention_dropout = (float)mc->attention_dropout, .exit_dropout = (float)mc->exit_dropout,
                       .layer_norm_eps = (float)mc->layer_norm_eps, .init_std = (float)mc->init_std};
  return model_create(&j->m, arch, &mcfg, PARAMS_TRAIN, 0, e);
}

/* An image split: a MedMNIST .npz (entries <split>_images / _labels) or a folder of class subfolders. Train finds
 * the classes (or takes data.labels); dev and test must stay inside train's. */
static int load_image_split(job *j, int s, const char *path, epee_err *e) {
  const epee_config *cfg = j->cfg;
  static const char *const npz_split[SPLIT_COUNT] = {"train", "val", "test"};
  cfg_format f = cfg_data_format(path, cfg->data.format);
  if (f != CFG_FORMAT_NPZ && f != CFG_FORMAT_IMAGE_FOLDER)
    return epee_errf(e, "data.%s: %s: model.arch %s reads images: expected a .npz file (MedMNIST layout) or a folder "
                        "of class subfolders of PNG files (data.format npz or image_folder)", split_names[s], path,
                     model_arch_names[cfg->model.arch]);
  img_opts o = {.channels = cfg->model.channels, .size = cfg->model.image_size,
                .resize = cfg->image.resize == CFG_RESIZE_BILINEAR};
  img_set im;
  int known = s == SPLIT_TRAIN ? cfg->data.labels.n : j->n_labels;
  char **names = s == SPLIT_TRAIN ? cfg->data.labels.v : j->labels;
  int rc = f == CFG_FORMAT_NPZ ? img_read_npz(path, npz_split[s], &o, &im, e)
                               : img_read_png_folder(path, names, known, &o, &im, e);
  if (rc) {
    img_set_free(&im);
    return -1;
  }
  if (s == SPLIT_TRAIN && !known) { /* the train split's classes, kept by the job */
    j->labels = im.label_names, j->n_labels = im.n_labels;
    im.label_names = NULL, im.n_labels = 0;
    j->own_labels = 1;
  } else if (s == SPLIT_TRAIN) {
    j->labels = cfg->data.labels.v, j->n_labels = cfg->data.labels.n;
  }
  for (int i = 0; i < im.n; i++)
    if (im.labels[i] < 0 || im.labels[i] >= j->n_labels) {
      epee_errf(e, "%s: label %d outside the %d classes of %s", im.names[i], im.labels[i], j->n_labels,
                s == SPLIT_TRAIN ? "data.labels" : "the train split");
      img_set_free(&im);
      return -1;
    }
  const cfg_image *ci = &cfg->image;
  img_norm nm;
  for (int c = 0; c < 3; c++) { /* one value, or one per channel (cfg_validate) */
    nm.mean[c] = (float)ci->mean.v[c < ci->mean.n ? c : 0];
    nm.std[c] = (float)ci->std.v[c < ci->std.n ? c : 0];
  }
  int g = cfg->model.image_size / cfg->model.patch_size;
  printf("data: %-5s %6d images of %dx%dx%d from %s\n", split_names[s], im.n, im.H, im.W, im.C, path);
  ds_from_images(&im, g * g + 1, &nm, &j->enc[s]);
  return 0;
}

int job_open(job *j, const epee_config *cfg, epee_err *e) {
  memset(j, 0, sizeof *j);
  j->cfg = cfg;
  const char *paths[SPLIT_COUNT] = {cfg->data.train, cfg->data.dev, cfg->data.test};
  const model_arch *arch = model_find_arch(model_arch_names[cfg->model.arch]);
  if (arch->input == MODEL_INPUT_IMAGE) {
    for (int s = 0; s < SPLIT_COUNT; s++)
      if (load_image_split(j, s, paths[s], e)) return -1;
    return job_build_model(j, arch, 0, e);
  }
  for (int s = 0; s < SPLIT_COUNT; s++)
    if (check_readable(&cfg->data, s, paths[s], e)) return -1;
  for (int s = 0; s < SPLIT_COUNT; s++) {
    cfg_format f = cfg_data_format(paths[s], cfg->data.format);
    if (f == CFG_FORMAT_NPZ || f == CFG_FORMAT_IMAGE_FOLDER)
      return epee_errf(e, "data.%s: %s: is image data, but model.arch %s reads text (TSV or JSON Lines)",
                       split_names[s], paths[s], arch->name);
  }
  const tok_kind *kind = tok_find_kind(cfg_tokenizer_kind(cfg));
  if (!kind) return epee_errf(e, "tokenizer.kind: '%s' is not a tokenizer of this build", cfg_tokenizer_kind(cfg));
  const char *files[TOK_MAX_ASSETS] = {cfg->tokenizer.vocab, cfg->tokenizer.merges};
  j->tok = tok_load_files(kind, files, cfg->tokenizer.lowercase, e);
  if (!j->tok) return -1;
  for (int s = 0; s < SPLIT_COUNT; s++)
    if (load_split(j, s, paths[s], e)) return -1;
  if (cfg->tokenizer.max_length > cfg->model.max_position)
    return epee_errf(e, "tokenizer.max_length %d exceeds model.max_position %d", cfg->tokenizer.max_length,
                     cfg->model.max_position);
  return job_build_model(j, arch, j->tok->vocab_size, e);
}


void job_close(job *j) {
  if (j->own_labels) {
    for (int i = 0; i < j->n_labels; i++) free(j->labels[i]);
    free(j->labels);
  }
  for (int s = 0; s < SPLIT_COUNT; s++) {
    ds_encoded_free(&j->enc[s]);
    ds_raw_free(&j->raw[s]);
  }
  model_free(&j->m);
  tok_free(j->tok);
  memset(j, 0, sizeof *j);
}
