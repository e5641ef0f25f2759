/* seedcfg.h: render a role's cloud-init user-data and meta-data from cloud-init/. */
#pragma once

#include "seed/seed.h"
#include "spec/spec.h"

struct seed_data {
	char *template_path; /* the cloud-init/<role>.yaml used */
	char *user_data;
	char *meta_data;
	int uses_plan; /* the template took a cluster plan's variables */
};

/* What a template that uses a cluster plan's variables gets when none are given. */
enum seed_plan_mode {
	/* The nearest ancestor's template that needs no plan (cloud-init/base.yaml): what
	 * seed_render() does, for callers that render every role (publish). */
	SEED_PLAN_FALLBACK,
	/* An error naming the command that makes a plan (`imgbuild seed`). */
	SEED_PLAN_REQUIRED,
	/* Stand-in values: checks that the template renders (validate); not for use. */
	SEED_PLAN_PLACEHOLDERS,
};

struct seed_opts {
	const char *hostname;     /* NULL: the role's name */
	const char *ssh_key_file; /* NULL: no key */
	const char *instance_id;  /* NULL: derived from the project, the role and the host */
	/* More template variables, a cluster plan's (cluster/cluster.h). */
	const struct ib_tvar *vars;
	size_t n_vars;
	enum seed_plan_mode plan_mode; /* when n_vars is 0 */
};

/* Find cloud-init/<role>.yaml, or the nearest ancestor's, and render it with the role,
 * host name, instance id, SSH public keys and the extra variables of o. */
int seed_render_opts(struct ib_ctx *ctx, const struct ib_project *p, const struct ib_resolved *r,
                     const struct seed_opts *o, struct seed_data *ret);
/* The same with only a host name (default: the role) and SSH public key file (may be NULL),
 * SEED_PLAN_FALLBACK. */
int seed_render(struct ib_ctx *ctx, const struct ib_project *p, const struct ib_resolved *r,
                const char *hostname, const char *ssh_key_file, struct seed_data *ret);
void seed_data_release(struct seed_data *sd);
