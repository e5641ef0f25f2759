/* cmd_fetch.c: `imgbuild fetch`: fill the cache with everything every role needs. */
#include "cli.h"
#include "layer/layer.h"
#include "pipeline/imagebase.h"
#include "pipeline/supply.h"
#include "rootfs/rootfs.h"
#include "util/fs.h"

int cmd_fetch(struct cli *cli, int argc, char **argv)
{
	if (argc > 1)
		return ib_error(&cli->ctx, IB_E_USAGE, "'fetch' takes no arguments");
	struct ib_project *p = NULL;
	int r = cli_load_project(cli, &p);
	if (r < 0)
		return r;
	cli_warn_unpinned(cli, p);
	time_t epoch = ib_source_date_epoch();
	_cleanup_free_ char *cache = ib_cache_dir();
	struct ib_cas cas = {0};
	struct ib_fetch_opts fo;
	cli_fetch_opts(cli, &fo);
	r = ib_cas_open(&cli->ctx, cache, &cas);
	size_t n_art = 0, n_img = 0, n_rootfs = 0, n_base = 0, failed = 0;
	for (size_t i = 0; r == 0 && i < p->n_roles; i++) {
		if (p->roles[i].abstract)
			continue;
		struct ib_ctx child;
		ib_ctx_init_child(&child, &cli->ctx, p->roles[i].name);
		struct ib_resolved *res = NULL;
		int rr = ib_role_resolve(&child, p, p->roles[i].name, &res);
		/* A role on a base image needs the image, not a bootstrap; its packages are
		 * resolved against the image's own dpkg status when it is built. */
		if (rr == 0 && res->base_image) {
			rr = ib_imagebase_fetch(&child, &cas, &fo, res, NULL);
			n_base += rr == 0;
		} else if (rr == 0) {
			struct ib_rootfs_opts ro = {.project = p,
			                            .role = res,
			                            .cache_dir = cache,
			                            .epoch = epoch,
			                            .offline = cli->offline};
			_cleanup_free_ char *tar = NULL;
			int reused = 0;
			rr = ib_rootfs_get(&child, &ro, &tar, &reused);
			n_rootfs += rr == 0;
		}
		struct ib_supply s = {0};
		if (rr == 0)
			rr = ib_supply_get(&child, &cas, &fo, res, NULL, &s);
		if (rr == 0) {
			n_art += s.n_artifacts;
			n_img += s.n_images;
		} else if (failed++ == 0) {
			/* The first failure is the one line main prints; later ones are said
			 * here, as `build` does. */
			ib_error_prefix(&child, "fetching for '%s'", p->roles[i].name);
			ib_error_propagate(&cli->ctx, &child);
		} else {
			cli_message(cli, "imgbuild: error: fetching for '%s': %s", p->roles[i].name,
			            child.err);
		}
		ib_supply_release(&s);
		ib_resolved_free(res);
	}
	if (r == 0 && failed)
		r = -(int)cli->ctx.err_code;
	if (r == 0 && cli->verbosity > 0)
		printf("fetch: cache %s holds what every role needs: %zu root filesystems, %zu "
		       "base images, %zu artifacts, %zu images\n",
		       cache, n_rootfs, n_base, n_art, n_img);
	ib_cas_release(&cas);
	ib_project_free(p);
	return r;
}
