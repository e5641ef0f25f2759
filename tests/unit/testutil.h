/* testutil.h: a fresh temporary directory per Check test, and small file helpers. */
#pragma once

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"

/* The current test's private directory; tests chdir into it. */
static char tu_dir[4096];
static char tu_oldcwd[4096];

static void tu_setup(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(tu_dir, sizeof(tu_dir), "%s/imgbuild-unit-XXXXXX", base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tu_dir));
	ck_assert_ptr_nonnull(getcwd(tu_oldcwd, sizeof(tu_oldcwd)));
	ck_assert_int_eq(chdir(tu_dir), 0);
}

static void tu_teardown(void)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	if (chdir(tu_oldcwd) != 0)
		abort();
	if (!getenv("IMGBUILD_KEEP_TMP"))
		ib_rm_rf(&ctx, tu_dir);
}

/* Write text to a path relative to the test dir, creating parent directories. */
static _unused_ void tu_write(const char *path, const char *text)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	char *dir = strdup(path);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		ck_assert_int_eq(ib_mkdir_p(&ctx, dir, 0755), 0);
	}
	free(dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Run a shell command (for reading results back with independent tools); returns its
 * stdout, caller frees. */
static _unused_ char *tu_sh(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	size_t n;
	while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
		len += n;
		if (len + 1 >= cap)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = '\0';
	int st = pclose(p);
	ck_assert_msg(st == 0, "command failed (%d): %s", st, cmd);
	return buf;
}

/* Build a suite whose every test case uses the temp-dir fixture. */
#define TU_CASE(suite, name, fn)                                                                   \
	do {                                                                                       \
		TCase *tc_ = tcase_create(name);                                                   \
		tcase_add_checked_fixture(tc_, tu_setup, tu_teardown);                             \
		tcase_set_timeout(tc_, 120);                                                       \
		tcase_add_test(tc_, fn);                                                           \
		suite_add_tcase(suite, tc_);                                                       \
	} while (0)

#define TU_MAIN(make_suite)                                                                        \
	int main(void)                                                                             \
	{                                                                                          \
		SRunner *sr = srunner_create(make_suite());                                        \
		srunner_run_all(sr, CK_NORMAL);                                                    \
		int failed = srunner_ntests_failed(sr);                                            \
		srunner_free(sr);                                                                  \
		return failed ? EXIT_FAILURE : EXIT_SUCCESS;                                       \
	}
