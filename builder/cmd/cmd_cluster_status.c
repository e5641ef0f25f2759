/* cmd_cluster_status.c: `imgbuild cluster status|ssh|logs|down` on a local cluster: its
 * machines and their role checks, a shell or the serial console of one, and stopping it. */
#include <errno.h>
#include <signal.h>

#include "cluster_cli.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/proc.h"
#include "util/strbuf.h"

#define SSH_USER "debian" /* the cloud-init default user */

/* --dir, else the project's OUT/cluster. Caller frees; NULL with *r set on error. */
static char *state_dir(struct cli *cli, int *r)
{
	struct ib_project *p = NULL;
	if (cli->cluster_dir)
		return ib_abspath(cli->cluster_dir);
	*r = cli_load_project(cli, &p);
	if (*r < 0)
		return NULL;
	char *dir = cluster_dir(cli, p);
	ib_project_free(p);
	return dir;
}

/* The ssh command line for host v, then the remote command words (may be none). */
static void ssh_argv(const char *dir, const struct ib_vm *v, int batch, struct strv *a)
{
	_cleanup_free_ char *key = ib_path_join(dir, "id_ed25519");
	strv_push(a, "ssh");
	if (ib_exists(key)) {
		strv_push(a, "-i");
		strv_push(a, key);
	}
	strv_push(a, "-p");
	strv_push_take(a, xasprintf("%d", v->ssh_port));
	strv_push(a, "-o");
	strv_push(a, "StrictHostKeyChecking=no");
	strv_push(a, "-o");
	strv_push(a, "UserKnownHostsFile=/dev/null");
	strv_push(a, "-o");
	strv_push(a, "LogLevel=ERROR");
	/* No password prompt without a terminal: a script fails instead of hanging. */
	if (batch || !isatty(0)) {
		strv_push(a, "-o");
		strv_push(a, "BatchMode=yes");
	}
	strv_push(a, "-o");
	strv_push(a, batch ? "ConnectTimeout=5" : "ConnectTimeout=20");
	strv_push(a, SSH_USER "@127.0.0.1");
}

/* Run a shell command on v over SSH (batch mode, bounded); its stdout, or NULL when SSH
 * failed. Caller frees. */
static char *ssh_capture(const char *dir, const struct ib_vm *v, const char *cmd)
{
	struct strv a = {0};
	ssh_argv(dir, v, 1, &a);
	strv_push(&a, cmd);
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	char *out = NULL;
	int r = ib_run(&quiet, (const char *const *)a.v, NULL, IB_RUN_CAPTURE_STDOUT, &out);
	strv_release(&a);
	if (r < 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* What a machine's role checks found; NULL when not asked. */
struct checks {
	char *kubelet;    /* k8s nodes: systemctl is-active kubelet */
	const char *node; /* k8s nodes: Ready, NotReady, not joined, n/a */
	char *stack;      /* tooling: "active, 12/12 containers running" */
};

static void checks_release(struct checks *c)
{
	free(c->kubelet);
	free(c->stack);
	memset(c, 0, sizeof(*c));
}

/* The master's answer to `kubectl get nodes -o json`, or NULL (no SSH, no control plane).
 * Through sudo: admin.conf is root's alone. */
static char *nodes_json(const char *dir, const struct ib_cluster_state *s)
{
	for (size_t i = 0; i < s->n_vms; i++)
		if (streq(s->vms[i].role, "master") && ib_vm_alive(s->vms[i].pid, dir) &&
		    cluster_cloud_init_done(dir, s->vms[i].name))
			return ssh_capture(
			        dir, &s->vms[i],
			        "sudo -n kubectl --kubeconfig /etc/kubernetes/admin.conf "
			        "--request-timeout=10s get nodes -o json 2>/dev/null");
	return NULL;
}

static void role_checks(const char *dir, const struct ib_vm *v, const char *nodes, struct checks *c)
{
	if (streq(v->role, "tooling")) {
		_cleanup_free_ char *out = ssh_capture(
		        dir, v,
		        "systemctl is-active imgbuild-tooling; sudo -n docker ps -a --filter "
		        "label=com.docker.compose.project=tooling --format '{{.State}}' "
		        "2>/dev/null; true");
		c->stack = out ? ib_tooling_state(out) : xstrdup("no SSH");
		return;
	}
	_cleanup_free_ char *out = ssh_capture(dir, v, "systemctl is-active kubelet || true");
	if (out)
		out[strcspn(out, "\n")] = '\0';
	c->kubelet = xstrdup(!out ? "no SSH" : *out ? out : "unknown");
	const char *st = ib_node_state(nodes, v->name);
	c->node = st ? st : "n/a";
}

/* The CHECK column: "kubelet active, node Ready", "stack active, 12/12 containers running". */
static char *checks_text(const struct checks *c)
{
	if (c->stack)
		return xasprintf("stack %s", c->stack);
	if (c->kubelet)
		return xasprintf("kubelet %s, node %s", c->kubelet, c->node);
	return xstrdup("-");
}

int cluster_status(struct cli *cli, int argc)
{
	if (argc != 2)
		return ib_error(&cli->ctx, IB_E_USAGE, "'cluster status' takes no arguments");
	int r = 0;
	_cleanup_free_ char *dir = state_dir(cli, &r);
	struct ib_cluster_state s;
	if (r == 0)
		r = ib_cluster_state_read(&cli->ctx, dir, &s);
	if (r < 0)
		return r;
	_cleanup_free_ char *nodes = nodes_json(dir, &s);
	int plane = ib_node_state(nodes, "") != NULL;
	struct strbuf sb = STRBUF_INIT;
	struct json j;
	json_init(&j, &sb, 0);
	json_obj_begin(&j, NULL);
	json_str(&j, "dir", dir);
	json_str(&j, "accel", s.accel);
	json_str(&j, "firmware", s.firmware);
	json_str(&j, "hub", ib_vm_alive(s.hub_pid, dir) ? "running" : "stopped");
	json_bool(&j, "control_plane", plane);
	json_arr_begin(&j, "hosts");
	if (!cli->json)
		printf("%-10s %-8s %-8s %-12s %-6s %-6s %-10s %s\n", "HOST", "ROLE", "STATE",
		       "ADDRESS", "MEMORY", "SSH", "CLOUD-INIT", "CHECK");
	for (size_t i = 0; i < s.n_vms; i++) {
		const struct ib_vm *v = &s.vms[i];
		int up = ib_vm_alive(v->pid, dir);
		int done = up && cluster_cloud_init_done(dir, v->name);
		struct checks c = {0};
		if (done)
			role_checks(dir, v, nodes, &c);
		_cleanup_free_ char *check = checks_text(&c);
		json_obj_begin(&j, NULL);
		json_str(&j, "name", v->name);
		json_str(&j, "role", v->role);
		json_str(&j, "state", up ? "running" : "stopped");
		json_str(&j, "address", v->address);
		json_int(&j, "memory", v->memory);
		json_int(&j, "cpus", v->cpus);
		json_int(&j, "ssh_port", v->ssh_port);
		json_str(&j, "cloud_init", done ? "done" : up ? "booting" : "-");
		json_str(&j, "check", done ? check : NULL);
		json_str(&j, "kubelet", c.kubelet);
		json_str(&j, "node", c.node);
		json_str(&j, "stack", c.stack);
		json_arr_begin(&j, "forwards");
		for (size_t k = 0; k < v->n_fwd; k++) {
			json_obj_begin(&j, NULL);
			json_int(&j, "host_port", v->fwd[k].host_port);
			json_int(&j, "guest_port", v->fwd[k].guest_port);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_obj_end(&j);
		if (!cli->json)
			printf("%-10s %-8s %-8s %-12s %-6d %-6d %-10s %s\n", v->name, v->role,
			       up ? "running" : "stopped", v->address, v->memory, v->ssh_port,
			       done ? "done"
			       : up ? "booting"
			            : "-",
			       check);
		checks_release(&c);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	if (cli->json) {
		printf("%s\n", sb_str(&sb));
	} else {
		if (!plane)
			printf("node n/a: no control plane answered 'kubectl get nodes' on the "
			       "master\n");
		printf("forwarded to 127.0.0.1 (host port->guest port):\n");
		cluster_print_forwards(&s);
	}
	sb_release(&sb);
	return 0;
}

static int find_vm(struct cli *cli, const char *cmd, int argc, char **argv, char **ret_dir,
                   struct ib_cluster_state *s, const struct ib_vm **ret)
{
	if (argc < 3)
		return ib_error(&cli->ctx, IB_E_USAGE, "'cluster %s' needs a host name", cmd);
	int r = 0;
	char *dir = state_dir(cli, &r);
	if (r == 0)
		r = ib_cluster_state_read(&cli->ctx, dir, s);
	if (r == 0 && !(*ret = ib_cluster_state_find(s, argv[2]))) {
		struct strbuf sb = STRBUF_INIT;
		for (size_t i = 0; i < s->n_vms; i++)
			sb_addf(&sb, "%s%s", i ? ", " : "", s->vms[i].name);
		r = ib_error(&cli->ctx, IB_E_USAGE, "no host '%s' in the cluster (hosts: %s)",
		             argv[2], sb_str(&sb));
		sb_release(&sb);
	}
	if (r < 0) {
		free(dir);
		return r;
	}
	*ret_dir = dir;
	return 0;
}

int cluster_ssh(struct cli *cli, int argc, char **argv)
{
	_cleanup_free_ char *dir = NULL;
	struct ib_cluster_state s;
	const struct ib_vm *v = NULL;
	int r = find_vm(cli, "ssh", argc, argv, &dir, &s, &v);
	if (r < 0)
		return r;
	struct strv a = {0};
	ssh_argv(dir, v, 0, &a);
	for (int i = 3; i < argc; i++)
		strv_push(&a, argv[i]);
	fflush(stdout);
	sigset_t none;
	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
	execvp("ssh", a.v);
	r = ib_error_errno(&cli->ctx, IB_E_TOOL, errno, "cannot run ssh");
	strv_release(&a);
	return r;
}

int cluster_logs(struct cli *cli, int argc, char **argv)
{
	_cleanup_free_ char *dir = NULL;
	struct ib_cluster_state s;
	const struct ib_vm *v = NULL;
	int r = find_vm(cli, "logs", argc, argv, &dir, &s, &v);
	if (r < 0)
		return r;
	if (argc > 3)
		return ib_error(&cli->ctx, IB_E_USAGE, "'cluster logs' takes one host name");
	_cleanup_free_ char *path = cluster_vm_file(dir, v->name, "serial");
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	r = ib_read_file(&cli->ctx, path, CLUSTER_SERIAL_MAX, &text, &len);
	if (r == 0 && fwrite(text, 1, len, stdout) != len)
		r = ib_error_errno(&cli->ctx, IB_E_IO, errno, "cannot write the log");
	return r;
}

int cluster_down(struct cli *cli, int argc)
{
	if (argc != 2)
		return ib_error(&cli->ctx, IB_E_USAGE, "'cluster down' takes no arguments");
	int r = 0;
	_cleanup_free_ char *dir = state_dir(cli, &r);
	if (r < 0)
		return r;
	_cleanup_free_ char *path = ib_path_join(dir, "state.json");
	struct ib_cluster_state s;
	memset(&s, 0, sizeof(s));
	if (!ib_exists(path)) {
		cluster_teardown(dir, &s); /* leftovers of an `up` killed outright */
		if (cli->verbosity > 0)
			printf("no cluster is up in %s\n", dir);
		return 0;
	}
	r = ib_cluster_state_read(&cli->ctx, dir, &s);
	if (r < 0)
		return r;
	cluster_teardown(dir, &s);
	if (cli->verbosity > 0)
		printf("cluster in %s stopped: %zu machine%s, overlays removed (the plan stays)\n",
		       dir, s.n_vms, s.n_vms == 1 ? "" : "s");
	return 0;
}
