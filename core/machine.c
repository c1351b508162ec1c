#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "core/machine.h"

#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

int machine_cores(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

void machine_gentle_openmp(char *const *argv) {
  if (getenv("GOMP_SPINCOUNT") || getenv("OMP_WAIT_POLICY")) return;
  setenv("GOMP_SPINCOUNT", "10000", 1);
  execv("/proc/self/exe", argv); /* on failure (no /proc): go on with libgomp's default */
  unsetenv("GOMP_SPINCOUNT");
}
