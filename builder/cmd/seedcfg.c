/* seedcfg.c: pick and render the cloud-init templates of a role for a NoCloud seed. */
#include "seedcfg.h"

#include "cluster/cluster.h"
#include "seed/seed.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/strbuf.h"

#define SSH_KEY_MAX (16u << 10)

void seed_data_release(struct seed_data *sd)
{
	free(sd->template_path);
	/* A planned host's user-data holds the cluster's secrets. */
	if (sd->user_data)
		explicit_bzero(sd->user_data, strlen(sd->user_data));
	free(sd->user_data);
	free(sd->meta_data);
	memset(sd, 0, sizeof(*sd));
}

static int valid_hostname(const char *h)
{
	size_t n = strlen(h);
	if (n == 0 || n > 63 || h[0] == '-' || h[n - 1] == '-')
		return 0;
	for (const char *c = h; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
			return 0;
	return 1;
}

/* The whole `ssh_authorized_keys:` entry, keys as a flow sequence, so that the template
 * needs no conditionals; without keys a comment, since cloud-init's schema refuses an empty
 * list. */
static int ssh_keys_entry(struct ib_ctx *ctx, const char *file, char **ret)
{
	struct strbuf sb = STRBUF_INIT;
	if (!file) {
		*ret = xstrdup("# no SSH key given (imgbuild seed --ssh-key FILE)");
		return 0;
	}
	sb_adds(&sb, "ssh_authorized_keys: [");
	_cleanup_free_ char *text = NULL;
	/* A key the user named and imgbuild cannot read is bad input (exit 2), not an I/O
	 * failure of the build. */
	struct ib_ctx rctx;
	ib_ctx_init(&rctx);
	if (ib_read_file(&rctx, file, SSH_KEY_MAX, &text, NULL) < 0) {
		sb_release(&sb);
		return ib_error(ctx, IB_E_USAGE, "--ssh-key: %s", rctx.err);
	}
	int first = 1;
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!*l || *l == '#')
			continue;
		if (!startswith(l, "ssh-") && !startswith(l, "ecdsa-") && !startswith(l, "sk-")) {
			sb_release(&sb);
			return ib_error(ctx, IB_E_USAGE,
			                "'%s' does not look like an SSH public key", file);
		}
		if (!first)
			sb_adds(&sb, ", ");
		first = 0;
		sb_addc(&sb, '"');
		for (char *c = l; *c; c++)
			if (*c != '"' && *c != '\\' && *c != '\r')
				sb_addc(&sb, *c);
		sb_addc(&sb, '"');
	}
	if (first) {
		sb_release(&sb);
		return ib_error(ctx, IB_E_USAGE, "'%s' holds no SSH public key", file);
	}
	sb_addc(&sb, ']');
	*ret = sb_take(&sb);
	return 0;
}

/* Whether text has a "{{ cluster_... }}" placeholder. */
static int uses_plan(const char *text)
{
	for (const char *p = strstr(text, "{{"); p; p = strstr(p + 2, "{{")) {
		const char *name = p + 2;
		while (*name == ' ' || *name == '\t')
			name++;
		if (startswith(name, IB_CLUSTER_VAR_PREFIX))
			return 1;
	}
	return 0;
}

/* "placeholder\n" in base64, standing in for a plan's values. */
#define PLACEHOLDER_B64 "cGxhY2Vob2xkZXIK"

static int needs_plan_error(struct ib_ctx *ctx, const struct ib_resolved *r)
{
	return ib_error(ctx, IB_E_USAGE,
	                "the %s user-data needs a cluster plan: run 'imgbuild cluster plan "
	                "--master-address ADDR' (it writes every host's seed), or add --plan DIR",
	                r->role->name);
}

/* cloud-init/<role>.yaml or the nearest ancestor's; one that needs a plan the caller does
 * not have is an error, or passed over for an ancestor's (SEED_PLAN_FALLBACK). */
static int find_template(struct ib_ctx *ctx, const struct ib_project *p,
                         const struct ib_resolved *r, const struct seed_opts *o, char **ret_path,
                         char **ret_text)
{
	int skipped = 0;
	for (size_t i = r->n_chain; i > 0; i--) {
		_cleanup_free_ char *cand =
		        xasprintf("%s/cloud-init/%s.yaml", p->root, r->chain[i - 1]->name);
		if (!ib_exists(cand))
			continue;
		_cleanup_free_ char *text = NULL;
		int rc = ib_read_file(ctx, cand, 1u << 20, &text, NULL);
		if (rc < 0)
			return rc;
		if (uses_plan(text) && o->n_vars == 0) {
			if (o->plan_mode == SEED_PLAN_REQUIRED)
				return needs_plan_error(ctx, r);
			if (o->plan_mode == SEED_PLAN_FALLBACK) {
				skipped = 1;
				continue;
			}
		}
		*ret_path = TAKE_PTR(cand);
		*ret_text = TAKE_PTR(text);
		return 0;
	}
	if (skipped)
		return needs_plan_error(ctx, r);
	return ib_error(ctx, IB_E_SPEC,
	                "no user-data template for role '%s': expected cloud-init/%s.yaml",
	                r->role->name, r->role->name);
}

int seed_render_opts(struct ib_ctx *ctx, const struct ib_project *p, const struct ib_resolved *r,
                     const struct seed_opts *o, struct seed_data *ret)
{
	const char *host = o->hostname ? o->hostname : r->role->name;
	if (!valid_hostname(host))
		return ib_error(ctx, IB_E_USAGE,
		                "bad host name '%s': use a-z, 0-9 and '-', at most 63", host);
	_cleanup_free_ char *tpl = NULL, *text = NULL, *keys = NULL;
	int rc = find_template(ctx, p, r, o, &tpl, &text);
	if (rc < 0)
		return rc;
	rc = ssh_keys_entry(ctx, o->ssh_key_file, &keys);
	if (rc < 0)
		return rc;
	_cleanup_free_ char *iid = NULL;
	if (o->instance_id) {
		iid = xstrdup(o->instance_id);
	} else {
		char iid_hash[65];
		_cleanup_free_ char *iid_in = xasprintf("%s/%s/%s", p->name, r->role->name, host);
		ib_sha256_hex(iid_in, strlen(iid_in), iid_hash);
		iid = xasprintf("iid-%s-%.12s", host, iid_hash);
	}
	/* The tooling host's, empty unless a cluster plan gives them (o->vars, looked up
	 * first): the Kubernetes nodes as name=address and its own private address. */
	const struct ib_tvar base[] = {
	        {"role", r->role->name},
	        {"hostname", host},
	        {"instance_id", iid},
	        {"project", p->name},
	        {"ssh_authorized_keys_entry", keys},
	        {"tooling_nodes", ""},
	        {"tooling_address", ""},
	};
	int stand_ins = o->n_vars == 0 && o->plan_mode == SEED_PLAN_PLACEHOLDERS;
	size_t n = ARRAY_SIZE(base) + o->n_vars + (stand_ins ? IB_CLUSTER_N_VARS : 0);
	_cleanup_free_ struct ib_tvar *vars = xcalloc(n, sizeof(*vars));
	size_t k = 0;
	for (size_t i = 0; i < o->n_vars; i++)
		vars[k++] = o->vars[i];
	memcpy(vars + k, base, sizeof(base));
	k += ARRAY_SIZE(base);
	for (size_t i = 0; stand_ins && ib_cluster_var_names[i]; i++)
		vars[k++] = (struct ib_tvar){ib_cluster_var_names[i], PLACEHOLDER_B64};
	const char *shown = tpl + strlen(p->root) + 1;
	_cleanup_free_ char *ud = NULL;
	rc = ib_template_render(ctx, shown, text, vars, k, &ud);
	if (rc < 0)
		return rc;
	if (!startswith(ud, "#cloud-config\n"))
		return ib_error(ctx, IB_E_SPEC, "%s:1:1: user-data must start with '#cloud-config'",
		                shown);
	ret->uses_plan = uses_plan(text);
	ret->template_path = TAKE_PTR(tpl);
	ret->user_data = TAKE_PTR(ud);
	ret->meta_data = xasprintf("instance-id: %s\nlocal-hostname: %s\n", iid, host);
	return 0;
}

int seed_render(struct ib_ctx *ctx, const struct ib_project *p, const struct ib_resolved *r,
                const char *hostname, const char *ssh_key_file, struct seed_data *ret)
{
	const struct seed_opts o = {.hostname = hostname, .ssh_key_file = ssh_key_file};
	return seed_render_opts(ctx, p, r, &o, ret);
}
