/* check_crash.c: what a build killed outright leaves behind: its tools die with it
 * (ib_run's parent-death signal), and the next build finds its leftovers by their dead pid. */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "testutil.h"
#include "util/proc.h"

/* Gone, or a zombie nobody reaps (a container's init may not). */
static int gone(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return !p || p[2] == 'Z' || p[2] == 'X';
}

static void nap(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

START_TEST(test_tools_die_with_a_killed_build)
{
	pid_t build = fork();
	ck_assert_int_ge(build, 0);
	if (build == 0) {
		struct ib_ctx ctx;
		ib_ctx_init(&ctx);
		const char *argv[] = {"sh", "-c", "echo $$ > tool.pid.tmp && mv tool.pid.tmp tool.pid && "
		                                  "exec sleep 60",
		                      NULL};
		ib_run(&ctx, argv, NULL, 0, NULL);
		_exit(0);
	}
	int i;
	for (i = 0; i < 200 && !ib_exists("tool.pid"); i++)
		nap(50);
	ck_assert_msg(ib_exists("tool.pid"), "the tool did not start");
	char *text = tu_sh("cat tool.pid");
	pid_t tool = (pid_t)atoi(text);
	free(text);
	ck_assert_int_gt(tool, 1);
	ck_assert(!gone(tool));
	kill(build, SIGKILL);
	waitpid(build, NULL, 0);
	for (i = 0; i < 100 && !gone(tool); i++)
		nap(50);
	int survived = !gone(tool);
	if (survived)
		kill(tool, SIGKILL);
	ck_assert_msg(!survived, "the tool outlived the build killed with SIGKILL");
}
END_TEST

START_TEST(test_run_reports_a_missing_program)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	const char *argv[] = {"/nonexistent/imgbuild-tool", NULL};
	ck_assert_int_eq(ib_run(&ctx, argv, NULL, 0, NULL), -IB_E_TOOL);
	ck_assert_msg(strstr(ctx.err, "cannot run '/nonexistent/imgbuild-tool'"), "%s", ctx.err);
	const char *ok[] = {"true", NULL};
	ck_assert_int_eq(ib_run(&ctx, ok, NULL, 0, NULL), 0);
}
END_TEST

static pid_t dead_pid(void)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

START_TEST(test_leftovers_of_dead_pids_are_removed)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	pid_t dead = dead_pid();
	char name[128];
	/* Removed: the dead pid's, exactly named. */
	snprintf(name, sizeof(name), "w/base.%d/tree/etc", (int)dead);
	ck_assert_int_eq(ib_mkdir_p(&ctx, name, 0755), 0);
	snprintf(name, sizeof(name), "w/imgbuild-%d-base", (int)dead);
	ck_assert_int_eq(ib_mkdir_p(&ctx, name, 0755), 0);
	/* Kept: a live pid (ours, our parent's), other roles, other shapes. */
	snprintf(name, sizeof(name), "w/base.%d", (int)getppid());
	ck_assert_int_eq(ib_mkdir_p(&ctx, name, 0755), 0);
	snprintf(name, sizeof(name), "w/base.%d.x", (int)dead);
	ck_assert_int_eq(ib_mkdir_p(&ctx, name, 0755), 0);
	snprintf(name, sizeof(name), "w/base2.%d", (int)dead);
	ck_assert_int_eq(ib_mkdir_p(&ctx, name, 0755), 0);
	snprintf(name, sizeof(name), "w/imgbuild-%d-base2", (int)dead);
	ck_assert_int_eq(ib_mkdir_p(&ctx, name, 0755), 0);
	snprintf(name, sizeof(name), "w/base.%d", (int)getpid());
	ck_assert_int_eq(ib_mkdir_p(&ctx, name, 0755), 0);
	ck_assert_int_eq(ib_mkdir_p(&ctx, "w/base.", 0755), 0);
	ck_assert_int_eq(ib_mkdir_p(&ctx, "w/base.12a", 0755), 0);

	ck_assert_int_eq(ib_remove_dead_pid_entries("w", "base.", "", ib_rm_rf), 1);
	ck_assert_int_eq(ib_remove_dead_pid_entries("w", "imgbuild-", "-base", ib_rm_rf), 1);
	ck_assert_int_eq(ib_remove_dead_pid_entries("missing", "base.", "", ib_rm_rf), 0);
	/* Only the dead pid's two entries went. */
	snprintf(name, sizeof(name), "w/base.%d", (int)dead);
	ck_assert(!ib_exists(name));
	snprintf(name, sizeof(name), "w/imgbuild-%d-base", (int)dead);
	ck_assert(!ib_exists(name));
	snprintf(name, sizeof(name), "w/base.%d", (int)getpid());
	ck_assert(ib_exists(name));
	snprintf(name, sizeof(name), "w/base.%d", (int)getppid());
	ck_assert(ib_exists(name));
	snprintf(name, sizeof(name), "w/base.%d.x", (int)dead);
	ck_assert(ib_exists(name));
	snprintf(name, sizeof(name), "w/base2.%d", (int)dead);
	ck_assert(ib_exists(name));
	snprintf(name, sizeof(name), "w/imgbuild-%d-base2", (int)dead);
	ck_assert(ib_exists(name));
	ck_assert(ib_exists("w/base.") && ib_exists("w/base.12a"));
}
END_TEST

static Suite *crash_suite(void)
{
	Suite *s = suite_create("crash");
	TU_CASE(s, "tools die with a killed build", test_tools_die_with_a_killed_build);
	TU_CASE(s, "missing program", test_run_reports_a_missing_program);
	TU_CASE(s, "leftovers of dead pids", test_leftovers_of_dead_pids_are_removed);
	return s;
}

TU_MAIN(crash_suite)
