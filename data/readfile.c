#include "data/readfile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

char *data_read_file(const char *path, size_t *len, epee_err *e) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    epee_errf(e, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = epee_malloc(cap);
  for (;;) { /* read in growing chunks: works for pipes too, no ftell */
    if (cap - n < 2) buf = epee_realloc(buf, cap *= 2);
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) break;
  }
  int failed = ferror(f), err = errno;
  fclose(f);
  if (failed) {
    free(buf);
    epee_errf(e, "%s: read error: %s", path, strerror(err));
    return NULL;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}
