/* cmd_cluster.c: `imgbuild cluster plan`: a kubeadm cluster's CA, token, user-data and seeds. */
#include "cli.h"
#include "cluster/cluster.h"
#include "layer/layer.h"
#include "seedcfg.h"
#include "util/fs.h"

#define DEFAULT_WORKERS 2

/* Render every host's user-data from its role's template (cloud-init/master.yaml, ...). */
static int render_hosts(struct cli *cli, const struct ib_project *p, struct ib_cluster_plan *plan)
{
	static const char *const roles[] = {"master", "worker"};
	struct ib_resolved *res[2] = {NULL, NULL};
	int r = 0;
	for (size_t i = 0; i < 2 && r == 0; i++) {
		if (!ib_project_find_role(p, roles[i]))
			r = ib_error(
			        &cli->ctx, IB_E_SPEC,
			        "the project has no role '%s' (a cluster needs master and worker)",
			        roles[i]);
		else
			r = ib_role_resolve(&cli->ctx, p, roles[i], &res[i]);
	}
	for (size_t i = 0; i < plan->n_hosts && r == 0; i++) {
		struct ib_cluster_host *h = &plan->hosts[i];
		struct ib_cluster_vars vars;
		ib_cluster_vars_init(&vars, plan, h);
		_cleanup_free_ char *iid = ib_cluster_instance_id(plan, h);
		const struct seed_opts o = {
		        .hostname = h->name,
		        .ssh_key_file = cli->ssh_key,
		        .instance_id = iid,
		        .vars = vars.v,
		        .n_vars = vars.n,
		};
		struct seed_data sd = {0};
		r = seed_render_opts(&cli->ctx, p, res[h->worker ? 1 : 0], &o, &sd);
		if (r == 0 && !sd.uses_plan)
			r = ib_error(
			        &cli->ctx, IB_E_SPEC,
			        "%s takes nothing from the cluster plan: the %s user-data needs "
			        "cloud-init/%s.yaml with {{ cluster_env_b64 }}",
			        sd.template_path + strlen(p->root) + 1, roles[h->worker ? 1 : 0],
			        roles[h->worker ? 1 : 0]);
		if (r == 0)
			h->user_data = TAKE_PTR(sd.user_data);
		seed_data_release(&sd);
		ib_cluster_vars_release(&vars);
	}
	ib_resolved_free(res[0]);
	ib_resolved_free(res[1]);
	return r;
}

static int cluster_plan(struct cli *cli, int argc)
{
	if (argc != 2)
		return ib_error(&cli->ctx, IB_E_USAGE, "'cluster plan' takes no arguments");
	if (!cli->master_address)
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "'cluster plan' needs --master-address ADDR (the master's IPv4 "
		                "address, which workers join)");
	struct ib_project *p = NULL;
	int r = cli_load_project(cli, &p);
	if (r < 0)
		return r;
	time_t epoch = ib_source_date_epoch();
	_cleanup_free_ char *dir = cli->cluster_dir ? ib_abspath(cli->cluster_dir)
	                                            : ib_path_join(p->output_dir, "cluster");
	const struct ib_cluster_opts o = {
	        .name = p->name,
	        .master_address = cli->master_address,
	        .workers = cli->workers ? cli->workers : DEFAULT_WORKERS,
	        .network = cli->network,
	        .pod_cidr = cli->pod_cidr,
	        .addons = cli->addons,
	        .rotate = cli->rotate,
	};
	struct ib_cluster_plan plan = {.lock_fd = -1};
	r = ib_cluster_plan_init(&cli->ctx, dir, &o, &plan);
	/* Everything is rendered before anything is written: a bad SSH key or template leaves
	 * the directory as it was. */
	if (r == 0)
		r = render_hosts(cli, p, &plan);
	if (r == 0)
		r = ib_cluster_plan_write(&cli->ctx, &plan, epoch < 0 ? IB_DEFAULT_EPOCH : epoch);
	if (r == 0 && cli->verbosity > 0)
		printf("%s: cluster %s, master %s and %d worker%s, CA %s (%s)\n", dir, plan.name,
		       plan.master_address, plan.workers, plan.workers == 1 ? "" : "s",
		       plan.ca.hash,
		       plan.reused ? "CA, token and certificate key kept"
		                   : "new CA, token and certificate key");
	ib_cluster_plan_release(&plan);
	ib_project_free(p);
	return r;
}

int cmd_cluster(struct cli *cli, int argc, char **argv)
{
	/* Room for `cluster up|status|ssh|logs|down` next to plan. */
	if (argc >= 2 && streq(argv[1], "plan"))
		return cluster_plan(cli, argc);
	for (const struct command *c = commands; c->name; c++)
		if (c->fn == cmd_cluster)
			cli_usage(stderr, c);
	if (argc < 2)
		return ib_error(&cli->ctx, IB_E_USAGE, "'cluster' needs a subcommand: plan");
	return ib_error(&cli->ctx, IB_E_USAGE, "unknown 'cluster' subcommand '%s' (expected: plan)",
	                argv[1]);
}
