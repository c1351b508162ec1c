/* Test-side writers of the image formats the readers take: .npy bytes, .npz archives (libzip, stored or deflated)
 * and PNG files (libspng's encoder), plus a tiny learnable image task in MedMNIST's layout. Tests make their own
 * inputs with these; nothing binary is committed. */
#ifndef EPEE_TESTS_IMAGE_WRITE_H
#define EPEE_TESTS_IMAGE_WRITE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint8_t *b;
  size_t n;
} bytes;

/* A .npy v1.0 with header dict (padded with spaces and '\n' to 64 bytes as numpy does) and data. */
bytes npy_raw(const char *dict, const void *data, size_t n);
/* The same with {'descr': descr, 'fortran_order': False, 'shape': shape} (shape as Python writes it: "(3, 1)"). */
bytes npy(const char *descr, const char *shape, const void *data, size_t n);

typedef struct {
  const char *name;
  bytes data; /* freed by npz_write */
} npz_entry;
/* Writes the entries (deflated when deflate, else stored) to path. 0, or -1. */
int npz_write(const char *path, npz_entry *es, int n, int deflate);

/* PNG bytes of px (libspng's SPNG_FMT_PNG layout: packed rows below 8 bits, host-endian 16-bit samples); indexed
 * colour gets a 2-entry palette. b == NULL on failure. */
bytes png_encode(int color_type, int depth, int w, int h, const void *px, size_t n);

/* A two-class task any classifier learns: grey S x S images, class 0 bright in the top half, class 1 in the
 * bottom half, with pixel noise; n[3] images in train/val/test (labels [N, 1] uint8). 0, or -1. */
int write_halves_npz(const char *path, int S, const int n[3], uint64_t seed);
/* Image i of that task (the same pixels write_halves_npz writes for its train split when seed matches). */
void halves_image(int S, int i, uint64_t seed, uint8_t *px, int *label);

#endif
