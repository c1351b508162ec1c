/* Writes the engine's all-exit logits for the first N inputs of a TSV/JSONL file, with the exact token
 * ids (tokenised by the model file's own tokenizer, whatever its kind), to an HDF5 file, so
 * experiments/check_export.py can load the model file by name into the PyTorch twin of its arch and compare.
 * Usage: export_logits MODEL.h5 INPUT.tsv OUT.h5 [N = 32] */
#include <stdio.h>
#include <stdlib.h>

#include "core/dnnl_wrap.h"
#include "infer/engine.h"
#include "infer/model_file.h"

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: export_logits MODEL.h5 INPUT.tsv OUT.h5 [N]\n");
    return 2;
  }
  int N = argc > 4 ? atoi(argv[4]) : 32;
  epee_err e;
  model m;
  model_meta meta;
  if (model_file_read(argv[1], &m, &meta, &e)) {
    fprintf(stderr, "export_logits: %s\n", e.msg);
    return 1;
  }
  ds_raw raw;
  ds_encoded enc;
  ds_columns cols = {.text_col = "text", .label_col = "label", .allow_missing_label = 1};
  if (ds_read(argv[2], &cols, meta.labels, meta.n_labels, &raw, &e) ||
      ds_encode(&raw, meta.tok, meta.max_length, &enc, &e)) {
    fprintf(stderr, "export_logits: %s\n", e.msg);
    return 1;
  }
  if (N > enc.n) N = enc.n;
  int T = meta.max_length, L = m.n_layers, C = m.n_labels;
  int32_t *ids = calloc((size_t)N * T, 4), *types = calloc((size_t)N * T, 4);
  float *mask = calloc((size_t)N * T, 4), *logits = malloc(sizeof(float) * (size_t)N * L * C);
  int *idx = malloc(sizeof(int) * (size_t)N);
  for (int i = 0; i < N; i++) idx[i] = i;
  ds_batch b = {.idx = idx, .n = N, .max_len = T};
  ds_fill_batch(&enc, &b, ids, types, mask, NULL);
  engine g;
  if (N < 1 || engine_init(&g, &m, N, T, &e)) {
    fprintf(stderr, "export_logits: %s\n", N < 1 ? "no inputs" : e.msg);
    return 1;
  }
  model_batch mb = {.B = N, .T = T, .ids = ids, .type_ids = types, .mask = mask};
  engine_all_exits(&g, &mb, logits);
  char tmp[4200];
  hid_t f = h5_create_tmp(argv[3], tmp, sizeof tmp, &e);
  int ok = f >= 0 && !h5_write_ints(f, "ids", ids, 2, (int[]){N, T}, &e) &&
           !h5_write_ints(f, "type_ids", types, 2, (int[]){N, T}, &e) &&
           !h5_write_floats(f, "mask", mask, 2, (int[]){N, T}, &e) &&
           !h5_write_floats(f, "logits", logits, 3, (int[]){N, L, C}, &e);
  if (f < 0 || h5_commit(f, tmp, argv[3], ok, &e)) {
    fprintf(stderr, "export_logits: %s\n", e.msg);
    return 1;
  }
  printf("wrote %s: %s model, %s tokenizer, %d inputs, logits [%d, %d, %d]\n", argv[3], m.arch->name,
         meta.tok->kind->name, N, N, L, C);
  engine_free(&g);
  free(ids), free(types), free(mask), free(logits), free(idx);
  ds_encoded_free(&enc), ds_raw_free(&raw);
  model_free(&m), model_meta_free(&meta);
  dw_shutdown();
  return 0;
}
