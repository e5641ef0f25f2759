/* cmd_cluster_up.c: `imgbuild cluster up`: the planned cluster booted under QEMU, its
 * private network (the hub), its seeds for the run; nothing left when it fails or is
 * interrupted. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include "cluster_cli.h"
#include "layer/layer.h"
#include "seed/seed.h"
#include "util/fs.h"
#include "util/proc.h"
#include "util/strbuf.h"

/* What `cluster up` plans with when the directory has no plan. */
#define UP_MASTER_ADDRESS "10.77.0.10"
#define UP_NETWORK        "10.77.0.0/24"
#define UP_DISK_SIZE      "8G"
#define UP_TIMEOUT        900

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
		cluster_teardown(running.dir, running.state);
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
	char *path = cluster_vm_file(dir, "authorized_keys", "pub");
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
	_cleanup_free_ char *path = cluster_vm_file(dir, h->name, "seed.iso");
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
		r = cluster_render_hosts(cli, p, &plan, keys);
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
	_cleanup_free_ char *path = cluster_vm_file(dir, v->name, "vars.fd");
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
	_cleanup_free_ char *overlay = cluster_vm_file(dir, v->name, "qcow2");
	_cleanup_free_ char *seed = cluster_vm_file(dir, v->name, "seed.iso");
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
	v->pid = cluster_vm_pid(dir, v);
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
			if (cluster_cloud_init_done(dir, v->name)) {
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
			alive |= ib_vm_alive(cluster_vm_pid(dir, &old.vms[i]), dir);
		if (alive)
			return ib_error(&cli->ctx, IB_E_USAGE,
			                "a cluster is already up in '%s': see 'imgbuild cluster "
			                "status', or 'imgbuild cluster down' first",
			                dir);
		cluster_teardown(dir, &old);
	} else {
		unlink(path);
	}
	return 0;
}

int cluster_up(struct cli *cli, int argc)
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
		r = cluster_plan_into(cli, p, dir);
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
		cluster_teardown(dir, &s);
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
		cluster_print_forwards(&s);
	}
	ib_project_free(p);
	return r;
}
