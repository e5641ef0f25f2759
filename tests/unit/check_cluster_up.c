/* check_cluster_up.c: what `imgbuild cluster up` does without booting anything: ports,
 * state.json, QEMU's command line (BIOS and UEFI), the tooling host's address, the hub
 * relaying datagrams between three UDP sockets, what `cluster status` makes of its checks'
 * answers; and `cluster up` itself run with a stand-in QEMU, failing (--timeout) or
 * interrupted (SIGINT, SIGTERM): nothing left running or on disk. */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <time.h>

#include "cluster/cluster.h"
#include "testutil.h"
#include "util/strbuf.h"

/* A socket bound to 127.0.0.1 (port 0: any); its port in *port. */
static int bound(int type, int port, int *ret_port)
{
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	socklen_t len = sizeof(sa);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	if (type == SOCK_STREAM)
		ck_assert_int_eq(listen(fd, 1), 0);
	*ret_port = ntohs(sa.sin_port);
	return fd;
}

/* Does s match the extended regular expression re? */
static int matches(const char *s, const char *re)
{
	regex_t rx;
	ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	int ok = regexec(&rx, s, 0, NULL, 0) == 0;
	regfree(&rx);
	return ok;
}

START_TEST(test_port_pick)
{
	int port;
	int fd = bound(SOCK_STREAM, 0, &port);
	ck_assert_int_ge(fd, 0);
	ck_assert(!ib_port_free(IB_TCP, port));
	int got = ib_port_pick(IB_TCP, port, NULL, 0);
	ck_assert_int_gt(got, port);
	ck_assert(ib_port_free(IB_TCP, got));
	/* A port handed out already is skipped though it is free. */
	int taken[] = {got};
	int next = ib_port_pick(IB_TCP, got, taken, 1);
	ck_assert_int_gt(next, got);
	/* 0: the kernel's choice, never one taken. */
	int any = ib_port_pick(IB_UDP, 0, taken, 1);
	ck_assert_int_gt(any, 0);
	ck_assert_int_ne(any, got);
	ck_assert(!ib_port_free(IB_TCP, 0));
	ck_assert(!ib_port_free(IB_TCP, 70000));
	close(fd);
	ck_assert(ib_port_free(IB_TCP, port));
}
END_TEST

static void add_vm(struct ib_cluster_state *s, const char *name, const char *role)
{
	struct ib_vm *v = &s->vms[s->n_vms++];
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	snprintf(v->role, sizeof(v->role), "%s", role);
	snprintf(v->address, sizeof(v->address), "10.77.0.%zu", 9 + s->n_vms);
	snprintf(v->mac, sizeof(v->mac), "52:54:0a:4d:00:%02zx", 9 + s->n_vms);
	snprintf(v->uplink_mac, sizeof(v->uplink_mac), "52:55:0a:4d:00:%02zx", 9 + s->n_vms);
	v->memory = streq(role, "master") ? 2048 : 1024;
	v->cpus = 1;
}

START_TEST(test_assign_ports)
{
	static struct ib_cluster_state s;
	memset(&s, 0, sizeof(s));
	add_vm(&s, "master", "master");
	add_vm(&s, "worker-1", "worker");
	add_vm(&s, "tooling", "tooling");
	/* 6443 busy here (ours, or someone's): the master's API server goes to a later port. */
	int p6443 = 0;
	int fd = bound(SOCK_STREAM, 6443, &p6443);
	ck_assert_int_eq(ib_cluster_assign_ports(&s), 0);
	ck_assert_uint_eq(s.vms[0].n_fwd, 4);
	ck_assert_uint_eq(s.vms[1].n_fwd, 0);
	ck_assert_uint_eq(s.vms[2].n_fwd, 4);
	static const int master_guest[] = {6443, 8500, 8501, 20001};
	static const int tooling_guest[] = {3000, 8084, 8181, 8282};
	for (size_t k = 0; k < 4; k++) {
		ck_assert_int_eq(s.vms[0].fwd[k].guest_port, master_guest[k]);
		ck_assert_int_eq(s.vms[2].fwd[k].guest_port, tooling_guest[k]);
		ck_assert_int_ge(s.vms[0].fwd[k].host_port, master_guest[k]);
		ck_assert_int_ge(s.vms[2].fwd[k].host_port, tooling_guest[k]);
	}
	ck_assert_int_gt(s.vms[0].fwd[0].host_port, 6443);
	/* Every port distinct. */
	int all[64];
	size_t n = 0;
	for (size_t i = 0; i < s.n_vms; i++) {
		ck_assert_int_gt(s.vms[i].ssh_port, 0);
		ck_assert_int_gt(s.vms[i].link_port, 0);
		all[n++] = s.vms[i].ssh_port;
		for (size_t k = 0; k < s.vms[i].n_fwd; k++)
			all[n++] = s.vms[i].fwd[k].host_port;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t k = i + 1; k < n; k++)
			ck_assert_int_ne(all[i], all[k]);
	ck_assert_int_ne(s.vms[0].link_port, s.vms[1].link_port);
	if (fd >= 0)
		close(fd);
}
END_TEST

START_TEST(test_state_round_trip)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	static struct ib_cluster_state s, back;
	memset(&s, 0, sizeof(s));
	memset(&back, 0, sizeof(back));
	snprintf(s.accel, sizeof(s.accel), "tcg");
	snprintf(s.firmware, sizeof(s.firmware), "uefi");
	s.hub_pid = 4242;
	s.hub_port = 50001;
	add_vm(&s, "master", "master");
	add_vm(&s, "worker-1", "worker");
	ck_assert_int_eq(ib_cluster_assign_ports(&s), 0);
	s.vms[0].pid = 100;
	s.vms[1].pid = 101;
	ck_assert_int_eq(ib_cluster_state_write(&ctx, ".", &s), 0);
	ck_assert_int_eq(ib_cluster_state_read(&ctx, ".", &back), 0);
	ck_assert_mem_eq(&s, &back, sizeof(s));
	struct stat st;
	ck_assert_int_eq(stat("state.json", &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_ptr_eq(ib_cluster_state_find(&back, "worker-1"), &back.vms[1]);
	ck_assert_ptr_null(ib_cluster_state_find(&back, "worker-2"));

	/* Bad or missing files are errors naming what to do. */
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_cluster_state_read(&ctx, "nowhere", &back), -IB_E_USAGE);
	ck_assert_ptr_nonnull(strstr(ctx.err, "cluster up"));
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_cluster_state_parse(&ctx, "x", "{\"accel\":\"tcg\"}", &back),
	                 -IB_E_SPEC);
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_cluster_state_parse(&ctx, "x",
	                                        "{\"accel\":\"tcg\",\"hub_pid\":1,\"hub_port\":2,"
	                                        "\"hosts\":[{\"name\":\"m\"}]}",
	                                        &back),
	                 -IB_E_SPEC);
	ck_assert_ptr_nonnull(strstr(ctx.err, "host 1"));
}
END_TEST

START_TEST(test_qemu_args)
{
	static struct ib_cluster_state s;
	memset(&s, 0, sizeof(s));
	add_vm(&s, "master", "master");
	struct ib_vm *v = &s.vms[0];
	v->ssh_port = 2222;
	v->link_port = 40001;
	v->fwd[0] = (struct ib_fwd){6444, 6443};
	v->fwd[1] = (struct ib_fwd){8500, 8500};
	v->n_fwd = 2;
	char *nd = ib_vm_netdev_user(v);
	ck_assert_str_eq(nd, "user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22,"
	                     "hostfwd=tcp:127.0.0.1:6444-:6443,hostfwd=tcp:127.0.0.1:8500-:8500");
	free(nd);
	struct strv a = {0};
	snprintf(s.accel, sizeof(s.accel), "tcg");
	snprintf(s.firmware, sizeof(s.firmware), "bios");
	s.hub_port = 50000;
	ib_vm_argv(v, "/c", "/c/vm/master.seed.iso", &s, &a);
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < a.n; i++)
		sb_addf(&sb, "%s%s", i ? " " : "", a.v[i]);
	const char *want[] = {
	        "qemu-system-x86_64 ",
	        " -accel tcg -m 2048 -smp 1 ",
	        " -daemonize -pidfile /c/vm/master.pid ",
	        " -serial file:/c/vm/master.serial ",
	        " -monitor unix:/c/vm/master.monitor,server=on,wait=off ",
	        " -drive file=/c/vm/master.qcow2,if=virtio,format=qcow2 ",
	        " -drive file=/c/vm/master.seed.iso,if=virtio,format=raw,readonly=on ",
	        " -device virtio-net-pci,netdev=n0,mac=52:55:0a:4d:00:0a ",
	        " -netdev socket,id=n1,udp=127.0.0.1:50000,localaddr=127.0.0.1:40001 ",
	        " -device virtio-net-pci,netdev=n1,mac=52:54:0a:4d:00:0a",
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		ck_assert_msg(strstr(sb_str(&sb), want[i]), "no '%s' in %s", want[i], sb_str(&sb));
	ck_assert_ptr_null(a.v[a.n]);
	ck_assert_ptr_null(strstr(sb_str(&sb), "pflash"));
	sb_release(&sb);
	strv_release(&a);

	/* UEFI: OVMF's code read-only before the disk, the machine's own variable store. */
	snprintf(s.firmware, sizeof(s.firmware), "uefi");
	v->memory = 3072;
	v->cpus = 2;
	ib_vm_argv(v, "/c", "/c/vm/master.seed.iso", &s, &a);
	for (size_t i = 0; i < a.n; i++)
		sb_addf(&sb, "%s%s", i ? " " : "", a.v[i]);
	const char *uefi = " -m 3072 -smp 2 .* -drive "
	                   "if=pflash,format=raw,unit=0,readonly=on,file=" IB_OVMF_CODE
	                   " -drive if=pflash,format=raw,unit=1,file=/c/vm/master.vars.fd"
	                   " -drive file=/c/vm/master.qcow2,";
	ck_assert_msg(matches(sb_str(&sb), uefi), "no '%s' in %s", uefi, sb_str(&sb));
	sb_release(&sb);
	strv_release(&a);
	/* Not a QEMU of this directory: this very process. */
	ck_assert(!ib_vm_alive(getpid(), "/c"));
	ck_assert(!ib_vm_alive(0, "/c"));
}
END_TEST

START_TEST(test_extra_host)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_cluster_plan p = {.lock_fd = -1, .workers = 2, .has_network = 1};
	ck_assert_int_eq(ib_cidr_parse("10.77.0.0/24", &p.network), 0);
	struct ib_cluster_host h;
	ck_assert_int_eq(ib_cluster_extra_host(&ctx, &p, "tooling", 1, &h), 0);
	ck_assert_str_eq(h.address, "10.77.0.13");
	ck_assert_str_eq(h.mac, "52:54:0a:4d:00:0d");
	ck_assert_str_eq(h.uplink_mac, "52:55:0a:4d:00:0d");
	ck_assert_str_eq(h.name, "tooling");
	/* No room at the end of a small network. */
	ck_assert_int_eq(ib_cidr_parse("10.77.0.0/28", &p.network), 0);
	p.workers = 4;
	ck_assert_int_eq(ib_cluster_extra_host(&ctx, &p, "tooling", 1, &h), -IB_E_USAGE);
	p.has_network = 0;
	ck_assert_int_eq(ib_cluster_extra_host(&ctx, &p, "tooling", 1, &h), -IB_E_USAGE);
}
END_TEST

START_TEST(test_accel_override)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	setenv("IMGBUILD_QEMU_ACCEL", "tcg", 1);
	ck_assert_str_eq(ib_qemu_accel(&ctx), "tcg");
	setenv("IMGBUILD_QEMU_ACCEL", "kvm", 1);
	ck_assert_str_eq(ib_qemu_accel(&ctx), "kvm");
	unsetenv("IMGBUILD_QEMU_ACCEL");
}
END_TEST

/* ---- the hub ---- */

struct hub_thread {
	int fd;
	int ports[4];
	size_t n;
	volatile int stop;
	int r;
};

static void *hub_main(void *arg)
{
	struct hub_thread *h = arg;
	h->r = ib_hub_run(h->fd, h->ports, h->n, &h->stop);
	return NULL;
}

static void send_to(int fd, int port, const char *msg)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sa, sizeof(sa)),
	                 (ssize_t)strlen(msg));
}

/* The next datagram on fd within 2 s, or "" (none). */
static const char *recv_one(int fd, char *buf, size_t size)
{
	struct timeval tv = {2, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssize_t n = recv(fd, buf, size - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* Nothing waiting on fd (after a moment for the hub to have relayed). */
static int quiet(int fd)
{
	struct timespec ts = {0, 200 * 1000 * 1000};
	nanosleep(&ts, NULL);
	char c;
	return recv(fd, &c, 1, MSG_DONTWAIT) < 0;
}

START_TEST(test_hub)
{
	int hub_port, pa, pb, pc;
	struct hub_thread h = {0};
	h.fd = bound(SOCK_DGRAM, 0, &hub_port);
	int a = bound(SOCK_DGRAM, 0, &pa), b = bound(SOCK_DGRAM, 0, &pb),
	    c = bound(SOCK_DGRAM, 0, &pc);
	/* c is known from the start (its VM may not have sent anything yet); a and b are
	 * learnt from what they send. */
	h.ports[0] = pc;
	h.n = 1;
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, hub_main, &h), 0);
	char buf[256];

	send_to(a, hub_port, "a1");
	ck_assert_str_eq(recv_one(c, buf, sizeof(buf)), "a1");
	ck_assert(quiet(a) && quiet(b));

	send_to(b, hub_port, "b1");
	ck_assert_str_eq(recv_one(a, buf, sizeof(buf)), "b1");
	ck_assert_str_eq(recv_one(c, buf, sizeof(buf)), "b1");
	ck_assert(quiet(b));

	send_to(c, hub_port, "c1");
	ck_assert_str_eq(recv_one(a, buf, sizeof(buf)), "c1");
	ck_assert_str_eq(recv_one(b, buf, sizeof(buf)), "c1");
	ck_assert(quiet(c));

	/* A frame-sized datagram passes whole. */
	char big[1515];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	send_to(a, hub_port, big);
	ck_assert_uint_eq(strlen(recv_one(b, buf, sizeof(buf))), 255);
	ck_assert(quiet(a));

	h.stop = 1;
	pthread_join(t, NULL);
	ck_assert_int_eq(h.r, 0);
	close(a);
	close(b);
	close(c);
	close(h.fd);
}
END_TEST

/* `cluster status`'s reading of `kubectl get nodes -o json` (as kubectl 1.30 prints it,
 * trimmed) and of the tooling host's answer. */
START_TEST(test_status_checks)
{
	static const char nodes[] =
	        "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": ["
	        "{\"kind\": \"Node\", \"metadata\": {\"name\": \"master\"}, \"status\": "
	        "{\"conditions\": [{\"type\": \"MemoryPressure\", \"status\": \"False\"}, "
	        "{\"type\": \"Ready\", \"status\": \"True\", \"reason\": \"KubeletReady\"}]}},"
	        "{\"kind\": \"Node\", \"metadata\": {\"name\": \"worker-1\"}, \"status\": "
	        "{\"conditions\": [{\"type\": \"Ready\", \"status\": \"False\"}]}},"
	        "{\"kind\": \"Node\", \"metadata\": {\"name\": \"worker-2\"}, \"status\": {}}"
	        "], \"metadata\": {\"resourceVersion\": \"\"}}";
	ck_assert_str_eq(ib_node_state(nodes, "master"), "Ready");
	ck_assert_str_eq(ib_node_state(nodes, "worker-1"), "NotReady");
	ck_assert_str_eq(ib_node_state(nodes, "worker-2"), "NotReady");
	ck_assert_str_eq(ib_node_state(nodes, "worker-3"), "not joined");
	ck_assert_str_eq(ib_node_state("{\"kind\":\"NodeList\",\"items\":[]}", "master"),
	                 "not joined");
	/* No control plane: nothing, kubectl's error text, another kind of list. */
	ck_assert_ptr_null(ib_node_state(NULL, "master"));
	ck_assert_ptr_null(ib_node_state("", "master"));
	ck_assert_ptr_null(ib_node_state("The connection to the server was refused", "master"));
	ck_assert_ptr_null(ib_node_state("{\"kind\":\"PodList\",\"items\":[]}", "master"));

	char *t = ib_tooling_state("active\nrunning\nrunning\nexited\n");
	ck_assert_str_eq(t, "active, 2/3 containers running");
	free(t);
	t = ib_tooling_state("activating\n");
	ck_assert_str_eq(t, "activating, 0/0 containers running");
	free(t);
	t = ib_tooling_state("");
	ck_assert_str_eq(t, "unknown");
	free(t);
}
END_TEST

/* ---- `cluster up` that fails or is interrupted, with a stand-in QEMU ---- */

/* The stand-in for qemu-system-x86_64: no machine boots (nothing of cloud-init ever shows
 * on the serial); a process stays up as a daemonized QEMU would, named by its pid file in
 * DIR/vm/ as QEMU's command line is. It logs its arguments, notes every -drive file that is
 * missing, and keeps a copy of the seed for the test to read. */
static const char fake_qemu[] =
        "#!/bin/sh\n"
        "log=$FAKE_QEMU_LOG\n"
        "echo \"$*\" >>\"$log/args\"\n"
        "prev= pidfile= name=\n"
        "for a; do\n"
        "  case $prev in\n"
        "  -pidfile) pidfile=$a ;;\n"
        "  -name) name=${a#imgbuild-} ;;\n"
        "  -drive) f=${a#*file=}; f=${f%%,*}; [ -e \"$f\" ] || echo \"missing $f\" "
        ">>\"$log/missing\"\n"
        "    case $a in *seed.iso*) cp \"$f\" \"$log/$name.seed.iso\" ;; esac ;;\n"
        "  esac\n"
        "  prev=$a\n"
        "done\n"
        "sh -c 'echo $$ >\"$1\"; while :; do sleep 1; done' fake-qemu-guest \"$pidfile\" "
        "</dev/null >/dev/null 2>&1 &\n"
        "while [ ! -s \"$pidfile\" ]; do sleep 0.1; done\n";

static char up_cluster[4200];

/* A project with master, worker and tooling images (empty qcow2s: nothing boots them) and the
 * repository's user-data templates, the stand-in QEMU first on PATH. */
static void up_project(void)
{
	tu_write("imgbuild.yaml",
	         "project: quode-sre\n"
	         "debian:\n  suite: bookworm\n  mirror: http://deb.debian.org/debian\n"
	         "  architecture: amd64\n"
	         "output:\n  dir: out\n");
	tu_write("images/base.yaml", "description: base\n");
	tu_write("images/master.yaml", "description: master\nextends: base\n");
	tu_write("images/worker.yaml", "description: worker\nextends: base\n");
	tu_write("images/tooling.yaml", "description: tooling\nextends: base\n");
	tu_write("bin/qemu-system-x86_64", fake_qemu);
	ck_assert_int_eq(chmod("bin/qemu-system-x86_64", 0755), 0);
	ck_assert_int_eq(ib_mkdir_p(&(struct ib_ctx){0}, "log", 0755), 0);
	tu_write("extra.pub",
	         "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheUnitTest extra@test\n");
	_cleanup_free_ char *cp = xasprintf("cp -r '%s/cloud-init' . && mkdir -p out && "
	                                    "qemu-img create -q -f qcow2 out/master.qcow2 64M && "
	                                    "qemu-img create -q -f qcow2 out/worker.qcow2 64M && "
	                                    "qemu-img create -q -f qcow2 out/tooling.qcow2 64M",
	                                    tu_oldcwd);
	free(tu_sh(cp));
	snprintf(up_cluster, sizeof(up_cluster), "%s/out/cluster", tu_dir);
	_cleanup_free_ char *path = xasprintf("%s/bin:%s", tu_dir, getenv("PATH"));
	setenv("PATH", path, 1);
	_cleanup_free_ char *log = xasprintf("%s/log", tu_dir);
	setenv("FAKE_QEMU_LOG", log, 1);
	setenv("IMGBUILD_QEMU_ACCEL", "tcg", 1);
}

static const char *imgbuild_bin(void)
{
	static char path[4200];
	const char *env = getenv("IMGBUILD");
	snprintf(path, sizeof(path), "%s", env && *env ? env : "");
	if (!*path)
		snprintf(path, sizeof(path), "%s/build/imgbuild", tu_oldcwd);
	ck_assert_msg(access(path, X_OK) == 0, "no imgbuild binary at %s (set IMGBUILD)", path);
	return path;
}

/* `imgbuild cluster up` with these extra arguments, its stderr in up.err; its pid. */
static pid_t start_up(const char *const *extra)
{
	const char *argv[32] = {imgbuild_bin(), "-C", tu_dir, "cluster", "up", "--workers", "1"};
	size_t n = 7;
	for (size_t i = 0; extra[i]; i++)
		argv[n++] = extra[i];
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open("up.err", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	return pid;
}

/* Check's own knob for slow runs (valgrind sets 5) stretches this file's waits too. */
static int slow(void)
{
	const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
	int f = m ? atoi(m) : 1;
	return f > 1 ? f : 1;
}

/* Its exit status within 60 s, times slow() (-1: still running, then killed). */
static int wait_exit(pid_t pid)
{
	int st = 0;
	for (int i = 0; i < 600 * slow(); i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* The processes whose command line names the cluster directory (QEMU, the hub), one
 * "pid: command line" each. Caller frees. */
static char *left_running(int kill_them)
{
	struct strbuf sb = STRBUF_INIT;
	DIR *d = opendir("/proc");
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		_cleanup_free_ char *path = xasprintf("/proc/%s/cmdline", de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		char buf[8192];
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		for (ssize_t i = 0; i < n; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[n] = '\0';
		if (strstr(buf, up_cluster) && atoi(de->d_name) != getpid()) {
			sb_addf(&sb, "%s: %s\n", de->d_name, buf);
			if (kill_them)
				kill(atoi(de->d_name), SIGKILL); /* a failing test leaves nothing */
		}
	}
	closedir(d);
	return sb_take(&sb);
}

/* Nothing of a run is left: no process, no overlay or seed (vm/), no state; the plan stays
 * and `cluster status` says no cluster is up. */
static void check_nothing_left(const char *how)
{
	_cleanup_free_ char *procs = left_running(1);
	ck_assert_msg(!*procs, "%s: still running: %s", how, procs);
	_cleanup_free_ char *vm = xasprintf("%s/vm", up_cluster);
	_cleanup_free_ char *state = xasprintf("%s/state.json", up_cluster);
	_cleanup_free_ char *plan = xasprintf("%s/plan.json", up_cluster);
	ck_assert_msg(!ib_exists(vm), "%s: %s is left", how, vm);
	ck_assert_msg(!ib_exists(state), "%s: %s is left", how, state);
	ck_assert_msg(ib_exists(plan), "%s: the plan is gone", how);
	_cleanup_free_ char *cmd =
	        xasprintf("'%s' cluster status --dir '%s' 2>&1; echo \"exit $?\"", imgbuild_bin(),
	                  up_cluster);
	_cleanup_free_ char *out = tu_sh(cmd);
	ck_assert_msg(strstr(out, "no cluster is up in") && strstr(out, "exit 2"),
	              "%s: cluster status says: %s", how, out);
}

static char *slurp(const char *path)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	char *text = NULL;
	size_t len = 0;
	ck_assert_msg(ib_read_file(&ctx, path, 64u << 20, &text, &len) == 0, "%s", ctx.err);
	/* Seeds hold NULs: make them searchable as text. */
	for (size_t i = 0; i < len; i++)
		if (!text[i])
			text[i] = '\n';
	return text;
}

START_TEST(test_up_timeout)
{
	up_project();
	const char *extra[] = {"-vv",      "--timeout",   "3",          "--ssh-key", "extra.pub",
	                       "--memory", "worker=1536", "--firmware", "uefi",      NULL};
	if (access(IB_OVMF_CODE, R_OK) < 0)
		extra[7] = NULL; /* no OVMF here: BIOS only (make deps installs it) */
	int st = wait_exit(start_up(extra));
	_cleanup_free_ char *err = slurp("up.err");
	ck_assert_msg(st == 1, "cluster up exited %d: %s", st, err);
	/* Exit 1 is also what a sanitizer report gives. */
	ck_assert_msg(!strstr(err, "Sanitizer") && !strstr(err, "runtime error:"), "%s", err);
	ck_assert_msg(strstr(err,
	                     "imgbuild: error: cloud-init did not finish within 3s on: master, "
	                     "worker-1, tooling"),
	              "%s", err);
	check_nothing_left("after a failed up (--timeout 3)");

	/* -vv names files and commands, never the secrets of the plan it made. */
	_cleanup_free_ char *plan_path = xasprintf("%s/plan.json", up_cluster);
	_cleanup_free_ char *plan = slurp(plan_path);
	const char *fields[] = {"\"token\": \"", "\"certificate_key\": \""};
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		const char *v = strstr(plan, fields[i]);
		if (!v) { /* compact JSON */
			_cleanup_free_ char *f = xstrdup(fields[i]);
			memmove(f + strlen(f) - 2, f + strlen(f) - 1, 2);
			v = strstr(plan, f);
			ck_assert_msg(v, "no %s in plan.json: %s", fields[i], plan);
			v += strlen(f);
		} else {
			v += strlen(fields[i]);
		}
		_cleanup_free_ char *secret = strndup(v, strcspn(v, "\""));
		ck_assert_uint_ge(strlen(secret), 16);
		ck_assert_msg(!strstr(err, secret), "-vv logged the plan's %s", fields[i]);
	}
	ck_assert_msg(strstr(err, "imgbuild: running: qemu-system-x86_64 "), "-vv: %s", err);
	ck_assert_msg(!strstr(err, "PRIVATE KEY"), "-vv logged a private key: %s", err);

	/* What QEMU was given: memory per role (the plan's default for the master, --memory
	 * for the worker), the firmware, every drive present when it started. */
	_cleanup_free_ char *args = slurp("log/args");
	ck_assert_msg(matches(args, "-name imgbuild-master .*-m 2048 -smp 1 "), "%s", args);
	ck_assert_msg(matches(args, "-name imgbuild-worker-1 .*-m 1536 -smp 1 "), "%s", args);
	ck_assert_msg(matches(args, "-name imgbuild-tooling .*-m 3072 -smp 1 "), "%s", args);
	/* The tooling host's forwards: Grafana, Jenkins, the two Adminers. */
	ck_assert_msg(matches(args,
	                      "-name imgbuild-tooling .*hostfwd=tcp:127.0.0.1:[0-9]+-:3000,"
	                      "hostfwd=tcp:127.0.0.1:[0-9]+-:8084,hostfwd=tcp:127.0.0.1:[0-9]+-:"
	                      "8181,hostfwd=tcp:127.0.0.1:[0-9]+-:8282 "),
	              "%s", args);
	if (extra[7])
		ck_assert_msg(matches(args, "-name imgbuild-worker-1 .*if=pflash,format=raw,unit=1,"
		                            "file=[^ ]*/out/cluster/vm/worker-1.vars.fd "),
		              "%s", args);
	ck_assert_msg(!ib_exists("log/missing"), "drives missing when QEMU started");

	/* Each seed authorizes the cluster's own key and the one of --ssh-key. */
	_cleanup_free_ char *own = xasprintf("%s/id_ed25519.pub", up_cluster);
	_cleanup_free_ char *own_key = slurp(own);
	own_key[strcspn(own_key, " ")] = '\0';
	char *blob = own_key + strlen(own_key) + 1;
	blob[strcspn(blob, " ")] = '\0';
	for (size_t i = 0; i < 2; i++) {
		_cleanup_free_ char *seed =
		        slurp(i ? "log/worker-1.seed.iso" : "log/master.seed.iso");
		ck_assert_msg(strstr(seed, blob), "seed %zu lacks the cluster's key", i);
		ck_assert_msg(strstr(seed, "AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheUnitTest"),
		              "seed %zu lacks the --ssh-key key", i);
		ck_assert_msg(strstr(seed, "K8S_TOOLING_ADDRESS") || strstr(seed, "cluster_env") ||
		                      strstr(seed, "write_files"),
		              "seed %zu holds no user-data", i);
	}
	/* The tooling host's seed names the nodes for the stack (TOOLING_NODES) and its address
	 * on the cluster network, the one after the worker's. */
	_cleanup_free_ char *tseed = slurp("log/tooling.seed.iso");
	ck_assert_msg(strstr(tseed, "TOOLING_NODES=master=10.77.0.10 worker-1=10.77.0.11\n"), "%s",
	              tseed);
	ck_assert(strstr(tseed, "TOOLING_PRIVATE_ADDR=10.77.0.12\n"));
	ck_assert(strstr(tseed, "addresses: [10.77.0.12/24]"));
	ck_assert(strstr(tseed, blob));

	/* The plan's own seeds are left as `cluster plan` made them: no cluster key. */
	_cleanup_free_ char *plan_seed = xasprintf("%s/master.user-data", up_cluster);
	_cleanup_free_ char *plan_ud = slurp(plan_seed);
	ck_assert_ptr_null(strstr(plan_ud, blob));
}
END_TEST

/* Interrupted while the machines boot: once both QEMUs run, sig. */
static void up_interrupted_by(int sig)
{
	up_project();
	const char *extra[] = {"--timeout", "600", NULL};
	pid_t pid = start_up(extra);
	_cleanup_free_ char *last = xasprintf("%s/vm/tooling.pid", up_cluster);
	_cleanup_free_ char *state = xasprintf("%s/state.json", up_cluster);
	for (int i = 0; i < 600 * slow() && !ib_exists(last); i++) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	ck_assert_msg(ib_exists(last), "the machines never started");
	/* A moment for `up` to record the last one and wait, as it would during a boot. */
	struct timespec ts = {1, 0};
	nanosleep(&ts, NULL);
	_cleanup_free_ char *procs = left_running(0);
	ck_assert_msg(strstr(procs, "fake-qemu-guest") && strstr(procs, "__hub"),
	              "before the signal: %s", procs);
	ck_assert(ib_exists(state));
	kill(pid, sig);
	int st = wait_exit(pid);
	_cleanup_free_ char *err = slurp("up.err");
	ck_assert_msg(st == 1, "cluster up exited %d after signal %d: %s", st, sig, err);
	ck_assert_msg(!strstr(err, "Sanitizer") && !strstr(err, "runtime error:"), "%s", err);
	ck_assert_msg(strstr(err, "interrupted"), "%s", err);
	_cleanup_free_ char *how = xasprintf("after signal %d during up", sig);
	check_nothing_left(how);
}

START_TEST(test_up_sigint)
{
	up_interrupted_by(SIGINT);
}
END_TEST

START_TEST(test_up_sigterm)
{
	up_interrupted_by(SIGTERM);
}
END_TEST

static Suite *cluster_up_suite(void)
{
	Suite *s = suite_create("cluster_up");
	TU_CASE(s, "port_pick", test_port_pick);
	TU_CASE(s, "assign_ports", test_assign_ports);
	TU_CASE(s, "state_round_trip", test_state_round_trip);
	TU_CASE(s, "qemu_args", test_qemu_args);
	TU_CASE(s, "extra_host", test_extra_host);
	TU_CASE(s, "accel_override", test_accel_override);
	TU_CASE(s, "hub", test_hub);
	TU_CASE(s, "status_checks", test_status_checks);
	TU_CASE(s, "up_timeout", test_up_timeout);
	TU_CASE(s, "up_sigint", test_up_sigint);
	TU_CASE(s, "up_sigterm", test_up_sigterm);
	return s;
}

TU_MAIN(cluster_up_suite)
