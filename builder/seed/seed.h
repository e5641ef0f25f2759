/* seed.h: NoCloud seed images (ISO 9660, volume label cidata) and user-data templates. */
#pragma once

#include <time.h>

#include "util/ctx.h"
#include "util/template.h"

/* Write an ISO 9660 image (Rock Ridge and Joliet, volume id "cidata") holding user-data,
 * meta-data and, when network_config is not NULL, network-config. Written to a temporary
 * name and renamed, mode 0600 from the start (user-data may hold secrets). Deterministic for
 * the same inputs and mtime. */
int ib_seed_write(struct ib_ctx *ctx, const char *out_iso, const char *user_data,
                  const char *meta_data, const char *network_config, time_t mtime);
