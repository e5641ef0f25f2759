/* seed.h: NoCloud seed images (ISO 9660, volume label cidata) and user-data templates. */
#pragma once

#include <time.h>

#include "util/ctx.h"

/* Write an ISO 9660 image (Rock Ridge and Joliet, volume id "cidata") holding user-data,
 * meta-data and, when network_config is not NULL, network-config. Written to a temporary
 * name and renamed. Deterministic for the same inputs and mtime. */
int ib_seed_write(struct ib_ctx *ctx, const char *out_iso, const char *user_data,
                  const char *meta_data, const char *network_config, time_t mtime);

struct ib_tvar {
	const char *name;
	const char *value;
};

/* Replace every "{{ name }}" (spaces optional) with its value. An unknown name or an
 * unclosed "{{" is an IB_E_SPEC error naming what_for:line:column. Caller frees *ret. */
int ib_template_render(struct ib_ctx *ctx, const char *what_for, const char *text,
                       const struct ib_tvar *vars, size_t n_vars, char **ret);
