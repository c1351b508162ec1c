/* What this process may use of the machine. */
#ifndef EPEE_MACHINE_H
#define EPEE_MACHINE_H

/* The CPUs this process may run on (sched_getaffinity: a taskset, cgroup cpuset or container limit counts), at
 * least 1: the default thread count, and the bound of a sweep's --jobs x threads. */
int machine_cores(void);

/* OpenMP threads spin before they sleep (libgomp: 300,000 iterations by default). Alone, that saves a wake-up per
 * parallel region; beside another busy process it burns the time slices the other needs: two default trainings
 * of 2 threads on 2 cores ran at 17% of their solo speed each (fair: 50%), and at 47-52% with a spin count of
 * 10,000, which leaves solo speed as it was. For serving the trade goes the other way: beside a busy process,
 * batch-1 p99 latency was 37 ms with 10,000 against 11 ms with the default, so only epee-train calls this. libgomp
 * reads its settings once, before main, so it is called first: when neither GOMP_SPINCOUNT nor OMP_WAIT_POLICY is
 * set, it sets GOMP_SPINCOUNT=10000 and re-executes the program with the same arguments (a user's own setting is
 * kept). Returns only if it did not re-execute. */
void machine_gentle_openmp(char *const *argv);

#endif
