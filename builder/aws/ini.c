/* ini.c: the aws CLI's INI files (~/.aws/credentials, ~/.aws/config), one key at a time. */
#include <ctype.h>
#include <errno.h>

#include "config.h"
#include "util/fs.h"

#define MAX_INI (1u << 20)

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t l = strlen(s);
	while (l > 0 && isspace((unsigned char)s[l - 1]))
		s[--l] = '\0';
	return s;
}

int aws_ini_get(struct ib_ctx *ctx, const char *path, const char *section, const char *key,
                char **ret, int *ret_section)
{
	*ret = NULL;
	if (ret_section)
		*ret_section = 0;
	if (!ib_exists(path))
		return 0;
	_cleanup_free_ char *data = NULL;
	int r = ib_read_file(ctx, path, MAX_INI, &data, NULL);
	if (r < 0)
		return r;
	int in = 0, lineno = 0;
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		/* An indented line continues the key above (nested "s3 =" settings): skipped. */
		int indented = line[0] == ' ' || line[0] == '\t';
		char *t = trim(line);
		if (!*t || *t == '#' || *t == ';' || indented)
			continue;
		if (*t == '[') {
			char *close = strchr(t, ']');
			if (!close)
				return ib_error(ctx, IB_E_SPEC, "%s:%d: section header without ']'",
				                path, lineno);
			*close = '\0';
			char *name = trim(t + 1);
			/* "[profile  x]" names profile x: the CLI collapses the spaces too. */
			if (startswith(name, "profile") && (name[7] == ' ' || name[7] == '\t')) {
				char *rest = trim(name + 7);
				in = startswith(section, "profile ") && streq(rest, section + 8);
			} else {
				in = streq(name, section);
			}
			if (in && ret_section)
				*ret_section = 1;
			continue;
		}
		char *eq = strchr(t, '=');
		if (!eq)
			return ib_error(ctx, IB_E_SPEC, "%s:%d: expected 'key = value'", path,
			                lineno);
		if (!in)
			continue;
		*eq = '\0';
		char *k = trim(t), *v = trim(eq + 1);
		if (streq(k, key)) {
			free(*ret);
			*ret = xstrdup(v);
		}
	}
	return 0;
}
