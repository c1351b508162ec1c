#include "train/svg_plot.h"

#include <math.h>

enum { WIDTH = 760, HEIGHT = 480, LEFT = 70, RIGHT = 190, TOP = 50, BOTTOM = 60 };
static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                                      "#7f7f7f"};
#define N_COLORS ((int)(sizeof palette / sizeof palette[0]))

/* One axis: data range [lo, hi] mapped to pixels [p0, p1], ticks every `step`. */
typedef struct {
  double lo, hi, step;
  double p0, p1;
} axis;

static void fit_range(double *lo, double *hi, double v) {
  if (!isfinite(v)) return;
  if (v < *lo) *lo = v;
  if (v > *hi) *hi = v;
}

/* 1, 2 or 5 times a power of ten, giving about 5 intervals over `span` (span > 0). */
static double nice_step(double span) {
  double raw = span / 5, mag = pow(10, floor(log10(raw)));
  double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static axis make_axis(double lo, double hi, double p0, double p1) {
  if (!(lo <= hi)) lo = 0, hi = 1; /* no finite data */
  if (hi - lo < 1e-12) {           /* a single value: open a window around it */
    double pad = fabs(lo) > 1e-12 ? fabs(lo) * 0.05 : 0.5;
    lo -= pad, hi += pad;
  }
  double pad = (hi - lo) * 0.05;
  axis a = {lo - pad, hi + pad, 0, p0, p1};
  a.step = nice_step(a.hi - a.lo);
  return a;
}

static double to_px(const axis *a, double v) { return a->p0 + (v - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0); }

static void put_text(FILE *f, const char *s) {
  for (; s && *s; s++) switch (*s) {
      case '&': fputs("&amp;", f); break;
      case '<': fputs("&lt;", f); break;
      case '>': fputs("&gt;", f); break;
      case '"': fputs("&quot;", f); break;
      default: fputc(*s, f);
    }
}

/* Tick marks, grid lines and labels; `vertical` is the y axis. */
static void draw_ticks(FILE *f, const axis *a, int vertical, double x0, double y0, double x1, double y1) {
  int decimals = a->step >= 1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
  for (double j = ceil(a->lo / a->step - 1e-9); j * a->step <= a->hi + 1e-9 * a->step; j++) {
    double v = j * a->step, p = to_px(a, v);
    if (vertical) {
      fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#e0e0e0\"/>\n", x0, p, x1, p);
      fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" font-size=\"11\">%.*f</text>\n", x0 - 6, p + 4,
              decimals, v);
    } else {
      fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#e0e0e0\"/>\n", p, y0, p, y1);
      fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"11\">%.*f</text>\n", p, y0 + 16,
              decimals, v);
    }
  }
}

int svg_plot_write(FILE *f, const svg_plot_spec *spec, const svg_series *s, int n_series) {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (int k = 0; k < n_series; k++) {
    for (int i = 0; i < s[k].n; i++) fit_range(&xlo, &xhi, s[k].x[i]), fit_range(&ylo, &yhi, s[k].y[i]);
    for (int i = 0; i < s[k].ln; i++) fit_range(&xlo, &xhi, s[k].lx[i]), fit_range(&ylo, &yhi, s[k].ly[i]);
  }
  if (spec->has_hline) fit_range(&ylo, &yhi, spec->hline);
  double px0 = LEFT, px1 = WIDTH - RIGHT, py0 = HEIGHT - BOTTOM, py1 = TOP;
  axis ax = make_axis(xlo, xhi, px0, px1), ay = make_axis(ylo, yhi, py0, py1);

  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
             "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n",
          WIDTH, HEIGHT, WIDTH, HEIGHT);
  fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  fprintf(f, "<text x=\"%.2f\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">", (px0 + px1) / 2);
  put_text(f, spec->title);
  fprintf(f, "</text>\n");
  draw_ticks(f, &ax, 0, px0, py0, px1, py1);
  draw_ticks(f, &ay, 1, px0, py0, px1, py1);
  fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"black\"/>\n", px0, py1,
          px1 - px0, py0 - py1);
  fprintf(f, "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\">", (px0 + px1) / 2, HEIGHT - 18);
  put_text(f, spec->xlabel);
  fprintf(f, "</text>\n<text transform=\"translate(18 %.2f) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">",
          (py0 + py1) / 2);
  put_text(f, spec->ylabel);
  fprintf(f, "</text>\n");
  if (spec->has_hline && isfinite(spec->hline)) {
    double y = to_px(&ay, spec->hline);
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#555\" stroke-dasharray=\"5 4\"/>\n",
            px0, y, px1, y);
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" font-size=\"11\" fill=\"#555\">", px1 - 4, y - 5);
    put_text(f, spec->hline_label);
    fprintf(f, "</text>\n");
  }

  for (int k = 0; k < n_series; k++) {
    const svg_series *q = &s[k];
    const char *col = palette[k % N_COLORS];
    if (q->ln > 0) {
      fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
      for (int i = 0; i < q->ln; i++)
        if (isfinite(q->lx[i]) && isfinite(q->ly[i]))
          fprintf(f, "%s%.2f,%.2f", i ? " " : "", to_px(&ax, q->lx[i]), to_px(&ay, q->ly[i]));
      fprintf(f, "\"/>\n");
    }
    for (int i = 0; i < q->n; i++) {
      if (!isfinite(q->x[i]) || !isfinite(q->y[i])) continue;
      double x = to_px(&ax, q->x[i]), y = to_px(&ay, q->y[i]);
      fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\" fill-opacity=\"0.6\"/>\n", x, y, col);
      if (i == q->ring)
        fprintf(f, "<circle class=\"ring\" cx=\"%.2f\" cy=\"%.2f\" r=\"8\" fill=\"none\" stroke=\"%s\" "
                   "stroke-width=\"2.5\"/>\n",
                x, y, col);
      if (q->labels && q->labels[i]) {
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"10\" fill=\"%s\">", x + 5, y - 5, col);
        put_text(f, q->labels[i]);
        fprintf(f, "</text>\n");
      }
    }
    double ly = TOP + 16 + 22 * k, lx = px1 + 16;
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"2\"/>\n", lx, ly,
            lx + 24, ly, col);
    fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\"/>\n", lx + 12, ly, col);
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"12\">", lx + 32, ly + 4);
    put_text(f, q->name);
    fprintf(f, "</text>\n");
  }
  if (spec->ring_label) {
    double ly = TOP + 16 + 22 * n_series, lx = px1 + 16;
    fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"8\" fill=\"none\" stroke=\"#333\" stroke-width=\"2.5\"/>\n",
            lx + 12, ly);
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"12\">", lx + 32, ly + 4);
    put_text(f, spec->ring_label);
    fprintf(f, "</text>\n");
  }
  fprintf(f, "</svg>\n");
  return ferror(f) ? -1 : 0;
}
