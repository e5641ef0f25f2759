/* sbin.c: find system tools in /usr/sbin and /sbin when PATH does not list them. */
#include "sbin.h"

#include "util/proc.h"

char *ib_sbin_tool(const char *name)
{
	static const char *const dirs[] = {"/usr/sbin", "/sbin"};
	if (ib_have_program(name))
		return xstrdup(name);
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		char *p = xasprintf("%s/%s", dirs[i], name);
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return xstrdup(name);
}
