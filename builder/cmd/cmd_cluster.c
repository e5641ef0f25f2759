/* cmd_cluster.c: `imgbuild cluster`: the dispatch, `cluster plan` (a kubeadm cluster's CA,
 * token, user-data and seeds) and what the local cluster's subcommands share. */
#include <sys/socket.h>

#include "cluster_cli.h"
#include "layer/layer.h"
#include "seedcfg.h"
#include "util/fs.h"

#define DEFAULT_WORKERS 2

/* One host's user-data from its role's template (cloud-init/master.yaml, ...), with the
 * SSH keys in ssh_key (a file, or NULL). Nodes get the plan's variables; the tooling host
 * gets TOOLING_NODES and its private address. */
static int render_host(struct cli *cli, const struct ib_project *p, const struct ib_resolved *res,
                       const struct ib_cluster_plan *plan, const struct ib_cluster_host *h,
                       const char *ssh_key, char **ret)
{
	int tooling = h == &plan->tooling;
	struct ib_cluster_vars vars;
	ib_cluster_vars_init(&vars, plan, h);
	_cleanup_free_ char *iid = ib_cluster_instance_id(plan, h);
	_cleanup_free_ char *nodes = ib_cluster_tooling_nodes(plan);
	const struct ib_tvar tvars[] = {
	        {"tooling_nodes", nodes},
	        {"tooling_address", h->address},
	};
	const struct seed_opts o = {
	        .hostname = h->name,
	        .ssh_key_file = ssh_key,
	        .instance_id = iid,
	        .vars = tooling ? tvars : vars.v,
	        .n_vars = tooling ? ARRAY_SIZE(tvars) : vars.n,
	        .plan_mode = SEED_PLAN_FALLBACK,
	};
	struct seed_data sd = {0};
	const char *role = res->role->name;
	int r = seed_render_opts(&cli->ctx, p, res, &o, &sd);
	if (r == 0 && !tooling && !sd.uses_plan)
		r = ib_error(&cli->ctx, IB_E_SPEC,
		             "%s takes nothing from the cluster plan: the %s user-data needs "
		             "cloud-init/%s.yaml with {{ cluster_env_b64 }}",
		             sd.template_path + strlen(p->root) + 1, role, role);
	if (r == 0)
		*ret = TAKE_PTR(sd.user_data);
	seed_data_release(&sd);
	ib_cluster_vars_release(&vars);
	return r;
}

/* Every host's user-data (into user_data), the tooling host's too when the plan has one. */
int cluster_render_hosts(struct cli *cli, const struct ib_project *p, struct ib_cluster_plan *plan,
                         const char *ssh_key)
{
	struct ib_resolved *res[IB_ROLE_N] = {NULL, NULL, NULL};
	int r = 0;
	for (size_t i = 0; i < IB_ROLE_N && r == 0; i++) {
		if (i == IB_ROLE_TOOLING && !plan->has_tooling)
			break;
		if (!ib_project_find_role(p, ib_cluster_roles[i]))
			r = ib_error(
			        &cli->ctx, IB_E_SPEC,
			        "the project has no role '%s' (a cluster needs master and worker)",
			        ib_cluster_roles[i]);
		else
			r = ib_role_resolve(&cli->ctx, p, ib_cluster_roles[i], &res[i]);
	}
	for (size_t i = 0; i <= plan->n_hosts && r == 0; i++) {
		struct ib_cluster_host *h = i < plan->n_hosts ? &plan->hosts[i] : &plan->tooling;
		if (i == plan->n_hosts && !plan->has_tooling)
			break;
		size_t role = i == plan->n_hosts ? IB_ROLE_TOOLING
		              : h->worker        ? IB_ROLE_WORKER
		                                 : IB_ROLE_MASTER;
		free(h->user_data);
		h->user_data = NULL;
		r = render_host(cli, p, res[role], plan, h, ssh_key, &h->user_data);
	}
	for (size_t i = 0; i < IB_ROLE_N; i++)
		ib_resolved_free(res[i]);
	return r;
}

char *cluster_dir(struct cli *cli, const struct ib_project *p)
{
	return cli->cluster_dir ? ib_abspath(cli->cluster_dir)
	                        : ib_path_join(p->output_dir, "cluster");
}

/* Plan into dir with the options in cli; prints one line unless quiet. */
int cluster_plan_into(struct cli *cli, struct ib_project *p, const char *dir)
{
	time_t epoch = ib_source_date_epoch();
	const struct ib_cluster_opts o = {
	        .name = p->name,
	        .master_address = cli->master_address,
	        .workers = cli->workers ? cli->workers : DEFAULT_WORKERS,
	        .network = cli->network,
	        .pod_cidr = cli->pod_cidr,
	        .addons = cli->addons,
	        .rotate = cli->rotate,
	        .tooling = !cli->no_tooling && ib_project_find_role(p, "tooling") != NULL,
	        .memory = cli->memory,
	        .cpus = cli->cpus,
	};
	struct ib_cluster_plan plan = {.lock_fd = -1};
	int r = ib_cluster_plan_init(&cli->ctx, dir, &o, &plan);
	/* Everything is rendered before anything is written: a bad SSH key or template leaves
	 * the directory as it was. */
	if (r == 0)
		r = cluster_render_hosts(cli, p, &plan, cli->ssh_key);
	if (r == 0)
		r = ib_cluster_plan_write(&cli->ctx, &plan, epoch < 0 ? IB_DEFAULT_EPOCH : epoch);
	if (r == 0 && cli->verbosity > 0)
		printf("%s: cluster %s, master %s and %d worker%s%s%s, CA %s (%s)\n", dir,
		       plan.name, plan.master_address, plan.workers, plan.workers == 1 ? "" : "s",
		       plan.has_tooling ? ", tooling " : "",
		       plan.has_tooling ? plan.tooling.address : "", plan.ca.hash,
		       plan.reused ? "CA, token and certificate key kept"
		                   : "new CA, token and certificate key");
	ib_cluster_plan_release(&plan);
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
	_cleanup_free_ char *dir = cluster_dir(cli, p);
	r = cluster_plan_into(cli, p, dir);
	ib_project_free(p);
	return r;
}

/* ---- the local cluster: files in DIR ---- */

char *cluster_vm_file(const char *dir, const char *name, const char *ext)
{
	return xasprintf("%s/vm/%s.%s", dir, name, ext);
}

/* Does the serial log of host name show cloud-init finished? */
int cluster_cloud_init_done(const char *dir, const char *name)
{
	_cleanup_free_ char *path = cluster_vm_file(dir, name, "serial");
	_cleanup_free_ char *marker = xasprintf(CLUSTER_MARKER "%s", name);
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (ib_read_file(&quiet, path, CLUSTER_SERIAL_MAX, &text, &len) < 0)
		return 0;
	return memmem(text, len, marker, strlen(marker)) != NULL;
}

/* QEMU's pid: the state's, else its pid file's (a start the state did not record). */
int cluster_vm_pid(const char *dir, const struct ib_vm *v)
{
	if (v->pid > 0)
		return v->pid;
	_cleanup_free_ char *path = cluster_vm_file(dir, v->name, "pid");
	_cleanup_free_ char *text = NULL;
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	if (ib_read_file(&quiet, path, 64, &text, NULL) < 0)
		return 0;
	return atoi(text);
}

/* Stop every machine and the hub, remove the overlays, seeds of the run and the state;
 * the plan (CA, token, key, seeds) stays. */
void cluster_teardown(const char *dir, const struct ib_cluster_state *s)
{
	for (size_t i = 0; i < s->n_vms; i++) {
		_cleanup_free_ char *mon = cluster_vm_file(dir, s->vms[i].name, "monitor");
		ib_vm_stop(cluster_vm_pid(dir, &s->vms[i]), dir, mon);
	}
	if (s->hub_pid > 0)
		ib_vm_stop(s->hub_pid, dir, NULL);
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	_cleanup_free_ char *vmdir = ib_path_join(dir, "vm");
	_cleanup_free_ char *state = ib_path_join(dir, "state.json");
	ib_rm_rf(&quiet, vmdir);
	unlink(state);
}

void cluster_print_forwards(const struct ib_cluster_state *s)
{
	for (size_t i = 0; i < s->n_vms; i++) {
		const struct ib_vm *v = &s->vms[i];
		printf("  %-10s ssh 127.0.0.1:%d", v->name, v->ssh_port);
		for (size_t k = 0; k < v->n_fwd; k++)
			printf(", %d->%d", v->fwd[k].host_port, v->fwd[k].guest_port);
		printf("\n");
	}
}

int cmd_cluster(struct cli *cli, int argc, char **argv)
{
	if (argc >= 2) {
		if (streq(argv[1], "plan"))
			return cluster_plan(cli, argc);
		if (streq(argv[1], "up"))
			return cluster_up(cli, argc);
		if (streq(argv[1], "status"))
			return cluster_status(cli, argc);
		if (streq(argv[1], "ssh"))
			return cluster_ssh(cli, argc, argv);
		if (streq(argv[1], "logs"))
			return cluster_logs(cli, argc, argv);
		if (streq(argv[1], "down"))
			return cluster_down(cli, argc);
	}
	for (const struct command *c = commands; c->name; c++)
		if (c->fn == cmd_cluster)
			cli_usage(stderr, c);
	if (argc < 2)
		return ib_error(
		        &cli->ctx, IB_E_USAGE,
		        "'cluster' needs a subcommand: plan, up, status, ssh, logs or down");
	return ib_error(&cli->ctx, IB_E_USAGE,
	                "unknown 'cluster' subcommand '%s' (expected: plan, up, status, ssh, logs "
	                "or down)",
	                argv[1]);
}

/* `imgbuild __hub DIR PORT...`: the private network of the cluster in DIR, on the UDP
 * socket passed as fd 3, until SIGTERM. */
int cmd_hub(struct cli *cli, int argc, char **argv)
{
	int ports[IB_VM_MAX];
	size_t n = 0;
	int type = 0;
	socklen_t len = sizeof(type);
	if (argc < 2 || getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_DGRAM)
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "'__hub' is run by 'cluster up' with its socket as fd 3");
	for (int i = 2; i < argc && n < IB_VM_MAX; i++)
		ports[n++] = atoi(argv[i]);
	int r = ib_hub_run(3, ports, n, &ib_interrupted);
	if (r < 0)
		return ib_error_errno(&cli->ctx, IB_E_IO, -r, "hub for '%s'", argv[1]);
	return ib_interrupted ? -IB_E_INTERRUPTED : 0;
}
