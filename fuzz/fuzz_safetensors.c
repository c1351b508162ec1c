/* libFuzzer target for the safetensors reader (scripts/fuzz.sh builds and runs it): st_parse on the input as a
 * whole file, then every float tensor it accepted converted to float32. A refusal must be one line naming the
 * file; an accepted header must describe bytes that are inside the input (ASan checks every read), and no
 * tensor may need more memory than the input's size. */
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"

#define CHECK(c) \
  do {           \
    if (!(c)) __builtin_trap(); \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  st_file f;
  epee_err e;
  if (st_parse(&f, "fuzz.safetensors", data, size, &e)) {
    CHECK(!strncmp(e.msg, "fuzz.safetensors: ", 18) && !strchr(e.msg, '\n'));
    return 0;
  }
  for (int i = 0; i < f.n; i++) {
    const st_tensor *t = &f.t[i];
    CHECK(f.data + t->end <= size && t->begin <= t->end);
    if (!st_is_float(t->dtype)) continue;
    CHECK((uint64_t)t->numel <= size);
    float *dst = malloc(sizeof(float) * ((size_t)t->numel + 1));
    CHECK(st_read_f32(&f, t, dst, &e) == 0);
    free(dst);
  }
  st_close(&f);
  return 0;
}
