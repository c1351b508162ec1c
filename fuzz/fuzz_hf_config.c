/* libFuzzer target for HF config.json mapping (scripts/fuzz.sh builds and runs it): the input parsed as config.json
 * is (epee_json_parse) and read as every arch's config. A refusal is one line naming the file; an accepted config
 * must lie inside every field's range and have hidden divisible by heads, so model_create would take it. */
#include <string.h>

#include "core/json.h"
#include "models/model.h"

#define CHECK(c) \
  do {           \
    if (!(c)) __builtin_trap(); \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  epee_err e;
  json_t *j = epee_json_parse((const char *)data, size, "config.json", 1, &e);
  if (!j) {
    CHECK(!strncmp(e.msg, "config.json:", 12) && !strchr(e.msg, '\n'));
    return 0;
  }
  for (int a = 0; model_arch_names[a]; a++) {
    const model_arch *arch = model_find_arch(model_arch_names[a]);
    model_config c = {.layer_norm_eps = 1e-12f, .num_labels = 2};
    unsigned got;
    if (hf_config_read(arch, j, "config.json", &c, &got, &e)) {
      CHECK(!strncmp(e.msg, "config.json: ", 13) && !strchr(e.msg, '\n'));
      continue;
    }
    CHECK(c.heads > 0 && c.hidden > 0 && c.hidden % c.heads == 0);
    for (int f = 0; f < MF_COUNT; f++) {
      if (!(got & MF_BIT(f))) continue;
      const model_field *mf = &model_fields[f];
      const char *p = (const char *)&c + mf->offset;
      double v = mf->type == MFT_FLOAT ? (double)*(const float *)p : (double)*(const int *)p;
      CHECK(v >= mf->lo && v <= mf->hi);
    }
  }
  json_decref(j);
  return 0;
}
