/* template.c: "{{ name }}" substitution for user-data templates and templated role files. */
#include "util/template.h"

#include "util/strbuf.h"

/* Positions count characters, not bytes, as an editor shows them (UTF-8 continuation bytes
 * do not advance the column). */
static void advance(const char *from, const char *to, int *line, int *col)
{
	for (const char *p = from; p < to; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)*p & 0xc0) != 0x80) {
			(*col)++;
		}
	}
}

static const char *lookup(const struct ib_tvar *vars, size_t n_vars, const char *name, size_t len)
{
	for (size_t i = 0; i < n_vars; i++)
		if (strlen(vars[i].name) == len && memcmp(vars[i].name, name, len) == 0)
			return vars[i].value;
	return NULL;
}

int ib_template_render(struct ib_ctx *ctx, const char *what_for, const char *text,
                       const struct ib_tvar *vars, size_t n_vars, char **ret)
{
	struct strbuf sb = STRBUF_INIT;
	int line = 1, col = 1;
	const char *p = text;
	for (;;) {
		const char *lbrace = strstr(p, "{{");
		if (!lbrace) {
			sb_adds(&sb, p);
			break;
		}
		sb_add(&sb, p, (size_t)(lbrace - p));
		advance(p, lbrace, &line, &col);
		/* A placeholder stays on one line: a "}}" further down closes something else. */
		const char *eol = strchr(lbrace, '\n');
		const char *rbrace = strstr(lbrace + 2, "}}");
		if (!rbrace || (eol && rbrace > eol)) {
			sb_release(&sb);
			return ib_error(ctx, IB_E_SPEC, "%s:%d:%d: unclosed '{{'", what_for, line,
			                col);
		}
		const char *name = lbrace + 2, *end = rbrace;
		while (name < end && (*name == ' ' || *name == '\t'))
			name++;
		while (end > name && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		const char *value = lookup(vars, n_vars, name, (size_t)(end - name));
		if (!value) {
			sb_release(&sb);
			return ib_error(ctx, IB_E_SPEC,
			                "%s:%d:%d: unknown template variable '%.*s'", what_for,
			                line, col, (int)(end - name), name);
		}
		sb_adds(&sb, value);
		advance(lbrace, rbrace + 2, &line, &col);
		p = rbrace + 2;
	}
	*ret = sb_take(&sb);
	return 0;
}
