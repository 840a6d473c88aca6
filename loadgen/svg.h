/* svg.h - small inline SVG charts for the HTML report (no scripts, no external assets). */
#ifndef MCPGW_LOADGEN_SVG_H
#define MCPGW_LOADGEN_SVG_H

#include <stddef.h>

struct evbuffer;

struct mcpgw_svg_series {
    const char *name;
    const char *color;
    const double *y; /* n values; NaN leaves a gap */
};

struct mcpgw_svg_marker {
    double x;
    const char *label;
};

struct mcpgw_svg_chart {
    const char *title, *xlabel, *ylabel;
    const double *x; /* n increasing values */
    size_t n;
    const struct mcpgw_svg_series *series;
    size_t nseries;
    const struct mcpgw_svg_marker *markers; /* vertical lines (fault moments) */
    size_t nmarkers;
    int log_y; /* logarithmic y axis (values <= 0 are skipped) */
};

/* Append a line chart as an <svg> element. All strings are borrowed and escaped. */
void mcpgw_svg_line_chart(struct evbuffer *out, const struct mcpgw_svg_chart *c);

/* Append a horizontal bar chart of n labelled values. */
void mcpgw_svg_bar_chart(struct evbuffer *out, const char *title, const char *const *labels,
                         const double *values, size_t n);

/* Append s with &, <, >, " escaped. */
void mcpgw_svg_escape(struct evbuffer *out, const char *s);

#endif
