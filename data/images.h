/* Image datasets (the ViT backbone's input): MedMNIST .npz files and torchvision ImageFolder-style PNG folders,
 * decoded to 8-bit pixels, and the batch fill that turns them into the model's normalised float input.
 *
 * Every reader returns 0, or -1 with ONE line in e naming the file (and entry or image) and what was expected;
 * after an error the set is left empty, and img_set_free is safe on it either way. Untrusted bytes never crash a
 * reader; a .npz entry's buffer grows with what actually inflates, and a PNG may reserve what its header
 * announces, at most IMG_MAX_DECODED bytes, before its data proves short.
 * Like the rest of data/, needs nothing from core but core/error.h. Little-endian hosts only (.npy data is read
 * as stored). */
#ifndef EPEE_DATA_IMAGES_H
#define EPEE_DATA_IMAGES_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* A set of same-sized images, decoded to 8-bit, interleaved [n, H, W, C] (C = 1 grey or 3 RGB). */
typedef struct {
  uint8_t *pixels;    /* [n, H, W, C] */
  int *labels;        /* [n], -1 when the source has no labels */
  char **names;       /* [n] where each image came from: "PATH:SPLIT[i]" for .npz, the file path for PNG */
  int n, H, W, C;     /* H == W always (see img_opts) */
  char **label_names; /* [n_labels]: folder = the class subfolder names (strcmp-sorted) or the known list;
                         npz = "0".."K-1" with K = 1 + the largest label of the split */
  int n_labels;
} img_set;

typedef struct {
  int channels; /* 1 or 3: images must have it (grey given to an RGB model is refused, and the reverse);
                   0 = the first image's */
  int size;     /* H = W required; 0 = the first image's size (then all must share it) */
  int resize;   /* 0: refuse an image whose size is not `size`; 1: resize it bilinearly to size x size (so
                   non-square sources need size > 0) */
} img_opts;

void img_set_free(img_set *s);

/* ---- .npz (MedMNIST) ----------------------------------------------------------------------------------- */

#define NPY_MAX_DIMS 8
#define IMG_MAX_CLASSES 65536 /* label values of a .npz must be below it: K label names are made from them */

/* A parsed .npy header (format versions 1.0, 2.0, 3.0). */
typedef struct {
  char descr[16];     /* the dtype as written, e.g. "|u1", "<i8" */
  char kind;          /* 'u' unsigned int, 'i' signed int, 'b' bool, 'f' float */
  int itemsize;       /* bytes per element: 1, 2, 4, 8 (b: 1; f: 2, 4, 8) */
  char byteorder;     /* '<' little-endian or '|' (one byte); '=' is read as '<', '>' only for one byte */
  int fortran_order;  /* as written; a successful parse has 0 (Fortran order is refused) */
  int ndim;           /* 0..NPY_MAX_DIMS */
  int64_t shape[NPY_MAX_DIMS];
  int64_t count;      /* elements: the product of shape */
  size_t offset;      /* the data starts at buf + offset and is exactly count * itemsize bytes long */
} npy_header;

/* Strict parser of buf[len], a whole .npy: magic "\x93NUMPY", version, header length, then the Python dict
 * literal with exactly the keys 'descr', 'fortran_order', 'shape' (any order, trailing comma, space padding and
 * the final newline as numpy writes them; strings in ' or "). Refuses structured/object/string/complex dtypes,
 * big-endian multi-byte types, Fortran order, more than NPY_MAX_DIMS dimensions, and data whose length is not
 * what the shape says (overflow-checked). e gets one line without a file name (the caller prefixes it). */
int npy_parse_header(const uint8_t *buf, size_t len, npy_header *h, epee_err *e);

/* MedMNIST layout: entries <split>_images.npy (uint8, [N, H, W] -> C = 1 or [N, H, W, 3] -> C = 3) and
 * <split>_labels.npy ([N, 1] or [N], any integer dtype, values 0..IMG_MAX_CLASSES-1; multi-label [N, K > 1] is
 * refused), stored or deflated (np.savez / np.savez_compressed). split: "train", "val" or "test". Label names
 * "0".."K-1" cover THIS split only: the caller checks dev/test labels against train's n_labels. */
int img_read_npz(const char *path, const char *split, const img_opts *o, img_set *out, epee_err *e);
/* The same on an in-memory .npz; name stands for the path in messages and names[] (the fuzzer's entry). */
int img_read_npz_buffer(const uint8_t *buf, size_t len, const char *name, const char *split, const img_opts *o,
                        img_set *out, epee_err *e);

/* ---- PNG ----------------------------------------------------------------------------------------------- */

#define IMG_MAX_SIDE 16384            /* decompression-bomb guards: a PNG's width and height ... */
#define IMG_MAX_DECODED (1ull << 28)  /* ... and its decoded bytes */

/* Decodes the PNG buf[len] (libspng; CRCs checked) to 8-bit interleaved pixels: *px (malloc'ed, caller frees)
 * = [*h, *w, *c]. Grey (colour type 0, any bit depth) and grey + alpha -> c = 1; RGB, palette and RGBA -> c = 3;
 * alpha and tRNS are dropped, no gamma is applied; 16-bit samples keep their high byte. name is for messages. */
int img_decode_png(const uint8_t *buf, size_t len, const char *name, uint8_t **px, int *h, int *w, int *c,
                   epee_err *e);

/* torchvision ImageFolder: dir/<class>/<image>.png, classes sorted by strcmp, files by name within a class.
 * Hidden entries (a leading '.') are skipped; anything else that is not a .png file (any case) in a class
 * folder, a nested folder, a file beside the class folders or an empty class folder is refused, so that
 * nothing is silently ignored. With n_known > 0 every class folder must be one of known_labels (label = its
 * index there; label_names = that list); otherwise the classes are discovered. */
int img_read_png_folder(const char *dir, char *const *known_labels, int n_known, const img_opts *o, img_set *out,
                        epee_err *e);
/* paths[n] in order, unlabelled (labels -1, n_labels 0). */
int img_read_png_files(char *const *paths, int n, const img_opts *o, img_set *out, epee_err *e);

/* ---- shared by the readers ------------------------------------------------------------------------------- */

/* The size and channel rule for an image (h, w, c) named name: *size and *C start as o->size and o->channels,
 * and the first image fixes what they leave open (0). Returns 0 when the image is size x size with C channels,
 * 1 when it must be resized (o->resize), -1 with e set when it is refused. */
int img_fit(const char *name, int h, int w, int c, const img_opts *o, int *size, int *C, epee_err *e);

/* Bilinear resize of src [h, w, C] to dst [H, W, C] as PyTorch's interpolate(mode="bilinear",
 * align_corners=False, antialias=False): half-pixel centres, source coordinates clamped at 0 and the last
 * pixel, float weights, rounded to nearest. Equal sizes copy exactly. No antialiasing: strong shrinking aliases. */
void img_resize_bilinear(const uint8_t *src, int h, int w, int C, uint8_t *dst, int H, int W);

/* ---- batches ------------------------------------------------------------------------------------------- */

typedef struct {
  float mean[3], std[3]; /* per channel, on x / 255 (the reference default is 0.5 / 0.5) */
} img_norm;

typedef struct {
  int crop_pad; /* random crop after zero padding of crop_pad pixels on each side (torchvision RandomCrop(padding)) */
  int hflip;    /* 1: horizontal flip with probability 0.5 (after the crop) */
} img_aug;

/* dst [n, C, H, W] float (planar, what the model reads): row r is image idx[r] of s, augmented when aug != NULL
 * with draws that depend on (seed, step, r) only (splitmix64), so a resumed run draws the same crops; then
 * (x / 255 - mean[c]) / std[c] (padding pixels are x = 0). idx[r] must be in [0, s->n). */
void img_fill_batch(const img_set *s, const int *idx, int n, const img_norm *nm, const img_aug *aug, uint64_t seed,
                    uint64_t step, float *dst);

#endif
