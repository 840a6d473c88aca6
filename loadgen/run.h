/* run.h - the parent process of a load-generator run: forks the workers, steers the phases
 * (ramp, load, grace, finish), performs the drills, samples /proc, merges what the workers
 * report and writes the summary and reports. */
#ifndef MCPGW_LOADGEN_RUN_H
#define MCPGW_LOADGEN_RUN_H

#include "loadgen/opts.h"

/* Run the whole test. Returns the process exit status (see --help). */
int mcpgw_lg_run(const struct mcpgw_lg_config *cfg);

#endif
