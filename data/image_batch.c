/* Batch fill for image models: augmentation (random crop with zero padding, horizontal flip) and per-channel
 * normalisation into planar floats (see img_fill_batch in images.h). The 256 possible values of a channel are
 * normalised once per call, so each pixel costs one table load. */
#include "data/images.h"

/* splitmix64 (Steele, Lea, Flood 2014), as the batching shuffle */
static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void img_fill_batch(const img_set *s, const int *idx, int n, const img_norm *nm, const img_aug *aug, uint64_t seed,
                    uint64_t step, float *dst) {
  const int H = s->H, W = s->W, C = s->C, pad = aug ? aug->crop_pad : 0;
  EPEE_CHECK(C >= 1 && C <= 3 && pad >= 0, "an image set of 1..3 channels and crop_pad >= 0");
  float lut[3][256];
  for (int c = 0; c < C; c++)
    for (int v = 0; v < 256; v++) lut[c][v] = ((float)v / 255.0f - nm->mean[c]) / nm->std[c];
  const size_t plane = (size_t)H * W;
#pragma omp parallel for schedule(static) if ((size_t)n * plane * C > (1u << 16))
  for (int r = 0; r < n; r++) {
    EPEE_CHECK(idx[r] >= 0 && idx[r] < s->n, "batch index within the image set");
    int dy = 0, dx = 0, flip = 0; /* crop offsets in the padded image, 0..2 pad */
    if (aug) {
      uint64_t st = seed;
      st = splitmix64(&st) + step;
      st = splitmix64(&st) + (uint64_t)r;
      dy = (int)(splitmix64(&st) % (uint64_t)(2 * pad + 1));
      dx = (int)(splitmix64(&st) % (uint64_t)(2 * pad + 1));
      flip = aug->hflip && (splitmix64(&st) >> 63);
    }
    /* out(y, x) = src(y + oy, X + ox) with X = x, or W-1-x when flipped; outside the image it is padding (0) */
    const int oy = dy - pad, ox = dx - pad;
    int lo = flip ? ox : -ox, hi = flip ? W + ox : W - ox; /* x whose source column is inside */
    lo = lo < 0 ? 0 : lo;
    hi = hi > W ? W : hi;
    const uint8_t *im = s->pixels + (size_t)idx[r] * plane * C;
    for (int c = 0; c < C; c++) {
      const float *t = lut[c], zero = t[0];
      float *o = dst + ((size_t)r * C + c) * plane;
      for (int y = 0; y < H; y++, o += W) {
        int sy = y + oy;
        if (sy < 0 || sy >= H || lo >= hi) {
          for (int x = 0; x < W; x++) o[x] = zero;
          continue;
        }
        const uint8_t *row = im + (size_t)sy * W * C + c;
        for (int x = 0; x < lo; x++) o[x] = zero;
        if (C == 1 && !flip)
          for (int x = lo; x < hi; x++) o[x] = t[row[x + ox]];
        else if (!flip)
          for (int x = lo; x < hi; x++) o[x] = t[row[(x + ox) * C]];
        else
          for (int x = lo; x < hi; x++) o[x] = t[row[(W - 1 - x + ox) * C]];
        for (int x = hi; x < W; x++) o[x] = zero;
      }
    }
  }
}
