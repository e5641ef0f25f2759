/* cmd_cluster.c: `imgbuild cluster plan|up|status|ssh|logs|down`: a kubeadm cluster's CA,
 * token, user-data and seeds, and the same cluster booted locally under QEMU. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cli.h"
#include "cluster/cluster.h"
#include "layer/layer.h"
#include "seedcfg.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/proc.h"
#include "util/strbuf.h"
#include "util/tmpreg.h"

#define DEFAULT_WORKERS 2
/* What `cluster up` plans with when the directory has no plan. */
#define UP_MASTER_ADDRESS "10.77.0.10"
#define UP_NETWORK        "10.77.0.0/24"
#define UP_DISK_SIZE      "8G"
#define UP_TIMEOUT        900
#define SSH_USER          "debian"
#define MARKER            "imgbuild: cloud-init finished on "
#define SERIAL_MAX        (256u << 20)

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
static int render_hosts(struct cli *cli, const struct ib_project *p, struct ib_cluster_plan *plan,
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

static char *cluster_dir(struct cli *cli, const struct ib_project *p)
{
	return cli->cluster_dir ? ib_abspath(cli->cluster_dir)
	                        : ib_path_join(p->output_dir, "cluster");
}

/* Plan into dir with the options in cli; prints one line unless quiet. */
static int plan_into(struct cli *cli, struct ib_project *p, const char *dir)
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
		r = render_hosts(cli, p, &plan, cli->ssh_key);
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
	r = plan_into(cli, p, dir);
	ib_project_free(p);
	return r;
}

/* ---- the local cluster: files in DIR ---- */

static char *vm_file(const char *dir, const char *name, const char *ext)
{
	return xasprintf("%s/vm/%s.%s", dir, name, ext);
}

/* Does the serial log of host name show cloud-init finished? */
static int cloud_init_done(const char *dir, const char *name)
{
	_cleanup_free_ char *path = vm_file(dir, name, "serial");
	_cleanup_free_ char *marker = xasprintf(MARKER "%s", name);
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (ib_read_file(&quiet, path, SERIAL_MAX, &text, &len) < 0)
		return 0;
	return memmem(text, len, marker, strlen(marker)) != NULL;
}

/* QEMU's pid: the state's, else its pid file's (a start the state did not record). */
static int vm_pid(const char *dir, const struct ib_vm *v)
{
	if (v->pid > 0)
		return v->pid;
	_cleanup_free_ char *path = vm_file(dir, v->name, "pid");
	_cleanup_free_ char *text = NULL;
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	if (ib_read_file(&quiet, path, 64, &text, NULL) < 0)
		return 0;
	return atoi(text);
}

/* Stop every machine and the hub, remove the overlays, seeds of the run and the state;
 * the plan (CA, token, key, seeds) stays. */
static void teardown(const char *dir, const struct ib_cluster_state *s)
{
	for (size_t i = 0; i < s->n_vms; i++) {
		_cleanup_free_ char *mon = vm_file(dir, s->vms[i].name, "monitor");
		ib_vm_stop(vm_pid(dir, &s->vms[i]), dir, mon);
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

/* The `up` in progress, for the signal thread: it tears down what was started. */
static struct {
	pthread_mutex_t lock;
	const char *dir;
	struct ib_cluster_state *state;
} running = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL};

static void up_interrupted(void)
{
	pthread_mutex_lock(&running.lock);
	if (running.state) {
		teardown(running.dir, running.state);
		running.state = NULL;
	}
	pthread_mutex_unlock(&running.lock);
}

/* ssh-keygen an ed25519 key pair for the cluster in dir, unless one is there. */
static int ensure_key(struct cli *cli, const char *dir, char **ret_pub)
{
	_cleanup_free_ char *key = ib_path_join(dir, "id_ed25519");
	char *pub = ib_path_join(dir, "id_ed25519.pub");
	if (!ib_exists(key) || !ib_exists(pub)) {
		unlink(key);
		unlink(pub);
		const char *const argv[] = {"ssh-keygen", "-q", "-t", "ed25519",
		                            "-N",         "",   "-C", "imgbuild-cluster",
		                            "-f",         key,  NULL};
		int r = ib_run(&cli->ctx, argv, NULL, 0, NULL);
		if (r < 0) {
			free(pub);
			return r;
		}
	}
	*ret_pub = pub;
	return 0;
}

/* Does text hold SSH public keys only (one at least; comments and blank lines aside)? The
 * seed checks them again, but would name the file `up` merges them into. */
static int public_keys(const char *text)
{
	int n = 0;
	for (const char *l = text; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != '\0')) {
		if (*l == '\n' || *l == '#')
			continue;
		if (!startswith(l, "ssh-") && !startswith(l, "ecdsa-") && !startswith(l, "sk-"))
			return 0;
		n++;
	}
	return n > 0;
}

/* vm/authorized_keys: the cluster's own key, then those of --ssh-key (checked as `seed`
 * checks them, when the seeds are rendered). */
static int up_keys(struct cli *cli, const char *dir, const char *pubkey, char **ret)
{
	_cleanup_free_ char *own = NULL, *extra = NULL;
	int r = ib_read_file(&cli->ctx, pubkey, 16u << 10, &own, NULL);
	if (r == 0 && cli->ssh_key) {
		struct ib_ctx rctx;
		ib_ctx_init(&rctx);
		if (ib_read_file(&rctx, cli->ssh_key, 16u << 10, &extra, NULL) < 0)
			r = ib_error(&cli->ctx, IB_E_USAGE, "--ssh-key: %s", rctx.err);
		else if (!public_keys(extra))
			r = ib_error(&cli->ctx, IB_E_USAGE,
			             "'%s' does not look like an SSH public key", cli->ssh_key);
	}
	if (r < 0)
		return r;
	char *path = vm_file(dir, "authorized_keys", "pub");
	size_t n = strlen(own);
	_cleanup_free_ char *text =
	        xasprintf("%s%s%s", own, n && own[n - 1] != '\n' ? "\n" : "", extra ? extra : "");
	r = ib_write_file_atomic(&cli->ctx, path, text, strlen(text), 0600);
	if (r < 0) {
		free(path);
		return r;
	}
	*ret = path;
	return 0;
}

/* This run's seed of h: the plan's user-data rendered again with the run's SSH keys (the
 * plan's seeds stay as `cluster plan` wrote them). */
static int up_seed(struct cli *cli, const char *dir, const struct ib_cluster_plan *plan,
                   const struct ib_cluster_host *h)
{
	_cleanup_free_ char *path = vm_file(dir, h->name, "seed.iso");
	_cleanup_free_ char *meta = ib_cluster_meta_data(plan, h);
	_cleanup_free_ char *net = ib_cluster_network_config(plan, h);
	time_t epoch = ib_source_date_epoch();
	return ib_seed_write(&cli->ctx, path, h->user_data, meta, net,
	                     epoch < 0 ? IB_DEFAULT_EPOCH : epoch);
}

static void fill_vm(struct cli *cli, const struct ib_cluster_plan *plan, struct ib_vm *v,
                    const struct ib_cluster_host *h, enum ib_cluster_role role)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", h->name);
	snprintf(v->role, sizeof(v->role), "%s", ib_cluster_roles[role]);
	memcpy(v->address, h->address, sizeof(v->address));
	memcpy(v->mac, h->mac, sizeof(v->mac));
	memcpy(v->uplink_mac, h->uplink_mac, sizeof(v->uplink_mac));
	/* --memory and --cpus given to `up` win over the plan's. */
	v->memory = cli->memory[role] ? cli->memory[role] : plan->machines[role].memory;
	v->cpus = cli->cpus[role] ? cli->cpus[role] : plan->machines[role].cpus;
}

/* The machines of the plan in dir (the tooling host when the plan has one and its image
 * exists), and their seeds for this run, authorizing the keys in keys. */
static int up_hosts(struct cli *cli, const struct ib_project *p, const char *dir, const char *keys,
                    struct ib_cluster_state *s)
{
	struct ib_cluster_plan plan = {.lock_fd = -1};
	int r = ib_cluster_plan_load(&cli->ctx, dir, &plan);
	if (r < 0)
		return r;
	if (!plan.has_network)
		r = ib_error(&cli->ctx, IB_E_USAGE,
		             "the plan in '%s' has no --network: 'cluster up' needs the hosts' "
		             "static addresses (plan again with --network, or use another --dir)",
		             dir);
	else if (cli->workers && cli->workers != plan.workers)
		r = ib_error(&cli->ctx, IB_E_USAGE,
		             "the plan in '%s' has %d worker%s: --workers applies only when 'up' "
		             "makes the plan (plan again, or use another --dir)",
		             dir, plan.workers, plan.workers == 1 ? "" : "s");
	_cleanup_free_ char *tooling = ib_path_join(p->output_dir, "tooling.qcow2");
	if (plan.has_tooling && (cli->no_tooling || !ib_exists(tooling))) {
		if (cli->verbosity > 0)
			cli_message(cli, "imgbuild: no tooling host: %s",
			            cli->no_tooling ? "--no-tooling"
			                            : "no image out/tooling.qcow2");
		plan.has_tooling = 0; /* this run's seeds are rendered without it */
	}
	if (r == 0)
		r = render_hosts(cli, p, &plan, keys);
	for (size_t i = 0; i <= plan.n_hosts && r == 0; i++) {
		const struct ib_cluster_host *h = i < plan.n_hosts ? &plan.hosts[i] : &plan.tooling;
		if (i == plan.n_hosts && !plan.has_tooling)
			break;
		enum ib_cluster_role role = i == plan.n_hosts ? IB_ROLE_TOOLING
		                            : h->worker       ? IB_ROLE_WORKER
		                                              : IB_ROLE_MASTER;
		r = up_seed(cli, dir, &plan, h);
		if (r == 0)
			fill_vm(cli, &plan, &s->vms[s->n_vms++], h, role);
	}
	ib_cluster_plan_release(&plan);
	return r;
}

/* The hub: `imgbuild __hub DIR PORT...` on a UDP socket bound here, passed as fd 3. */
static int start_hub(struct cli *cli, const char *dir, struct ib_cluster_state *s)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return ib_error_errno(&cli->ctx, IB_E_IO, e,
		                      "cannot bind the cluster's hub socket");
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		close(fd);
		return ib_error_errno(&cli->ctx, IB_E_IO, errno, "cannot find the imgbuild binary");
	}
	exe[n] = '\0';
	struct strv argv = {0};
	strv_push(&argv, exe);
	strv_push(&argv, "-q");
	strv_push(&argv, "__hub");
	strv_push(&argv, dir);
	for (size_t i = 0; i < s->n_vms; i++)
		strv_push_take(&argv, xasprintf("%d", s->vms[i].link_port));
	_cleanup_free_ char *log = ib_path_join(dir, "vm/hub.log");
	int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	sigset_t none;
	sigemptyset(&none);
	pid_t pid = fork();
	if (pid == 0) {
		/* Only async-signal-safe calls from here to exec. */
		int null = open("/dev/null", O_RDWR);
		if (fd == 3)
			fcntl(3, F_SETFD, 0);
		else if (dup2(fd, 3) < 0)
			_exit(127);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(logfd >= 0 ? logfd : null, 2);
		}
		setsid();
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(exe, argv.v);
		_exit(127);
	}
	int e = errno;
	close(fd);
	if (logfd >= 0)
		close(logfd);
	strv_release(&argv);
	if (pid < 0)
		return ib_error_errno(&cli->ctx, IB_E_IO, e, "cannot start the cluster's hub");
	s->hub_pid = (int)pid;
	s->hub_port = ntohs(sa.sin_port);
	return 0;
}

/* dir/vm/NAME.vars.fd: the machine's own copy of OVMF's variable store. */
static int uefi_vars(struct cli *cli, const char *dir, const struct ib_vm *v)
{
	_cleanup_free_ char *path = vm_file(dir, v->name, "vars.fd");
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = ib_read_file(&cli->ctx, IB_OVMF_VARS, 64u << 20, &data, &len);
	if (r == 0)
		r = ib_write_file_atomic(&cli->ctx, path, data, len, 0600);
	return r;
}

static int start_vm(struct cli *cli, const struct ib_project *p, const char *dir,
                    struct ib_cluster_state *s, struct ib_vm *v)
{
	_cleanup_free_ char *image = xasprintf("%s/%s.qcow2", p->output_dir, v->role);
	_cleanup_free_ char *overlay = vm_file(dir, v->name, "qcow2");
	_cleanup_free_ char *seed = vm_file(dir, v->name, "seed.iso");
	const char *size = cli->disk_size ? cli->disk_size : UP_DISK_SIZE;
	const char *const mk[] = {"qemu-img", "create", "-q",  "-f",    "qcow2", "-F",
	                          "qcow2",    "-b",     image, overlay, size,    NULL};
	int r = ib_run(&cli->ctx, mk, NULL, 0, NULL);
	if (r == 0 && streq(s->firmware, "uefi"))
		r = uefi_vars(cli, dir, v);
	if (r < 0)
		return r;
	struct strv argv = {0};
	ib_vm_argv(v, dir, seed, s, &argv);
	r = ib_run(&cli->ctx, (const char *const *)argv.v, NULL, 0, NULL);
	strv_release(&argv);
	if (r < 0) {
		ib_error_prefix(&cli->ctx, "starting %s: ", v->name);
		return r;
	}
	v->pid = vm_pid(dir, v);
	if (v->pid <= 0)
		return ib_error(&cli->ctx, IB_E_TOOL, "QEMU for %s wrote no pid file", v->name);
	return ib_cluster_state_write(&cli->ctx, dir, s);
}

/* Wait until every machine's serial shows cloud-init finished, or timeout seconds. */
static int up_wait(struct cli *cli, const char *dir, const struct ib_cluster_state *s)
{
	int timeout = cli->timeout ? cli->timeout : UP_TIMEOUT;
	double start = ib_now(), last = start;
	int done[IB_VM_MAX] = {0};
	size_t n_done = 0;
	while (n_done < s->n_vms) {
		if (ib_interrupted)
			return -IB_E_INTERRUPTED;
		for (size_t i = 0; i < s->n_vms; i++) {
			const struct ib_vm *v = &s->vms[i];
			if (done[i])
				continue;
			if (cloud_init_done(dir, v->name)) {
				done[i] = 1;
				n_done++;
				if (cli->verbosity > 0)
					cli_message(cli,
					            "imgbuild: %s: cloud-init finished after %.0fs",
					            v->name, ib_now() - start);
			} else if (!ib_vm_alive(v->pid, dir)) {
				return ib_error(
				        &cli->ctx, IB_E_TOOL,
				        "%s stopped before cloud-init finished (see 'imgbuild "
				        "cluster logs %s')",
				        v->name, v->name);
			}
		}
		if (n_done == s->n_vms)
			break;
		double now = ib_now();
		if (now - start >= timeout) {
			struct strbuf sb = STRBUF_INIT;
			for (size_t i = 0; i < s->n_vms; i++)
				if (!done[i])
					sb_addf(&sb, "%s%s", sb.len ? ", " : "", s->vms[i].name);
			int r = ib_error(&cli->ctx, IB_E_TOOL,
			                 "cloud-init did not finish within %ds on: %s", timeout,
			                 sb_str(&sb));
			sb_release(&sb);
			return r;
		}
		if (cli->verbosity > 0 && now - last >= 30) {
			last = now;
			struct strbuf sb = STRBUF_INIT;
			for (size_t i = 0; i < s->n_vms; i++)
				if (!done[i])
					sb_addf(&sb, "%s%s", sb.len ? ", " : "", s->vms[i].name);
			cli_message(cli, "imgbuild: waiting for cloud-init on %s (%.0fs of %ds)",
			            sb_str(&sb), now - start, timeout);
			sb_release(&sb);
		}
		struct timespec ts = {1, 0};
		nanosleep(&ts, NULL);
	}
	return 0;
}

static void print_forwards(const struct ib_cluster_state *s)
{
	for (size_t i = 0; i < s->n_vms; i++) {
		const struct ib_vm *v = &s->vms[i];
		printf("  %-10s ssh 127.0.0.1:%d", v->name, v->ssh_port);
		for (size_t k = 0; k < v->n_fwd; k++)
			printf(", %d->%d", v->fwd[k].host_port, v->fwd[k].guest_port);
		printf("\n");
	}
}

/* A cluster already up in dir (some process alive) is an error; a dead one's leftovers go. */
static int check_not_up(struct cli *cli, const char *dir)
{
	_cleanup_free_ char *path = ib_path_join(dir, "state.json");
	if (!ib_exists(path))
		return 0;
	struct ib_cluster_state old;
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	if (ib_cluster_state_read(&quiet, dir, &old) == 0) {
		int alive = ib_vm_alive(old.hub_pid, dir);
		for (size_t i = 0; i < old.n_vms; i++)
			alive |= ib_vm_alive(vm_pid(dir, &old.vms[i]), dir);
		if (alive)
			return ib_error(&cli->ctx, IB_E_USAGE,
			                "a cluster is already up in '%s': see 'imgbuild cluster "
			                "status', or 'imgbuild cluster down' first",
			                dir);
		teardown(dir, &old);
	} else {
		unlink(path);
	}
	return 0;
}

static int cluster_up(struct cli *cli, int argc)
{
	if (argc != 2)
		return ib_error(&cli->ctx, IB_E_USAGE, "'cluster up' takes no arguments");
	struct ib_project *p = NULL;
	int r = cli_load_project(cli, &p);
	if (r < 0)
		return r;
	_cleanup_free_ char *dir = cluster_dir(cli, p);
	_cleanup_free_ char *plan_json = ib_path_join(dir, "plan.json");
	_cleanup_free_ char *pubkey = NULL, *keys = NULL;
	const char *firmware = cli->firmware ? cli->firmware : "bios";
	static struct ib_cluster_state s; /* large; the signal thread may read it */
	memset(&s, 0, sizeof(s));
	for (size_t i = 0; i < 2 && r == 0; i++) {
		static const char *const roles[] = {"master", "worker"};
		_cleanup_free_ char *img = xasprintf("%s/%s.qcow2", p->output_dir, roles[i]);
		if (!ib_exists(img))
			r = ib_error(&cli->ctx, IB_E_USAGE,
			             "no image '%s': build it first ('imgbuild all')", img);
	}
	if (r == 0 && !ib_have_program("qemu-system-x86_64"))
		r = ib_error(&cli->ctx, IB_E_USAGE,
		             "qemu-system-x86_64 is not installed (make deps)");
	if (r == 0 && streq(firmware, "uefi") &&
	    (access(IB_OVMF_CODE, R_OK) < 0 || access(IB_OVMF_VARS, R_OK) < 0))
		r = ib_error(&cli->ctx, IB_E_USAGE,
		             "--firmware uefi needs OVMF (%s): install the ovmf package",
		             IB_OVMF_CODE);
	if (r == 0)
		r = check_not_up(cli, dir);
	if (r == 0)
		r = ib_mkdir_p(&cli->ctx, dir, 0700);
	if (r == 0)
		r = ensure_key(cli, dir, &pubkey);
	if (r == 0 && !ib_exists(plan_json)) {
		if (!cli->master_address)
			cli->master_address = UP_MASTER_ADDRESS;
		if (!cli->network)
			cli->network = UP_NETWORK;
		r = plan_into(cli, p, dir);
	}
	_cleanup_free_ char *vmdir = ib_path_join(dir, "vm");
	if (r == 0)
		r = ib_mkdir_p(&cli->ctx, vmdir, 0700);
	if (r == 0)
		r = up_keys(cli, dir, pubkey, &keys);
	if (r == 0)
		r = up_hosts(cli, p, dir, keys, &s);
	if (r == 0 && ib_cluster_assign_ports(&s) < 0)
		r = ib_error(&cli->ctx, IB_E_IO, "no free loopback ports for the cluster");
	if (r < 0) {
		struct ib_ctx quiet;
		ib_ctx_init(&quiet);
		ib_rm_rf(&quiet, vmdir); /* the seeds rendered so far */
		ib_project_free(p);
		return r;
	}
	snprintf(s.accel, sizeof(s.accel), "%s", ib_qemu_accel(&cli->ctx));
	snprintf(s.firmware, sizeof(s.firmware), "%s", firmware);
	if (cli->verbosity > 0)
		cli_message(cli, "imgbuild: starting %zu machine%s (%s, %s) in %s", s.n_vms,
		            s.n_vms == 1 ? "" : "s", s.accel, s.firmware, dir);

	pthread_mutex_lock(&running.lock);
	running.dir = dir;
	running.state = &s;
	cli_interrupt_hook = up_interrupted;
	r = start_hub(cli, dir, &s);
	if (r == 0)
		r = ib_cluster_state_write(&cli->ctx, dir, &s);
	pthread_mutex_unlock(&running.lock);
	/* One at a time under the lock, so that an interrupt sees every started machine. */
	for (size_t i = 0; i < s.n_vms && r == 0; i++) {
		pthread_mutex_lock(&running.lock);
		if (ib_interrupted || !running.state)
			r = -IB_E_INTERRUPTED;
		else
			r = start_vm(cli, p, dir, &s, &s.vms[i]);
		pthread_mutex_unlock(&running.lock);
	}
	if (r == 0)
		r = up_wait(cli, dir, &s);
	pthread_mutex_lock(&running.lock);
	/* --keep is for looking at a failure; an interrupt always stops everything. */
	if (r < 0 && running.state && (!cli->keep || ib_interrupted)) {
		teardown(dir, &s);
		if (!ib_interrupted && cli->verbosity > 0)
			cli_message(cli,
			            "imgbuild: stopped the cluster (--keep leaves it running)");
	} else if (r < 0 && running.state && cli->verbosity > 0) {
		cli_message(cli, "imgbuild: the cluster is left running (--keep): 'imgbuild "
		                 "cluster down' stops it");
	}
	running.state = NULL;
	cli_interrupt_hook = NULL;
	pthread_mutex_unlock(&running.lock);
	if (r == 0 && cli->verbosity > 0) {
		printf("cluster up in %s: %zu machine%s, cloud-init finished (%s)\n", dir, s.n_vms,
		       s.n_vms == 1 ? "" : "s", s.accel);
		print_forwards(&s);
	}
	ib_project_free(p);
	return r;
}

/* ---- status, ssh, logs, down ---- */

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
 * Under the test stand-ins kubectl answers from a fixture (tests/k8s/mkpayloads.py). */
static char *nodes_json(const char *dir, const struct ib_cluster_state *s)
{
	for (size_t i = 0; i < s->n_vms; i++)
		if (streq(s->vms[i].role, "master") && ib_vm_alive(s->vms[i].pid, dir) &&
		    cloud_init_done(dir, s->vms[i].name))
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

static int cluster_status(struct cli *cli, int argc)
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
		int done = up && cloud_init_done(dir, v->name);
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
		print_forwards(&s);
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

static int cluster_ssh(struct cli *cli, int argc, char **argv)
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

static int cluster_logs(struct cli *cli, int argc, char **argv)
{
	_cleanup_free_ char *dir = NULL;
	struct ib_cluster_state s;
	const struct ib_vm *v = NULL;
	int r = find_vm(cli, "logs", argc, argv, &dir, &s, &v);
	if (r < 0)
		return r;
	if (argc > 3)
		return ib_error(&cli->ctx, IB_E_USAGE, "'cluster logs' takes one host name");
	_cleanup_free_ char *path = vm_file(dir, v->name, "serial");
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	r = ib_read_file(&cli->ctx, path, SERIAL_MAX, &text, &len);
	if (r == 0 && fwrite(text, 1, len, stdout) != len)
		r = ib_error_errno(&cli->ctx, IB_E_IO, errno, "cannot write the log");
	return r;
}

static int cluster_down(struct cli *cli, int argc)
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
		teardown(dir, &s); /* leftovers of an `up` killed outright */
		if (cli->verbosity > 0)
			printf("no cluster is up in %s\n", dir);
		return 0;
	}
	r = ib_cluster_state_read(&cli->ctx, dir, &s);
	if (r < 0)
		return r;
	teardown(dir, &s);
	if (cli->verbosity > 0)
		printf("cluster in %s stopped: %zu machine%s, overlays removed (the plan stays)\n",
		       dir, s.n_vms, s.n_vms == 1 ? "" : "s");
	return 0;
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
