/* cmd_seed.c: `imgbuild seed ROLE`: a NoCloud seed ISO for booting a role's image locally. */
#include <sys/stat.h>

#include "cli.h"
#include "cluster/cluster.h"
#include "layer/layer.h"
#include "seed/seed.h"
#include "seedcfg.h"
#include "util/fs.h"

/* A cluster role is master or worker, or extends one of them. -1: neither. */
static int cluster_kind(const struct ib_resolved *res)
{
	for (size_t i = res->n_chain; i > 0; i--) {
		if (streq(res->chain[i - 1]->name, "master"))
			return 0;
		if (streq(res->chain[i - 1]->name, "worker"))
			return 1;
	}
	return -1;
}

struct planned {
	struct ib_cluster_plan plan;
	struct ib_cluster_host host;
	struct ib_cluster_vars vars;
	char *iid;
	char *network_config;
};

static void planned_release(struct planned *pl)
{
	ib_cluster_vars_release(&pl->vars);
	free(pl->iid);
	free(pl->network_config);
	ib_cluster_plan_release(&pl->plan);
}

/* The host's variables and network from the plan in cli->plan_dir. */
static int from_plan(struct cli *cli, const struct ib_resolved *res, struct planned *pl,
                     struct seed_opts *o)
{
	int kind = cluster_kind(res);
	if (kind < 0)
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "--plan: role '%s' is not a cluster host (it extends neither "
		                "master nor worker)",
		                res->role->name);
	_cleanup_free_ char *dir = ib_abspath(cli->plan_dir);
	int r = ib_cluster_plan_load(&cli->ctx, dir, &pl->plan);
	if (r == 0)
		r = ib_cluster_host(&cli->ctx, &pl->plan,
		                    o->hostname ? o->hostname : res->role->name, kind, &pl->host);
	if (r < 0)
		return r;
	ib_cluster_vars_init(&pl->vars, &pl->plan, &pl->host);
	pl->iid = ib_cluster_instance_id(&pl->plan, &pl->host);
	pl->network_config = ib_cluster_network_config(&pl->plan, &pl->host);
	o->hostname = pl->host.name;
	o->instance_id = pl->iid;
	o->vars = pl->vars.v;
	o->n_vars = pl->vars.n;
	return 0;
}

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
	struct planned pl = {.plan = {.lock_fd = -1}};
	_cleanup_free_ char *out = NULL, *iso = NULL;
	if (!ib_project_find_role(p, argv[1])) {
		r = ib_error(&cli->ctx, IB_E_USAGE, "unknown role '%s' (see 'imgbuild list')",
		             argv[1]);
		goto done;
	}
	r = ib_role_resolve(&cli->ctx, p, argv[1], &res);
	if (r < 0)
		goto done;
	/* A seed is for booting: a cluster host's without its plan would not join anything. */
	struct seed_opts o = {
	        .hostname = cli->hostname,
	        .ssh_key_file = cli->ssh_key,
	        .plan_mode = SEED_PLAN_REQUIRED,
	};
	if (cli->plan_dir && (r = from_plan(cli, res, &pl, &o)) < 0)
		goto done;
	r = seed_render_opts(&cli->ctx, p, res, &o, &sd);
	if (r < 0)
		goto done;
	/* A planned host's seed holds secrets: it goes with the plan, named by host. */
	if (cli->plan_dir) {
		out = cli->out ? ib_abspath(cli->out) : xstrdup(pl.plan.dir);
		iso = xasprintf("%s/%s.seed.iso", out, pl.host.name);
	} else {
		out = cli->out ? ib_abspath(cli->out) : xstrdup(p->output_dir);
		iso = xasprintf("%s/%s.seed.iso", out, argv[1]);
	}
	r = ib_mkdir_p(&cli->ctx, out, cli->plan_dir ? 0700 : 0755);
	if (r < 0)
		goto done;
	time_t epoch = ib_source_date_epoch();
	r = ib_seed_write(&cli->ctx, iso, sd.user_data, sd.meta_data, pl.network_config,
	                  epoch < 0 ? IB_DEFAULT_EPOCH : epoch);
	if (r == 0 && cli->verbosity > 0)
		printf("%s\n", iso);
done:
	planned_release(&pl);
	seed_data_release(&sd);
	ib_resolved_free(res);
	ib_project_free(p);
	return r;
}
