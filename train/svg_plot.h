/* A tiny SVG chart writer: scatter markers and polylines on linear axes with ticks, a legend, an optional
 * horizontal reference line and one highlighted point per series. Generic: it knows nothing of early exit. */
#ifndef EPEE_SVG_PLOT_H
#define EPEE_SVG_PLOT_H

#include <stdio.h>

typedef struct {
  const char *name;       /* legend text */
  const double *x, *y;    /* markers [n] */
  int n;
  const double *lx, *ly;  /* polyline [ln], drawn in the given order; ln = 0 draws none */
  int ln;
  int ring;               /* index into x/y of a point circled with a larger ring, -1 for none */
  const char *const *labels; /* [n] text beside each marker (NULL: none; a NULL entry: none for that point) */
} svg_series;

typedef struct {
  const char *title, *xlabel, *ylabel;
  int has_hline;          /* draw a dashed horizontal line at y = hline, labelled hline_label */
  double hline;
  const char *hline_label;
  const char *ring_label; /* legend entry explaining the rings; NULL for none */
} svg_plot_spec;

/* Writes one complete SVG document to f; series get colours in order from a fixed palette (cycling).
 * Non-finite coordinates are skipped. Returns 0, or -1 if the stream reported a write error. */
int svg_plot_write(FILE *f, const svg_plot_spec *spec, const svg_series *s, int n_series);

#endif
