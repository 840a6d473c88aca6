/* test_procinfo.c - what the load generator reads from /proc: the kernel's slab and sockets,
 * and which processes belong to the cluster under test. */
#include "loadgen/procinfo.h"
#include "tests/unit/check-run.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

START_TEST(test_slab_and_sockstat_are_read)
{
    struct mcpgw_sockstat ss;
    ck_assert_int_gt(mcpgw_procinfo_slab_kb(), 0);
    ck_assert_int_eq(mcpgw_procinfo_sockstat(&ss), 0);
    ck_assert_int_ge(ss.tcp_inuse, 0);
}
END_TEST

/* Three samples: this process, a stranger named by a pid file, and a stranger that is not. */
START_TEST(test_pidfile_filter_keeps_the_named_processes_and_their_children)
{
    struct mcpgw_proc_sample s[4];
    char dir[] = "/tmp/mcpgw-procinfo.XXXXXX", path[64];
    FILE *f;
    int n;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    memset(s, 0, sizeof(s));
    s[0].pid = getpid(), s[0].ppid = getppid();
    s[1].pid = 999990, s[1].ppid = 1;      /* a node named by n1.pid */
    s[2].pid = 999991, s[2].ppid = 999990; /* its child (a balancer worker) */
    s[3].pid = 999992, s[3].ppid = 1;      /* another cluster's process */
    snprintf(path, sizeof(path), "%s/n1.pid", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "999990\n");
    fclose(f);
    n = mcpgw_procinfo_filter_pidfiles(s, 4, dir);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(s[0].pid, getpid());
    ck_assert_int_eq(s[1].pid, 999990);
    ck_assert_int_eq(s[2].pid, 999991);
    unlink(path);
    rmdir(dir);
    /* A folder that does not exist filters nothing. */
    ck_assert_int_eq(mcpgw_procinfo_filter_pidfiles(s, 3, "/nonexistent/mcpgw"), 3);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {test_slab_and_sockstat_are_read,
                            test_pidfile_filter_keeps_the_named_processes_and_their_children};
    return mcpgw_check_run("procinfo", "procinfo", tests, sizeof(tests) / sizeof(tests[0]));
}
