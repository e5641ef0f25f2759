/* seedcfg.c: pick and render the cloud-init templates of a role for a NoCloud seed. */
#include "seedcfg.h"

#include "seed/seed.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/strbuf.h"

#define SSH_KEY_MAX (16u << 10)

void seed_data_release(struct seed_data *sd)
{
	free(sd->template_path);
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
	int r = ib_read_file(ctx, file, SSH_KEY_MAX, &text, NULL);
	if (r < 0) {
		sb_release(&sb);
		return r;
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

int seed_render(struct ib_ctx *ctx, const struct ib_project *p, const struct ib_resolved *r,
                const char *hostname, const char *ssh_key_file, struct seed_data *ret)
{
	_cleanup_free_ char *tpl = NULL;
	for (size_t i = r->n_chain; i > 0 && !tpl; i--) {
		char *cand = xasprintf("%s/cloud-init/%s.yaml", p->root, r->chain[i - 1]->name);
		if (ib_exists(cand))
			tpl = cand;
		else
			free(cand);
	}
	if (!tpl)
		return ib_error(ctx, IB_E_SPEC,
		                "no user-data template for role '%s': expected cloud-init/%s.yaml",
		                r->role->name, r->role->name);
	const char *host = hostname ? hostname : r->role->name;
	if (!valid_hostname(host))
		return ib_error(ctx, IB_E_USAGE,
		                "bad host name '%s': use a-z, 0-9 and '-', at most 63", host);

	_cleanup_free_ char *text = NULL, *keys = NULL;
	int rc = ib_read_file(ctx, tpl, 1u << 20, &text, NULL);
	if (rc < 0)
		return rc;
	rc = ssh_keys_entry(ctx, ssh_key_file, &keys);
	if (rc < 0)
		return rc;
	char iid_hash[65];
	_cleanup_free_ char *iid_in = xasprintf("%s/%s/%s", p->name, r->role->name, host);
	ib_sha256_hex(iid_in, strlen(iid_in), iid_hash);
	_cleanup_free_ char *iid = xasprintf("iid-%s-%.12s", host, iid_hash);
	const struct ib_tvar vars[] = {
	        {"role", r->role->name},
	        {"hostname", host},
	        {"instance_id", iid},
	        {"project", p->name},
	        {"ssh_authorized_keys_entry", keys},
	};
	const char *shown = tpl + strlen(p->root) + 1;
	_cleanup_free_ char *ud = NULL;
	rc = ib_template_render(ctx, shown, text, vars, ARRAY_SIZE(vars), &ud);
	if (rc < 0)
		return rc;
	if (!startswith(ud, "#cloud-config\n"))
		return ib_error(ctx, IB_E_SPEC, "%s:1:1: user-data must start with '#cloud-config'",
		                shown);
	ret->template_path = TAKE_PTR(tpl);
	ret->user_data = TAKE_PTR(ud);
	ret->meta_data = xasprintf("instance-id: %s\nlocal-hostname: %s\n", iid, host);
	return 0;
}
