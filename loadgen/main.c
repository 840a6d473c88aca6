/* main.c - mcpgw-loadgen: flags, then the run (run.c). */
#include "common/log.h"
#include "loadgen/opts.h"
#include "loadgen/run.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    static struct mcpgw_lg_config cfg; /* large (source addresses): not on the stack */
    int rc = mcpgw_lg_opts_parse(argc, argv, &cfg);
    if (rc != 0)
        return rc > 0 ? 0 : 1;
    mcpgw_log_set_component("loadgen");
    return mcpgw_lg_run(&cfg);
}
