/* vsysctl.c: sysctl.d files as systemd-sysctl reads them: order, syntax, precedence. */
#include <fnmatch.h>

#include "vparse.h"

#define MAX_SETTINGS 65536

void ib_sysctl_normalize(char *key)
{
	char *sep = strpbrk(key, "./");
	if (!sep || *sep != '/')
		return;
	for (char *p = key; *p; p++)
		*p = *p == '/' ? '.' : *p == '.' ? '/' : *p;
}

static const char *trim(const char *s, const char *e, const char **ret_end)
{
	while (s < e && (*s == ' ' || *s == '\t' || *s == '\r'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	*ret_end = e;
	return s;
}

void ib_sysctl_apply(struct ib_sysctl *s, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	while (p < end && s->keys.n < MAX_SETTINGS) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le;
		const char *l = trim(p, eol ? eol : end, &le);
		p = eol ? eol + 1 : end;
		if (l == le || *l == '#' || *l == ';')
			continue;
		const char *eq = memchr(l, '=', (size_t)(le - l));
		if (!eq)
			continue;
		const char *ke, *ve;
		const char *k = trim(l, eq, &ke);
		const char *v = trim(eq + 1, le, &ve);
		if (k < ke && *k == '-') /* "-key = v": failures to set it are ignored */
			k++;
		if (k == ke)
			continue;
		char *key = xstrndup(k, (size_t)(ke - k));
		ib_sysctl_normalize(key);
		strv_push_take(&s->keys, key);
		strv_push_take(&s->values, xstrndup(v, (size_t)(ve - v)));
	}
}

/* An explicit setting wins over any glob, whatever their order (systemd-sysctl skips a
 * glob's match that has an explicit setting); among equals the later one wins. */
const char *ib_sysctl_get(const struct ib_sysctl *s, const char *name)
{
	_cleanup_free_ char *norm = xstrdup(name);
	ib_sysctl_normalize(norm);
	for (size_t i = s->keys.n; i-- > 0;)
		if (streq(s->keys.v[i], norm))
			return s->values.v[i];
	for (size_t i = s->keys.n; i-- > 0;)
		if (strpbrk(s->keys.v[i], "*?[") && fnmatch(s->keys.v[i], norm, 0) == 0)
			return s->values.v[i];
	return NULL;
}

void ib_sysctl_release(struct ib_sysctl *s)
{
	strv_release(&s->keys);
	strv_release(&s->values);
}

int ib_sysctl_value_eq(const char *a, const char *b)
{
	for (;;) {
		while (*a == ' ' || *a == '\t')
			a++;
		while (*b == ' ' || *b == '\t')
			b++;
		if (!*a || !*b)
			return !*a && !*b;
		while (*a && *b && *a != ' ' && *a != '\t' && *b != ' ' && *b != '\t') {
			if (*a != *b)
				return 0;
			a++, b++;
		}
		/* Both words must end here. */
		int ea = !*a || *a == ' ' || *a == '\t', eb = !*b || *b == ' ' || *b == '\t';
		if (!ea || !eb)
			return 0;
	}
}

void ib_sysctl_files(const char *const *dirs, const struct strv *names, size_t n_dirs,
                     struct strv *ret)
{
	struct strv seen = {0};
	struct strv paths = {0};
	for (size_t d = 0; d < n_dirs; d++)
		for (size_t i = 0; i < names[d].n; i++) {
			const char *n = names[d].v[i];
			if (!endswith(n, ".conf") || strchr(n, '/') || strv_contains(&seen, n))
				continue;
			strv_push(&seen, n);
			/* Sort key first, so that sorting the pairs sorts by name. */
			strv_push_take(&paths, xasprintf("%s\n%s/%s", n, dirs[d], n));
		}
	strv_sort(&paths);
	for (size_t i = 0; i < paths.n; i++)
		strv_push(ret, strchr(paths.v[i], '\n') + 1);
	strv_release(&paths);
	strv_release(&seen);
}
