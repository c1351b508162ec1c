/* What the image readers share: freeing a set, the size/channel rule, bilinear resizing (see images.h). */
#include <string.h>

#include "data/images.h"

void img_set_free(img_set *s) {
  for (int i = 0; s->names && i < s->n; i++) free(s->names[i]);
  for (int k = 0; s->label_names && k < s->n_labels; k++) free(s->label_names[k]);
  free(s->pixels);
  free(s->labels);
  free(s->names);
  free(s->label_names);
  memset(s, 0, sizeof *s);
}

static const char *channels_name(int c) { return c == 1 ? "grey (1 channel)" : "RGB (3 channels)"; }

int img_fit(const char *name, int h, int w, int c, const img_opts *o, int *size, int *C, epee_err *e) {
  EPEE_CHECK((o->channels == 0 || o->channels == 1 || o->channels == 3) && o->size >= 0 && (o->resize & ~1) == 0,
             "img_opts: channels 0, 1 or 3; size >= 0; resize 0 or 1");
  if (*C == 0) *C = c;
  if (c != *C)
    return epee_errf(e, "%s: %s image, expected %s%s", name, channels_name(c), channels_name(*C),
                     o->channels ? "" : " like the first image");
  if (*size == 0) {
    if (h != w)
      return epee_errf(e, "%s: image is %dx%d (height x width), not square; give a size (with resize) to scale it",
                       name, h, w);
    *size = h;
  }
  if (h == *size && w == *size) return 0;
  if (o->resize) return 1;
  return epee_errf(e, "%s: image is %dx%d (height x width), expected %dx%d%s (resizing is off)", name, h, w, *size,
                   *size, o->size ? "" : " like the first image");
}

/* PyTorch's area_pixel_compute_source_index for align_corners=False: half-pixel centres, clamped at 0. */
static void source_taps(int in, int out, int *i0, int *i1, float *frac) {
  float scale = (float)in / (float)out;
  for (int k = 0; k < out; k++) {
    float s = scale * ((float)k + 0.5f) - 0.5f;
    if (s < 0) s = 0;
    int a = (int)s;
    if (a > in - 1) a = in - 1;
    i0[k] = a;
    i1[k] = a < in - 1 ? a + 1 : a;
    frac[k] = s - (float)a;
  }
}

void img_resize_bilinear(const uint8_t *src, int h, int w, int C, uint8_t *dst, int H, int W) {
  int *y0 = epee_malloc((size_t)(2 * H + 2 * W) * sizeof *y0), *y1 = y0 + H, *x0 = y1 + H, *x1 = x0 + W;
  float *fy = epee_malloc((size_t)(H + W) * sizeof *fy), *fx = fy + H;
  source_taps(h, H, y0, y1, fy);
  source_taps(w, W, x0, x1, fx);
  for (int Y = 0; Y < H; Y++) {
    const uint8_t *r0 = src + (size_t)y0[Y] * w * C, *r1 = src + (size_t)y1[Y] * w * C;
    float b = fy[Y], a = 1 - b;
    uint8_t *o = dst + (size_t)Y * W * C;
    for (int X = 0; X < W; X++) {
      float q = fx[X], p = 1 - q;
      for (int c = 0; c < C; c++) {
        float v = a * (p * r0[x0[X] * C + c] + q * r0[x1[X] * C + c]) + b * (p * r1[x0[X] * C + c] + q * r1[x1[X] * C + c]);
        o[X * C + c] = (uint8_t)(v >= 255 ? 255 : v + 0.5f);
      }
    }
  }
  free(y0);
  free(fy);
}
