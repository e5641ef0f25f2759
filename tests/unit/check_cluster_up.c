/* check_cluster_up.c: what `imgbuild cluster up` does without booting anything: ports,
 * state.json, QEMU's command line, the tooling host's address, and the hub relaying
 * datagrams between three UDP sockets. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
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
	ib_vm_argv(v, "/c", "/c/master.seed.iso", "tcg", 50000, &a);
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
	        " -drive file=/c/master.seed.iso,if=virtio,format=raw,readonly=on ",
	        " -device virtio-net-pci,netdev=n0,mac=52:55:0a:4d:00:0a ",
	        " -netdev socket,id=n1,udp=127.0.0.1:50000,localaddr=127.0.0.1:40001 ",
	        " -device virtio-net-pci,netdev=n1,mac=52:54:0a:4d:00:0a",
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		ck_assert_msg(strstr(sb_str(&sb), want[i]), "no '%s' in %s", want[i], sb_str(&sb));
	ck_assert_ptr_null(a.v[a.n]);
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
	return s;
}

TU_MAIN(cluster_up_suite)
