/* cmd_bundle.c: `imgbuild key generate` and `imgbuild bundle create|verify|import`: signed
 * bundles for air-gapped installs (bundle/bundle.h). */
#include <errno.h>
#include <sys/stat.h>

#include "bundle/bundle.h"
#include "bundle/collect.h"
#include "bundle/sign.h"
#include "cli.h"
#include "layer/layer.h"
#include "util/fs.h"
#include "util/tmpreg.h"

int cmd_key(struct cli *cli, int argc, char **argv)
{
	if (argc != 3 || !streq(argv[1], "generate"))
		return ib_error(&cli->ctx, IB_E_USAGE, "usage: imgbuild key generate PREFIX");
	int r = ib_key_generate(&cli->ctx, argv[2]);
	if (r == 0 && cli->verbosity > 0)
		printf("key: wrote %s.key (private, keep it secret) and %s.pub (give this to "
		       "the sites that verify bundles)\n",
		       argv[2], argv[2]);
	return r;
}

static int need_key(struct cli *cli, const char *sub)
{
	if (!cli->key_file)
		return ib_error(&cli->ctx, IB_E_USAGE, "'bundle %s' needs --key FILE (%s key)", sub,
		                streq(sub, "create") ? "the private" : "the signer's public");
	return 0;
}

static int bundle_create(struct cli *cli, int argc, char **argv)
{
	struct ib_ctx *ctx = &cli->ctx;
	int r = need_key(cli, "create");
	if (r < 0)
		return r;
	if (!cli->out)
		return ib_error(ctx, IB_E_USAGE, "'bundle create' needs -o FILE");
	struct ib_project *p = NULL;
	r = cli_load_project(cli, &p);
	if (r < 0)
		return r;
	struct strv roles = {0};
	for (int i = 1; r == 0 && i < argc; i++) {
		const struct ib_role *role = ib_project_find_role(p, argv[i]);
		if (!role)
			r = ib_error(ctx, IB_E_USAGE, "no role '%s' (see 'imgbuild list')",
			             argv[i]);
		else if (role->abstract)
			r = ib_error(ctx, IB_E_USAGE, "role '%s' is abstract: nothing builds it",
			             argv[i]);
		else if (!strv_contains(&roles, argv[i]))
			strv_push(&roles, argv[i]);
	}
	for (size_t i = 0; argc < 2 && i < p->n_roles; i++)
		if (!p->roles[i].abstract)
			strv_push(&roles, p->roles[i].name);
	strv_sort(&roles);
	EVP_PKEY *key = NULL;
	if (r == 0)
		r = ib_key_load_private(ctx, cli->key_file, &key);
	struct ib_fetch_opts fo;
	cli_fetch_opts(cli, &fo);
	time_t epoch = ib_source_date_epoch();
	if (r == 0 && epoch < 0)
		r = ib_error(ctx, IB_E_USAGE, "SOURCE_DATE_EPOCH is not a number of seconds");
	struct ib_bundle_collect_opts co = {.project = p,
	                                    .roles = &roles,
	                                    .fetch = &fo,
	                                    .epoch = epoch,
	                                    .with_images = cli->with_images,
	                                    .key_file = cli->key_file,
	                                    .output = cli->out};
	struct ib_bundle_src *srcs = NULL;
	size_t n = 0;
	if (r == 0)
		r = ib_bundle_collect(ctx, &co, &srcs, &n);
	struct ib_bundle_manifest m = {0};
	if (r == 0) {
		struct ib_bundle_create_opts o = {.output = cli->out,
		                                  .key = key,
		                                  .created = (long long)epoch,
		                                  .roles = &roles,
		                                  .srcs = srcs,
		                                  .n_srcs = n};
		r = ib_bundle_create(ctx, &o, &m);
	}
	if (r == 0 && cli->verbosity > 0) {
		uint64_t bytes = 0;
		for (size_t i = 0; i < m.n; i++)
			bytes += m.v[i].size;
		printf("bundle: wrote %s: %zu members (%.1f MiB before compression) for %zu "
		       "role%s, signed by key %.16s\n",
		       cli->out, m.n, (double)bytes / (1 << 20), roles.n, roles.n == 1 ? "" : "s",
		       m.signer);
	}
	ib_bundle_manifest_release(&m);
	ib_bundle_srcs_free(srcs, n);
	EVP_PKEY_free(key);
	strv_release(&roles);
	ib_project_free(p);
	return r;
}

static void print_verified(struct cli *cli, const char *file, const struct ib_bundle_manifest *m,
                           const char *what)
{
	if (cli->verbosity == 0)
		return;
	struct strbuf roles = STRBUF_INIT;
	for (size_t i = 0; i < m->roles.n; i++)
		sb_addf(&roles, "%s%s", i ? ", " : "", m->roles.v[i]);
	printf("bundle: %s: signature good (key %.16s); all %zu members match the manifest; "
	       "made by %s at %lld for roles %s%s\n",
	       file, m->signer, m->n, m->tool, m->created, sb_str(&roles), what);
	sb_release(&roles);
}

static int bundle_verify(struct cli *cli, const char *file)
{
	EVP_PKEY *key = NULL;
	int r = ib_key_load_public(&cli->ctx, cli->key_file, &key);
	struct ib_bundle_manifest m = {0};
	if (r == 0)
		r = ib_bundle_read(&cli->ctx, file, key, NULL, NULL, &m);
	if (r == 0)
		print_verified(cli, file, &m, "");
	ib_bundle_manifest_release(&m);
	EVP_PKEY_free(key);
	return r;
}

static int bundle_import(struct cli *cli, const char *file)
{
	struct ib_ctx *ctx = &cli->ctx;
	EVP_PKEY *key = NULL;
	struct ib_cas cas = {0};
	struct ib_bundle_manifest m = {0};
	_cleanup_free_ char *cache = ib_cache_dir();
	_cleanup_free_ char *cache_stage = NULL, *files_stage = NULL;
	size_t fresh = 0;
	int r = ib_key_load_public(ctx, cli->key_file, &key);
	if (r == 0 && cli->out && ib_exists(cli->out))
		r = ib_error(ctx, IB_E_USAGE,
		             "'%s' exists: 'bundle import -o' makes a new directory", cli->out);
	if (r == 0)
		r = ib_cas_open(ctx, cache, &cas);
	if (r < 0)
		goto out;
	/* Staged beside where each part goes (renames, no copies); removed unless moved. */
	cache_stage = ib_cas_tmp_path(&cas, "bundle-import");
	ib_tmp_register(cache_stage);
	if (mkdir(cache_stage, 0700) < 0) {
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot create '%s'", cache_stage);
		goto out;
	}
	if (cli->out) {
		files_stage = xasprintf("%s.tmp.%d", cli->out, (int)getpid());
		ib_tmp_register(files_stage);
		if (mkdir(files_stage, 0755) < 0) {
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot create '%s'", files_stage);
			goto out;
		}
	}
	r = ib_bundle_read(ctx, file, key, cache_stage, files_stage, &m);
	if (r < 0) {
		ib_error_prefix(ctx, "nothing imported");
		goto out;
	}
	ib_commit_lock();
	r = ib_bundle_install(ctx, &m, cache_stage, &cas, &fresh);
	if (r == 0 && files_stage && rename(files_stage, cli->out) < 0)
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot rename '%s' to '%s'", files_stage,
		                   cli->out);
	ib_commit_unlock();
	if (r == 0) {
		_cleanup_free_ char *what = xasprintf(
		        "; imported into %s (%zu new entries)%s%s", cas.root, fresh,
		        cli->out ? ", project and images in " : "", cli->out ? cli->out : "");
		print_verified(cli, file, &m, what);
	}
out : {
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	if (cache_stage) {
		ib_rm_rf(&quiet, cache_stage);
		ib_tmp_unregister(cache_stage);
	}
	if (files_stage) {
		ib_rm_rf(&quiet, files_stage);
		ib_tmp_unregister(files_stage);
	}
}
	ib_bundle_manifest_release(&m);
	ib_cas_release(&cas);
	EVP_PKEY_free(key);
	return r;
}

int cmd_bundle(struct cli *cli, int argc, char **argv)
{
	struct ib_ctx *ctx = &cli->ctx;
	const char *sub = argc > 1 ? argv[1] : "";
	if (!streq(sub, "create") && !streq(sub, "verify") && !streq(sub, "import"))
		return ib_error(ctx, IB_E_USAGE,
		                "usage: imgbuild bundle create [ROLE...] | verify FILE | import "
		                "FILE (see 'imgbuild help bundle')");
	int r = need_key(cli, sub);
	if (r < 0)
		return r;
	if (streq(sub, "create"))
		return bundle_create(cli, argc - 1, argv + 1);
	if (cli->with_images)
		return ib_error(ctx, IB_E_USAGE, "'--with-images' applies to 'bundle create' only");
	if (cli->offline || cli->mirror)
		return ib_error(ctx, IB_E_USAGE,
		                "'--offline' and '--mirror' apply to 'bundle "
		                "create' only");
	if (argc != 3)
		return ib_error(ctx, IB_E_USAGE, "'bundle %s' takes one FILE", sub);
	if (streq(sub, "verify")) {
		if (cli->out)
			return ib_error(ctx, IB_E_USAGE,
			                "'-o' applies to 'bundle create' and "
			                "'bundle import'");
		return bundle_verify(cli, argv[2]);
	}
	return bundle_import(cli, argv[2]);
}
