/* cmd_validate.c: `imgbuild validate`: load, resolve and render everything, build nothing. */
#include "cli.h"
#include "seedcfg.h"

int cmd_validate(struct cli *cli, int argc, char **argv)
{
	if (argc > 1)
		return ib_error(&cli->ctx, IB_E_USAGE, "'validate' takes no arguments");
	struct ib_project *p = NULL;
	int r = cli_load_project(cli, &p);
	if (r < 0)
		return r;
	for (size_t i = 0; i < p->n_roles && r == 0; i++) {
		struct ib_resolved *res = NULL;
		r = ib_role_resolve(&cli->ctx, p, p->roles[i].name, &res);
		if (r == 0 && !p->roles[i].abstract) {
			/* The seed template must render with every variable it may be given,
			 * a cluster plan's too (stand-in values: nothing is written). */
			struct seed_data sd = {0};
			struct seed_opts so = {.plan_mode = SEED_PLAN_PLACEHOLDERS};
			r = seed_render_opts(&cli->ctx, p, res, &so, &sd);
			seed_data_release(&sd);
		}
		ib_resolved_free(res);
	}
	if (r == 0)
		cli_warn_unpinned(cli, p);
	if (r == 0 && cli->verbosity > 0)
		printf("%s: spec ok: %zu roles\n", p->path, p->n_roles);
	ib_project_free(p);
	return r;
}
