/* Importing a BERT-base-sized HF checkpoint (experiments/bench_import.sh runs it):
 *   bench_import make FILE.safetensors   writes one with random weights under BertModel's names (F32, ~440 MB)
 *   bench_import load FILE.safetensors   model_create (weights only, as served) + hf_load_weights, timed; prints
 *                                        seconds, peak RSS (getrusage) and the weights' float32 size
 *   bench_import machine                 the CPU, oneDNN's ISA and the thread count
 * Each load runs in its own process, so its peak RSS is that of one import. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/dnnl_wrap.h"
#include "core/safetensors.h"
#include "infer/hf_folder.h"

static const model_config bert_base = {.vocab = 30522, .hidden = 768, .layers = 12, .heads = 12, .intermediate = 3072,
                                       .max_position = 512, .type_vocab = 2, .num_labels = 2,
                                       .layer_norm_eps = 1e-12f, .init_std = 0.02f};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "machine")) {
    dw_describe_machine(stdout);
    return 0;
  }
  if (argc != 3 || (strcmp(argv[1], "make") && strcmp(argv[1], "load"))) {
    fprintf(stderr, "usage: bench_import make|load FILE.safetensors | bench_import machine\n");
    return 2;
  }
  epee_err e = {{0}};
  model m;
  double t0 = now();
  if (model_create(&m, model_find_arch("bert"), &bert_base, PARAMS_SERVE, 0, &e)) goto fail;
  if (!strcmp(argv[1], "make")) {
    m.arch->init(&m, 1);
    st_out *t = epee_malloc(sizeof *t * (size_t)m.ps.n);
    int n = 0;
    for (int i = 0; i < m.ps.n; i++) /* the backbone only, as BertModel.save_pretrained writes it */
      if (strncmp(m.ps.t[i]->name, "classifiers.", 12))
        t[n++] = (st_out){m.ps.t[i]->name + 5, m.ps.t[i]->data, m.ps.t[i]->ndim, m.ps.t[i]->shape};
    int rc = st_write(argv[2], t, n, ST_F32, (const char *[]){"format", "pt", NULL}, &e);
    free(t);
    model_free(&m);
    if (rc) goto fail;
    printf("wrote %s: %d tensors\n", argv[2], n);
    return 0;
  }
  hf_report r;
  double tc = now();
  int rc = hf_load_weights(&m, argv[2], 0, &r, &e);
  double t1 = now();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  if (!rc)
    printf("import %.3f s, peak RSS %.1f MB, weights float32 %.1f MB, %d tensors loaded, %d initialised "
           "(allocation %.3f s, loading %.3f s)\n", t1 - t0, ru.ru_maxrss / 1024.0, 4.0 * (double)m.ps.total / 1048576.0,
           r.n_loaded, r.n_fresh, tc - t0, t1 - tc);
  hf_report_free(&r);
  model_free(&m);
  if (!rc) return 0;
fail:
  fprintf(stderr, "bench_import: %s\n", e.msg);
  return 1;
}
