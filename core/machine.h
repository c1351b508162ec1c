/* What this process may use of the machine. */
#ifndef EPEE_MACHINE_H
#define EPEE_MACHINE_H

/* The CPUs this process may run on (sched_getaffinity: a taskset, cgroup cpuset or container limit counts), at
 * least 1: the default thread count, and the bound of a sweep's --jobs x threads. */
int machine_cores(void);

#endif
