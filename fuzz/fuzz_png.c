/* libFuzzer target for the PNG decoder (scripts/fuzz.sh builds it with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION,
 * so that libspng ignores chunk CRCs and mutations reach the image data). A decoded image must have the size
 * it claims; it is then resized, as the readers do for a mismatched size. Refusals must be one line. */
#include <string.h>

#include "data/images.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *px;
  int h, w, c;
  epee_err e;
  if (img_decode_png(data, size, "fuzz.png", &px, &h, &w, &c, &e)) {
    if (strchr(e.msg, '\n') || px) __builtin_trap();
    return 0;
  }
  if (h < 1 || w < 1 || h > IMG_MAX_SIDE || w > IMG_MAX_SIDE || (c != 1 && c != 3)) __builtin_trap();
  volatile uint8_t last = px[(size_t)h * w * c - 1]; /* ASan: the buffer is that big */
  (void)last;
  uint8_t small[7 * 7 * 3];
  img_resize_bilinear(px, h, w, c, small, 7, 7);
  free(px);
  return 0;
}
