/* check-run.h - the main() of a Check suite with one test case: run the tests, report, and
 * exit non-zero if any failed. Include after <check.h>. */
#ifndef MCPGW_TESTS_CHECK_RUN_H
#define MCPGW_TESTS_CHECK_RUN_H

#include <check.h>
#include <stddef.h>
#include <stdlib.h>

static inline int mcpgw_check_run(const char *suite, const char *tcase, const TTest *const *tests,
                                  size_t n)
{
    Suite *s = suite_create(suite);
    TCase *tc = tcase_create(tcase);
    SRunner *sr;
    int failed;
    for (size_t i = 0; i < n; i++)
        tcase_add_test(tc, tests[i]);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
