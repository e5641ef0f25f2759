/* vunits.c: is a unit enabled, as systemctl sees the links in /etc/systemd/system? */
#include "vparse.h"

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static int dependency_dir(const char *dir)
{
	return endswith(dir, ".wants") || endswith(dir, ".requires") || endswith(dir, ".upholds");
}

/* "foo@bar.service" is an instance of the template "foo@.service". */
static int instance_of(const char *name, const char *tmpl)
{
	const char *at = strchr(tmpl, '@');
	if (!at || at[1] != '.')
		return 0;
	size_t pre = (size_t)(at - tmpl) + 1;
	const char *suffix = at + 1;
	return strncmp(name, tmpl, pre) == 0 && strlen(name) > pre + strlen(suffix) &&
	       endswith(name, suffix);
}

enum ib_unit_state ib_unit_state(const struct ib_unit_link *links, size_t n, const char *unit,
                                 const struct ib_unit_link **ret_link)
{
	const struct ib_unit_link *by = NULL;
	enum ib_unit_state st = IB_UNIT_DISABLED;
	for (size_t i = 0; i < n; i++) {
		const struct ib_unit_link *l = &links[i];
		if (!*l->dir && streq(l->name, unit) && streq(l->target, "/dev/null")) {
			st = IB_UNIT_MASKED;
			by = l;
			break;
		}
	}
	/* A dependency link names the unit best; an alias (another name at the top level
	 * linked to the unit) counts when there is none. */
	for (int alias = 0; alias <= 1 && st == IB_UNIT_DISABLED; alias++)
		for (size_t i = 0; i < n && st == IB_UNIT_DISABLED; i++) {
			const struct ib_unit_link *l = &links[i];
			if (streq(l->target, "/dev/null"))
				continue;
			int hit;
			if (!alias)
				hit = dependency_dir(l->dir) &&
				      (streq(l->name, unit) || streq(base_name(l->target), unit) ||
				       instance_of(l->name, unit));
			else
				hit = !*l->dir && !streq(l->name, unit) &&
				      streq(base_name(l->target), unit);
			if (hit) {
				st = IB_UNIT_ENABLED;
				by = l;
			}
		}
	if (ret_link)
		*ret_link = by;
	return st;
}
