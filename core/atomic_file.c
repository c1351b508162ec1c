#include "core/atomic_file.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

FILE *atomic_open(atomic_file *a, const char *path, epee_err *e) {
  snprintf(a->path, sizeof a->path, "%s", path);
  snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld", path, (long)getpid());
  a->f = fopen(a->tmp, "w");
  if (!a->f) epee_errf(e, "%s: cannot write: %s", a->tmp, strerror(errno));
  return a->f;
}

int atomic_commit(atomic_file *a, epee_err *e) {
  int bad = ferror(a->f);
  bad |= fclose(a->f) != 0;
  a->f = NULL;
  if (bad || rename(a->tmp, a->path) != 0) {
    int err = errno;
    remove(a->tmp);
    return epee_errf(e, "%s: cannot write: %s", a->path, bad ? "write error" : strerror(err));
  }
  return 0;
}

void atomic_abort(atomic_file *a) {
  if (a->f) fclose(a->f);
  a->f = NULL;
  remove(a->tmp);
}

int atomic_write_text(const char *path, const char *text, epee_err *e) {
  atomic_file a;
  if (!atomic_open(&a, path, e)) return -1;
  fputs(text, a.f);
  fputc('\n', a.f);
  return atomic_commit(&a, e);
}
