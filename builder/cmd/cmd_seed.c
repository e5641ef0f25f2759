/* cmd_seed.c: `imgbuild seed ROLE`: a NoCloud seed ISO for booting a role's image locally. */
#include "cli.h"
#include "layer/layer.h"
#include "seed/seed.h"
#include "seedcfg.h"
#include "util/fs.h"

int cmd_seed(struct cli *cli, int argc, char **argv)
{
	if (argc != 2)
		return ib_error(&cli->ctx, IB_E_USAGE, "'seed' takes exactly one role");
	struct ib_project *p = NULL;
	int r = cli_load_project(cli, &p);
	if (r < 0)
		return r;
	struct ib_resolved *res = NULL;
	struct seed_data sd = {0};
	_cleanup_free_ char *out = NULL, *iso = NULL;
	if (!ib_project_find_role(p, argv[1])) {
		r = ib_error(&cli->ctx, IB_E_USAGE, "unknown role '%s' (see 'imgbuild list')",
		             argv[1]);
		goto done;
	}
	r = ib_role_resolve(&cli->ctx, p, argv[1], &res);
	if (r < 0)
		goto done;
	r = seed_render(&cli->ctx, p, res, cli->hostname, cli->ssh_key, &sd);
	if (r < 0)
		goto done;
	out = cli->out ? ib_abspath(cli->out) : xstrdup(p->output_dir);
	r = ib_mkdir_p(&cli->ctx, out, 0755);
	if (r < 0)
		goto done;
	iso = xasprintf("%s/%s.seed.iso", out, argv[1]);
	time_t epoch = ib_source_date_epoch();
	r = ib_seed_write(&cli->ctx, iso, sd.user_data, sd.meta_data, NULL,
	                  epoch < 0 ? IB_DEFAULT_EPOCH : epoch);
	if (r == 0 && cli->verbosity > 0)
		printf("%s\n", iso);
done:
	seed_data_release(&sd);
	ib_resolved_free(res);
	ib_project_free(p);
	return r;
}
