/* libFuzzer target for the JSON Lines dataset reader (scripts/fuzz.sh builds and runs it): the input written to a
 * .jsonl file and read with text, text_b, label and id keys. A refusal is one line naming the file; an accepted
 * file gives at least one example, every text valid UTF-8 and every label a known index. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/utf8.h"

#define CHECK(c) \
  do {           \
    if (!(c)) __builtin_trap(); \
  } while (0)

static int valid(const char *s) { return utf8_first_invalid(s, strlen(s)) < 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[64];
  snprintf(path, sizeof path, "/tmp/fuzz_jsonl.%ld.jsonl", (long)getpid());
  FILE *f = fopen(path, "wb");
  CHECK(f && fwrite(data, 1, size, f) == size && fclose(f) == 0);
  const ds_columns cols[2] = {{"text", NULL, "label", 1, NULL}, {"text", "text_b", "label", 0, "id"}};
  for (int k = 0; k < 2; k++) {
    ds_raw d;
    epee_err e;
    if (ds_read(path, &cols[k], NULL, 0, &d, &e)) {
      CHECK(!strncmp(e.msg, path, strlen(path)) && e.msg[strlen(path)] == ':' && !strchr(e.msg, '\n'));
    } else {
      CHECK(d.n >= 1);
      for (int i = 0; i < d.n; i++) {
        CHECK(valid(d.texts[i]) && (!d.texts_b || valid(d.texts_b[i])) && (!d.ids || valid(d.ids[i])));
        CHECK(d.labels[i] >= -1 && d.labels[i] < d.n_labels);
      }
    }
    ds_raw_free(&d);
  }
  unlink(path);
  return 0;
}
