/* hub.c: a local cluster's private network: a UDP broadcast hub between QEMU socket NICs.
 *
 * Each VM's NIC sends its Ethernet frames as datagrams to the hub (-netdev socket,udp=) and
 * receives on its own port (localaddr=). The hub sends every frame to every endpoint but
 * the sender: a hub, not a switch, which is plenty for a handful of machines. */
#include "cluster/cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#define HUB_MAX_PEERS 256
#define FRAME_MAX     65536

struct peers {
	struct sockaddr_in a[HUB_MAX_PEERS];
	size_t n;
};

static int same(const struct sockaddr_in *x, const struct sockaddr_in *y)
{
	return x->sin_addr.s_addr == y->sin_addr.s_addr && x->sin_port == y->sin_port;
}

static void learn(struct peers *p, const struct sockaddr_in *a)
{
	for (size_t i = 0; i < p->n; i++)
		if (same(&p->a[i], a))
			return;
	if (p->n < HUB_MAX_PEERS)
		p->a[p->n++] = *a;
}

int ib_hub_run(int fd, const int *ports, size_t n, volatile int *stop)
{
	struct peers peers = {.n = 0};
	_cleanup_free_ unsigned char *buf = xmalloc(FRAME_MAX);
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET,
		                        .sin_port = htons((uint16_t)ports[i])};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		learn(&peers, &a);
	}
	while (!*stop) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int k = poll(&pfd, 1, 200);
		if (k < 0 && errno != EINTR)
			return -errno;
		if (k <= 0)
			continue;
		struct sockaddr_in from;
		socklen_t len = sizeof(from);
		ssize_t got =
		        recvfrom(fd, buf, FRAME_MAX, MSG_DONTWAIT, (struct sockaddr *)&from, &len);
		if (got < 0) {
			/* ECONNREFUSED: an ICMP for an earlier send to a VM that is gone. */
			if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED)
				continue;
			return -errno;
		}
		if (from.sin_family != AF_INET)
			continue;
		learn(&peers, &from);
		for (size_t i = 0; i < peers.n; i++)
			if (!same(&peers.a[i], &from))
				sendto(fd, buf, (size_t)got, MSG_DONTWAIT,
				       (const struct sockaddr *)&peers.a[i], sizeof(peers.a[i]));
	}
	return 0;
}
