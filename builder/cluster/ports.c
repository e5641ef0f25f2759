/* ports.c: loopback ports for a local cluster: SSH, forwarded services, the private link. */
#include "cluster/cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* Bind 127.0.0.1:port (0: any); the bound port, or -1. */
static int try_bind(enum ib_proto proto, int port)
{
	int fd = socket(AF_INET, (proto == IB_TCP ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	/* QEMU's hostfwd sets SO_REUSEADDR too: a port in TIME_WAIT is free for it. */
	if (proto == IB_TCP)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	int r = -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		r = ntohs(sa.sin_port);
	close(fd);
	return r;
}

int ib_port_free(enum ib_proto proto, int port)
{
	return port > 0 && port < 65536 && try_bind(proto, port) == port;
}

static int taken_by(int port, const int *taken, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (taken[i] == port)
			return 1;
	return 0;
}

int ib_port_pick(enum ib_proto proto, int want, const int *taken, size_t n)
{
	if (want <= 0) {
		/* The kernel's choice, skipping the ones already handed out. */
		for (int tries = 0; tries < 64; tries++) {
			int p = try_bind(proto, 0);
			if (p > 0 && !taken_by(p, taken, n))
				return p;
		}
		return -1;
	}
	for (int p = want; p < 65536; p++)
		if (!taken_by(p, taken, n) && ib_port_free(proto, p))
			return p;
	return -1;
}

/* The services a seed's hosts listen on, forwarded from 127.0.0.1 to the host of a role:
 * the API server and NodePorts on the master (NodePorts answer on every node), the
 * tooling stack's web ports on the tooling host. */
static const struct {
	const char *role;
	int port;
} services[] = {
        {"master", 6443},  {"master", 8500},  {"master", 8501},  {"master", 20001},
        {"tooling", 3000}, {"tooling", 8084}, {"tooling", 8181}, {"tooling", 8282},
};

int ib_cluster_assign_ports(struct ib_cluster_state *s)
{
	int taken[IB_VM_MAX * (3 + IB_VM_MAX_FWD)];
	size_t n = 0;
	for (size_t i = 0; i < s->n_vms; i++) {
		struct ib_vm *v = &s->vms[i];
		v->n_fwd = 0;
		if ((v->link_port = ib_port_pick(IB_UDP, 0, taken, n)) < 0)
			return -1;
		taken[n++] = v->link_port;
		if ((v->ssh_port = ib_port_pick(IB_TCP, 0, taken, n)) < 0)
			return -1;
		taken[n++] = v->ssh_port;
		for (size_t k = 0; k < ARRAY_SIZE(services) && v->n_fwd < IB_VM_MAX_FWD; k++) {
			if (!streq(services[k].role, v->role))
				continue;
			int port = ib_port_pick(IB_TCP, services[k].port, taken, n);
			if (port < 0)
				return -1;
			taken[n++] = port;
			v->fwd[v->n_fwd].host_port = port;
			v->fwd[v->n_fwd++].guest_port = services[k].port;
		}
	}
	return 0;
}
