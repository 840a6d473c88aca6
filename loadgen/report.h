/* report.h - the run's results for people and programs: terminal summary, JSON, HTML. */
#ifndef MCPGW_LOADGEN_REPORT_H
#define MCPGW_LOADGEN_REPORT_H

#include "loadgen/result-t.h"

#include <stddef.h>
#include <stdio.h>

/* The human summary. */
void mcpgw_report_summary(FILE *f, const struct mcpgw_lg_result *r);

/* Write the JSON report (fields in docs/loadgen.md) / the self-contained HTML report to path.
 * Return 0, or -1 with a sentence in err. */
int mcpgw_report_json(const char *path, const struct mcpgw_lg_result *r, char *err, size_t errlen);
int mcpgw_report_html(const char *path, const struct mcpgw_lg_result *r, char *err, size_t errlen);

/* Whether anything failed or was lost (what --check turns into exit status 3). */
int mcpgw_report_problems(const struct mcpgw_lg_result *r);

#endif
