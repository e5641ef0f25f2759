/* seedcfg.h: render a role's cloud-init user-data and meta-data from cloud-init/. */
#pragma once

#include "spec/spec.h"

struct seed_data {
	char *template_path; /* the cloud-init/<role>.yaml used */
	char *user_data;
	char *meta_data;
};

/* Find cloud-init/<role>.yaml, or the nearest ancestor's, and render it with the role,
 * host name (default: the role) and SSH public key file (may be NULL). */
int seed_render(struct ib_ctx *ctx, const struct ib_project *p, const struct ib_resolved *r,
                const char *hostname, const char *ssh_key_file, struct seed_data *ret);
void seed_data_release(struct seed_data *sd);
