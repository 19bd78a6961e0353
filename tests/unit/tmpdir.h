/* A scratch directory per test binary, for cmocka group setup/teardown:
 * cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir) creates
 * /tmp/llmops-test.XXXXXX before the first test and removes it, with
 * everything the tests wrote there, after the last. */
#ifndef LLMOPS_TEST_TMPDIR_H
#define LLMOPS_TEST_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

static char tmpdir[64];

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/llmops-test.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
