/* killat.c: a fault injected with LD_PRELOAD for tests/tools/crashkill.py: the process kills
 * itself with SIGKILL right after it renames a file onto $KILLAT_RENAME_TO, which crashes a
 * build at an exact point (between two renames of its commit) that a timer hits only by luck. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

int rename(const char *from, const char *to)
{
	static int (*real)(const char *, const char *);
	if (!real)
		real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
	int r = real(from, to);
	const char *at = getenv("KILLAT_RENAME_TO");
	if (r == 0 && at && strcmp(at, to) == 0)
		raise(SIGKILL);
	return r;
}
