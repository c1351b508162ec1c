/* Learning-rate schedule: linear warm-up from 0 to the peak over `warmup` steps, then linear decay to 0
 * at `total` steps (HF get_linear_schedule_with_warmup). step is 0-based: the lr used for update step+1. */
#ifndef EPEE_SCHEDULE_H
#define EPEE_SCHEDULE_H

static inline double lr_at(double peak, long step, long warmup, long total) {
  if (step < warmup) return peak * (double)(step + 1) / (double)warmup;
  if (total <= warmup) return peak;
  double f = (double)(total - step) / (double)(total - warmup);
  return peak * (f > 0 ? f : 0);
}

#endif
