/* template.h: "{{ name }}" placeholders, for user-data templates and templated role files.
 * Deliberately no logic (no conditionals, no loops): a template that needs them is a
 * program, and belongs in a first-boot script. */
#pragma once

#include <stddef.h>

#include "util/ctx.h"

struct ib_tvar {
	const char *name;
	const char *value;
};

/* Replace every "{{ name }}" (spaces optional) with its value. An unknown name or an
 * unclosed "{{" is an IB_E_SPEC error naming what_for:line:column. Caller frees *ret. */
int ib_template_render(struct ib_ctx *ctx, const char *what_for, const char *text,
                       const struct ib_tvar *vars, size_t n_vars, char **ret);
