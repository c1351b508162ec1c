#define _DEFAULT_SOURCE /* flock (BSD), kept because its lock belongs to the open file, not the process */
#include "train/run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdir_p(const char *dir, epee_err *e) {
  char buf[4096];
  if ((size_t)snprintf(buf, sizeof buf, "%s", dir) >= sizeof buf) return epee_errf(e, "%s: path too long", dir);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) && errno != EEXIST) return epee_errf(e, "%s: cannot create directory: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0777) && errno != EEXIST) return epee_errf(e, "%s: cannot create directory: %s", buf, strerror(errno));
  return 0;
}

int run_dir_lock(const char *dir, epee_err *e) {
  if (mkdir_p(dir, e)) return -1;
  char path[4200];
  snprintf(path, sizeof path, "%s/.lock", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return epee_errf(e, "%s: cannot open the run folder's lock: %s", path, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char pid[32] = "";
    ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
    pid[n > 0 ? n : 0] = 0;
    pid[strcspn(pid, "\n")] = 0;
    close(fd);
    if (err != EWOULDBLOCK) return epee_errf(e, "%s: cannot lock: %s", path, strerror(err));
    return epee_errf(e, "%s: run folder in use by another epee-train (pid %s); wait for it to end or stop it first",
                     dir, pid[0] ? pid : "unknown");
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
    close(fd);
    return epee_errf(e, "%s: cannot write the lock holder's pid: %s", path, strerror(errno));
  }
  return fd;
}

void run_dir_unlock(int fd) {
  if (fd >= 0) close(fd); /* the lock goes with the last descriptor; the file stays (unlinking it would race) */
}

/* the pid of "<name>.tmp.<pid>", or 0 when name is not one */
static long tmp_writer(const char *name) {
  const char *t = strstr(name, ".tmp.");
  if (!t || !t[5]) return 0;
  char *end;
  long pid = strtol(t + 5, &end, 10);
  return *end == 0 && pid > 0 ? pid : 0;
}

int run_dir_remove_stale_tmp(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *de; d && (de = readdir(d));) {
    long pid = tmp_writer(de->d_name);
    if (!pid || pid == (long)getpid() || !(kill((pid_t)pid, 0) != 0 && errno == ESRCH)) continue;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    if (unlink(path) == 0) {
      printf("run: removed %s, left by a writer (pid %ld) that was killed\n", path, pid);
      n++;
    }
  }
  if (d) closedir(d);
  return n;
}

static int has_file(const char *dir, const char *name) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return access(path, F_OK) == 0;
}

int run_dir_has_run(const char *dir) { return has_file(dir, "config.yaml") || has_file(dir, "checkpoint.h5"); }

int run_dir_need_checkpoint(const char *dir, const char *doing, epee_err *e) {
  if (!has_file(dir, "config.yaml")) return epee_errf(e, "%s: not a run folder (no config.yaml): cannot %s", dir, doing);
  if (has_file(dir, "checkpoint.h5")) return 0;
  return epee_errf(e, "%s: the run has no checkpoint yet (the first is written at the first dev evaluation or after "
                      "train.checkpoint_every_s), so there is nothing to %s; start it again with: epee-train "
                      "--overwrite %s/config.yaml", dir, doing, dir);
}
