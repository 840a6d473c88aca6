/* svg.c - inline SVG line and bar charts (see svg.h). */
#include "loadgen/svg.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define W  900.0
#define H  300.0
#define ML 70.0
#define MR 20.0
#define MT 44.0
#define MB 40.0

void mcpgw_svg_escape(struct evbuffer *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            evbuffer_add(out, "&amp;", 5);
            break;
        case '<':
            evbuffer_add(out, "&lt;", 4);
            break;
        case '>':
            evbuffer_add(out, "&gt;", 4);
            break;
        case '"':
            evbuffer_add(out, "&quot;", 6);
            break;
        default:
            evbuffer_add(out, s, 1);
        }
    }
}

/* 1, 2 or 5 times a power of ten, at least v. */
static double nice_step(double v)
{
    double p, f;
    if (v <= 0)
        return 1;
    p = pow(10, floor(log10(v)));
    f = v / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

static void fmt_num(char *buf, size_t len, double v)
{
    if (fabs(v) >= 1e6)
        snprintf(buf, len, "%.3gM", v / 1e6);
    else if (fabs(v) >= 1e4)
        snprintf(buf, len, "%.3gk", v / 1e3);
    else
        snprintf(buf, len, "%g", v);
}

void mcpgw_svg_line_chart(struct evbuffer *out, const struct mcpgw_svg_chart *c)
{
    double x0 = 0, x1 = 1, y0 = 0, y1 = 1, ymin_pos = INFINITY, ymax = 0;
    double pw = W - ML - MR, ph = H - MT - MB;
    char num[32];
    if (c->n) {
        x0 = c->x[0];
        x1 = c->x[c->n - 1];
    }
    for (size_t m = 0; m < c->nmarkers; m++) {
        if (c->markers[m].x < x0)
            x0 = c->markers[m].x;
        if (c->markers[m].x > x1)
            x1 = c->markers[m].x;
    }
    if (x1 <= x0)
        x1 = x0 + 1;
    for (size_t s = 0; s < c->nseries; s++)
        for (size_t i = 0; i < c->n; i++) {
            double v = c->series[s].y[i];
            if (isnan(v))
                continue;
            if (v > ymax)
                ymax = v;
            if (v > 0 && v < ymin_pos)
                ymin_pos = v;
        }
    if (c->log_y) {
        if (!isfinite(ymin_pos))
            ymin_pos = 1;
        y0 = pow(10, floor(log10(ymin_pos)));
        y1 = pow(10, ceil(log10(ymax > y0 ? ymax : y0 * 10)));
        if (y1 <= y0)
            y1 = y0 * 10;
    } else {
        double step = nice_step(ymax / 5);
        y0 = 0;
        y1 = ymax > 0 ? ceil(ymax / step) * step : 1;
    }
#define PX(v) (ML + ((v)-x0) / (x1 - x0) * pw)
#define PY(v)                                                                                      \
    (c->log_y ? MT + ph - (log10(v) - log10(y0)) / (log10(y1) - log10(y0)) * ph                    \
              : MT + ph - ((v)-y0) / (y1 - y0) * ph)

    evbuffer_add_printf(out,
                        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" "
                        "width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
                        "font-size=\"11\">\n<text x=\"%.0f\" y=\"16\" font-size=\"13\" "
                        "font-weight=\"bold\">",
                        W, H, W, H, ML);
    mcpgw_svg_escape(out, c->title);
    evbuffer_add_printf(out, "</text>\n");
    /* Grid and y labels. */
    if (c->log_y) {
        /* Decades, and 2 and 5 times them when the range is short. */
        int fine = log10(y1) - log10(y0) <= 3;
        for (double d = y0; d <= y1 * 1.0001; d *= 10)
            for (int m = 1; m <= (fine ? 5 : 1); m += (m == 1 ? 1 : 3)) {
                double v = d * m;
                if (v > y1 * 1.0001)
                    break;
                fmt_num(num, sizeof(num), v);
                evbuffer_add_printf(out,
                                    "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                                    "stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%.1f\" "
                                    "text-anchor=\"end\">%s</text>\n",
                                    ML, ML + pw, PY(v), PY(v), ML - 4, PY(v) + 4, num);
            }
    } else {
        double step = nice_step((y1 - y0) / 5);
        for (double v = y0; v <= y1 * 1.0001; v += step) {
            fmt_num(num, sizeof(num), v);
            evbuffer_add_printf(out,
                                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                                "stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%.1f\" "
                                "text-anchor=\"end\">%s</text>\n",
                                ML, ML + pw, PY(v), PY(v), ML - 4, PY(v) + 4, num);
        }
    }
    {
        double step = nice_step((x1 - x0) / 10);
        for (double v = ceil(x0 / step) * step; v <= x1 + 1e-9; v += step) {
            fmt_num(num, sizeof(num), v);
            evbuffer_add_printf(out,
                                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                                "stroke=\"#eee\"/><text x=\"%.1f\" y=\"%.1f\" "
                                "text-anchor=\"middle\">%s</text>\n",
                                PX(v), PX(v), MT, MT + ph, PX(v), MT + ph + 14, num);
        }
    }
    evbuffer_add_printf(out,
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                        "fill=\"none\" stroke=\"#888\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
                        "text-anchor=\"middle\">",
                        ML, MT, pw, ph, ML + pw / 2, H - 6);
    mcpgw_svg_escape(out, c->xlabel);
    evbuffer_add_printf(out,
                        "</text>\n<text transform=\"translate(14,%.1f) rotate(-90)\" "
                        "text-anchor=\"middle\">",
                        MT + ph / 2);
    mcpgw_svg_escape(out, c->ylabel);
    evbuffer_add(out, "</text>\n", 8);
    /* Series. */
    for (size_t s = 0; s < c->nseries; s++) {
        int open = 0;
        for (size_t i = 0; i < c->n; i++) {
            double v = c->series[s].y[i];
            if (isnan(v) || (c->log_y && v <= 0)) {
                if (open)
                    evbuffer_add(out, "\"/>\n", 4);
                open = 0;
                continue;
            }
            if (!open) {
                evbuffer_add_printf(out,
                                    "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" "
                                    "points=\"",
                                    c->series[s].color);
                open = 1;
            }
            evbuffer_add_printf(out, "%.1f,%.1f ", PX(c->x[i]), PY(v));
        }
        if (open)
            evbuffer_add(out, "\"/>\n", 4);
        evbuffer_add_printf(out,
                            "<rect x=\"%.1f\" y=\"28\" width=\"10\" height=\"3\" fill=\"%s\"/>"
                            "<text x=\"%.1f\" y=\"33\">",
                            ML + 120.0 * (double)s, c->series[s].color,
                            ML + 120.0 * (double)s + 14);
        mcpgw_svg_escape(out, c->series[s].name);
        evbuffer_add(out, "</text>\n", 8);
    }
    /* Fault moments. */
    for (size_t m = 0; m < c->nmarkers; m++) {
        double x = PX(c->markers[m].x);
        evbuffer_add_printf(out,
                            "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                            "stroke=\"#c00\" stroke-dasharray=\"4,3\"/><text x=\"%.1f\" "
                            "y=\"%.1f\" fill=\"#c00\" transform=\"rotate(-90 %.1f %.1f)\" "
                            "text-anchor=\"end\">",
                            x, x, MT, MT + ph, x - 3, MT + 4, x - 3, MT + 4);
        mcpgw_svg_escape(out, c->markers[m].label);
        evbuffer_add(out, "</text>\n", 8);
    }
    evbuffer_add(out, "</svg>\n", 7);
#undef PX
#undef PY
}

void mcpgw_svg_bar_chart(struct evbuffer *out, const char *title, const char *const *labels,
                         const double *values, size_t n)
{
    double max = 0, h = 40 + 24.0 * (double)n, bw = W - 160 - 80;
    for (size_t i = 0; i < n; i++)
        if (values[i] > max)
            max = values[i];
    if (max <= 0)
        max = 1;
    evbuffer_add_printf(out,
                        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" "
                        "width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
                        "font-size=\"11\">\n<text x=\"10\" y=\"16\" font-size=\"13\" "
                        "font-weight=\"bold\">",
                        W, h, W, h);
    mcpgw_svg_escape(out, title);
    evbuffer_add(out, "</text>\n", 8);
    for (size_t i = 0; i < n; i++) {
        double y = 30 + 24.0 * (double)i, len = values[i] / max * bw;
        evbuffer_add_printf(out, "<text x=\"150\" y=\"%.1f\" text-anchor=\"end\">", y + 13);
        mcpgw_svg_escape(out, labels[i]);
        evbuffer_add_printf(out,
                            "</text><rect x=\"160\" y=\"%.1f\" width=\"%.1f\" height=\"18\" "
                            "fill=\"#4a7fc1\"/><text x=\"%.1f\" y=\"%.1f\">%.0f</text>\n",
                            y, len, 164 + len, y + 13, values[i]);
    }
    evbuffer_add(out, "</svg>\n", 7);
}
