/* plan.c: a cluster plan: its options checked, its secrets reused or made, its hosts. */
#include "cluster/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "util/hash.h"
#include "util/jsonr.h"
#include "util/strbuf.h"

#define PLAN_MAX    (256u << 10)
#define PEM_MAX     (64u << 10)
#define ADDON_MAX   32
#define POD_MAX_PFX 24 /* kubeadm gives each node a /24 of the pod network */

const char *const ib_cluster_roles[IB_ROLE_N] = {"master", "worker", "tooling"};
const struct ib_machine ib_machine_defaults[IB_ROLE_N] = {{2048, 1}, {1024, 1}, {3072, 1}};

void ib_cluster_plan_release(struct ib_cluster_plan *p)
{
	free(p->dir);
	free(p->name);
	free(p->pod_cidr);
	free(p->addons);
	ib_ca_release(&p->ca);
	for (size_t i = 0; i < p->n_hosts; i++)
		free(p->hosts[i].user_data);
	free(p->tooling.user_data);
	if (p->lock_fd >= 0)
		close(p->lock_fd); /* releases the flock */
	memset(p, 0, sizeof(*p));
	p->lock_fd = -1;
}

/* ---- options ---- */

static int check_master(struct ib_ctx *ctx, const char *s, uint32_t *ret)
{
	if (ib_ipv4_parse(s, ret) < 0)
		return ib_error(ctx, IB_E_USAGE,
		                "bad master address '%s': expected an IPv4 address like 10.77.0.10",
		                s);
	unsigned first = *ret >> 24;
	if (first == 0 || first == 127 || first >= 224)
		return ib_error(ctx, IB_E_USAGE,
		                "bad master address '%s': not an address a host can have", s);
	return 0;
}

static int check_cidr(struct ib_ctx *ctx, const char *opt, const char *s, const char *example,
                      struct ib_cidr *ret)
{
	int r = ib_cidr_parse(s, ret);
	if (r == -2) {
		/* Name the network the user probably meant. */
		const char *slash = strchr(s, '/');
		uint32_t a = 0;
		_cleanup_free_ char *addr = xstrndup(s, (size_t)(slash - s));
		ib_ipv4_parse(addr, &a);
		unsigned prefix = (unsigned)atoi(slash + 1);
		struct ib_cidr c = {a & (prefix ? ~(uint32_t)0 << (32 - prefix) : 0), prefix};
		char net[19];
		ib_cidr_format(&c, net);
		return ib_error(ctx, IB_E_USAGE,
		                "bad %s '%s': host bits are set (the network is %s)", opt, s, net);
	}
	if (r < 0)
		return ib_error(ctx, IB_E_USAGE, "bad %s '%s': expected an IPv4 network like %s",
		                opt, s, example);
	return 0;
}

/* "istio,foo bar" -> "istio foo bar": names as directories under addons.d/ have them. */
static int check_addons(struct ib_ctx *ctx, const char *s, char **ret)
{
	struct strv names = {0};
	_cleanup_free_ char *copy = xstrdup(s);
	char *save = NULL;
	int r = 0;
	for (char *t = strtok_r(copy, ", \t", &save); t && r == 0;
	     t = strtok_r(NULL, ", \t", &save)) {
		int ok = strlen(t) <= ADDON_MAX && t[0] != '-';
		for (const char *c = t; *c && ok; c++)
			ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-';
		if (!ok)
			r = ib_error(ctx, IB_E_USAGE,
			             "bad add-on name '%s' in --addons: use a-z, 0-9 and '-'", t);
		else if (!strv_contains(&names, t))
			strv_push(&names, t);
	}
	if (r == 0) {
		struct strbuf sb = STRBUF_INIT;
		for (size_t i = 0; i < names.n; i++) {
			if (i)
				sb_addc(&sb, ' ');
			sb_adds(&sb, names.v[i]);
		}
		*ret = sb_take(&sb);
	}
	strv_release(&names);
	return r;
}

/* The address worker i gets on the network: the master has its own. */
static uint32_t worker_address(const struct ib_cidr *net, int i)
{
	return net->addr + IB_CLUSTER_HOST_BASE + (uint32_t)i;
}

static uint32_t broadcast(const struct ib_cidr *net)
{
	return net->addr | (net->prefix ? ~(~(uint32_t)0 << (32 - net->prefix)) : ~(uint32_t)0);
}

static int check_network(struct ib_ctx *ctx, const struct ib_cidr *net, uint32_t master,
                         int workers)
{
	char n[19], m[16], lo[16], hi[16];
	ib_cidr_format(net, n);
	ib_ipv4_format(master, m);
	if (!ib_cidr_contains(net, master))
		return ib_error(ctx, IB_E_USAGE, "master address %s is not in --network %s", m, n);
	ib_ipv4_format(worker_address(net, 1), lo);
	ib_ipv4_format(worker_address(net, workers), hi);
	if (worker_address(net, workers) >= broadcast(net)) {
		char end[16];
		ib_ipv4_format(broadcast(net), end);
		return ib_error(
		        ctx, IB_E_USAGE,
		        "--network %s has no room for %d workers: they get %s to %s, and the "
		        "network ends at %s",
		        n, workers, lo, hi, end);
	}
	if (master == net->addr || master == broadcast(net))
		return ib_error(ctx, IB_E_USAGE,
		                "master address %s is the %s address of --network %s", m,
		                master == net->addr ? "network" : "broadcast", n);
	if (master >= worker_address(net, 1) && master <= worker_address(net, workers))
		return ib_error(ctx, IB_E_USAGE,
		                "master address %s is taken by a worker (workers get %s to %s)", m,
		                lo, hi);
	return 0;
}

static int check_opts(struct ib_ctx *ctx, const struct ib_cluster_opts *o,
                      struct ib_cluster_plan *p)
{
	uint32_t master;
	int r = check_master(ctx, o->master_address, &master);
	if (r < 0)
		return r;
	if (o->workers < 1 || o->workers > IB_CLUSTER_MAX_WORKERS)
		return ib_error(ctx, IB_E_USAGE, "bad number of workers %d: expected 1 to %d",
		                o->workers, IB_CLUSTER_MAX_WORKERS);
	if (o->network) {
		r = check_cidr(ctx, "--network", o->network, "10.77.0.0/24", &p->network);
		if (r == 0)
			r = check_network(ctx, &p->network, master, o->workers);
		if (r < 0)
			return r;
		p->has_network = 1;
	}
	if (o->pod_cidr) {
		struct ib_cidr pod;
		if ((r = check_cidr(ctx, "--pod-cidr", o->pod_cidr, "10.244.0.0/16", &pod)) < 0)
			return r;
		if (pod.prefix > POD_MAX_PFX)
			return ib_error(
			        ctx, IB_E_USAGE,
			        "--pod-cidr %s is too small: kubeadm gives every node a /%d of it",
			        o->pod_cidr, POD_MAX_PFX);
		if (p->has_network && ib_cidr_overlap(&pod, &p->network))
			return ib_error(ctx, IB_E_USAGE, "--pod-cidr %s overlaps --network %s",
			                o->pod_cidr, o->network);
		if (ib_cidr_contains(&pod, master))
			return ib_error(ctx, IB_E_USAGE,
			                "--pod-cidr %s holds the master address %s", o->pod_cidr,
			                o->master_address);
		p->pod_cidr = xstrdup(o->pod_cidr);
	}
	if ((r = check_addons(ctx, o->addons ? o->addons : "", &p->addons)) < 0)
		return r;
	p->name = xstrdup(o->name);
	ib_ipv4_format(master, p->master_address);
	p->workers = o->workers;
	return 0;
}

/* ---- machines ---- */

static int parse_count(const char *s, int lo, int hi, int *ret)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi || s[0] == '+' || s[0] == '-' || s[0] == ' ')
		return -1;
	*ret = (int)v;
	return 0;
}

static int bad_count(struct ib_ctx *ctx, const char *opt, const char *text, int lo, int hi)
{
	return ib_error(ctx, IB_E_USAGE,
	                "bad value '%s' for %s: expected a number from %d to %d, or ROLE=N items "
	                "(master, worker, tooling) separated by commas",
	                text, opt, lo, hi);
}

int ib_machine_parse(struct ib_ctx *ctx, const char *opt, const char *text, int lo, int hi,
                     int out[IB_ROLE_N])
{
	int v, all[IB_ROLE_N];
	if (parse_count(text, lo, hi, &v) == 0) {
		for (size_t i = 0; i < IB_ROLE_N; i++)
			out[i] = v;
		return 0;
	}
	/* strtok_r would pass over an empty item: "a=1,,b=2" is a typo worth naming. */
	size_t n = strlen(text);
	if (!n || text[0] == ',' || text[n - 1] == ',' || strstr(text, ",,"))
		return bad_count(ctx, opt, text, lo, hi);
	memcpy(all, out, sizeof(all));
	_cleanup_free_ char *copy = xstrdup(text);
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		size_t role = IB_ROLE_N;
		if (eq) {
			*eq = '\0';
			for (size_t i = 0; i < IB_ROLE_N; i++)
				if (streq(t, ib_cluster_roles[i]))
					role = i;
		}
		if (!eq || role == IB_ROLE_N || parse_count(eq + 1, lo, hi, &v) < 0)
			return bad_count(ctx, opt, text, lo, hi);
		all[role] = v;
	}
	memcpy(out, all, sizeof(all));
	return 0;
}

static void fill_machines(struct ib_cluster_plan *p, const int *memory, const int *cpus)
{
	for (size_t i = 0; i < IB_ROLE_N; i++) {
		p->machines[i] = ib_machine_defaults[i];
		if (memory && memory[i])
			p->machines[i].memory = memory[i];
		if (cpus && cpus[i])
			p->machines[i].cpus = cpus[i];
	}
}

/* ---- hosts ---- */

/* Locally administered, unicast, and unique on the network by construction: the address's
 * own four bytes after a prefix telling the two NICs apart. Whoever starts the machines
 * (QEMU's -device ...,mac=) derives them the same way from plan.json. */
static void host_mac(const char *prefix, uint32_t a, char out[18])
{
	snprintf(out, 18, "%s:%02x:%02x:%02x:%02x", prefix, a >> 24, (a >> 16) & 255,
	         (a >> 8) & 255, a & 255);
}

static void fill_host(const struct ib_cluster_plan *p, const char *name, int worker,
                      struct ib_cluster_host *h)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->worker = worker;
	uint32_t a = 0;
	if (!worker)
		ib_ipv4_parse(p->master_address, &a);
	else if (p->has_network && worker > 0)
		a = worker_address(&p->network, worker);
	if (a)
		ib_ipv4_format(a, h->address);
	if (p->has_network && a) {
		host_mac("52:54", a, h->mac);
		host_mac("52:55", a, h->uplink_mac);
	}
}

/* "worker-N", N from 1 without leading zeros: its number, else 0. */
static int worker_number(const char *name)
{
	if (!startswith(name, "worker-") || name[7] < '1' || name[7] > '9' || strlen(name) > 10)
		return 0;
	int n = 0;
	for (const char *c = name + 7; *c; c++) {
		if (*c < '0' || *c > '9')
			return 0;
		n = n * 10 + (*c - '0');
	}
	return n;
}

int ib_cluster_host(struct ib_ctx *ctx, const struct ib_cluster_plan *p, const char *name,
                    int worker, struct ib_cluster_host *ret)
{
	if (strlen(name) >= sizeof(ret->name))
		return ib_error(ctx, IB_E_USAGE, "host name '%s' is too long for a cluster host",
		                name);
	if (!worker) {
		fill_host(p, name, 0, ret);
		return 0;
	}
	if (streq(name, "master"))
		return ib_error(ctx, IB_E_USAGE,
		                "host name 'master' is the master's, not a worker's");
	int n = worker_number(name);
	if (p->has_network) {
		char net[19];
		ib_cidr_format(&p->network, net);
		if (n == 0)
			return ib_error(ctx, IB_E_USAGE,
			                "worker '%s' has no address in the plan's network %s: name "
			                "it worker-N",
			                name, net);
		if (n > 250 || worker_address(&p->network, n) >= broadcast(&p->network))
			return ib_error(ctx, IB_E_USAGE,
			                "the plan's network %s has no address for '%s'", net, name);
	}
	/* Without a network, a worker may have any name: -1 marks one with no number. */
	fill_host(p, name, n ? n : -1, ret);
	return 0;
}

static int plan_hosts(struct ib_ctx *ctx, struct ib_cluster_plan *p, int tooling)
{
	fill_host(p, "master", 0, &p->hosts[0]);
	for (int i = 1; i <= p->workers; i++) {
		char name[24];
		snprintf(name, sizeof(name), "worker-%d", i);
		fill_host(p, name, i, &p->hosts[i]);
	}
	p->n_hosts = 1 + (size_t)p->workers;
	/* Without a network the tooling host's address is not known ahead (AWS assigns it):
	 * the nodes' K8S_TOOLING_ADDRESS stays empty. */
	if (!tooling || !p->has_network)
		return 0;
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	if (ib_cluster_extra_host(&quiet, p, "tooling", 1, &p->tooling) < 0)
		return ib_error(ctx, IB_E_USAGE,
		                "--network has no address left for the tooling host after %d "
		                "workers (a larger network, or --no-tooling)",
		                p->workers);
	if (streq(p->tooling.address, p->master_address))
		return ib_error(ctx, IB_E_USAGE,
		                "master address %s is the tooling host's (the one after the "
		                "workers'): another master address, or --no-tooling",
		                p->master_address);
	p->has_tooling = 1;
	return 0;
}

/* ---- the plan directory ---- */

static int lock_dir(struct ib_ctx *ctx, const char *dir, int *ret_fd)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			*ret_fd = -1;
			return 0;
		}
		return ib_error_errno(ctx, IB_E_USAGE, errno, "cannot open plan directory '%s'",
		                      dir);
	}
	/* Two plans at once would interleave their renames: one CA, the other's key. */
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return ib_error_errno(ctx, IB_E_IO, e, "cannot lock '%s'", dir);
		}
	}
	*ret_fd = fd;
	return 0;
}

static int read_in(struct ib_ctx *ctx, const char *dir, const char *name, size_t max, char **ret)
{
	_cleanup_free_ char *path = ib_path_join(dir, name);
	return ib_read_file(ctx, path, max, ret, NULL);
}

/* The secrets of plan.json, cross-checked with ca.crt and ca.key. */
static int load_secrets(struct ib_ctx *ctx, struct ib_cluster_plan *p, const struct jsonr *j)
{
	_cleanup_free_ char *crt = NULL, *key = NULL;
	int r;
	if ((r = read_in(ctx, p->dir, "ca.crt", PEM_MAX, &crt)) < 0 ||
	    (r = read_in(ctx, p->dir, "ca.key", PEM_MAX, &key)) < 0 ||
	    (r = ib_ca_load(ctx, p->dir, crt, key, &p->ca)) < 0)
		return r;
	if (key)
		memset(key, 0, strlen(key));
	const char *token = jsonr_get_str(j, "token");
	const char *ckey = jsonr_get_str(j, "certificate_key");
	const char *hash = jsonr_get_str(j, "ca_hash");
	if (!token || !ib_token_valid(token))
		return ib_error(ctx, IB_E_SPEC, "%s/plan.json: missing or bad token", p->dir);
	if (!ckey || !ib_cert_key_valid(ckey))
		return ib_error(ctx, IB_E_SPEC, "%s/plan.json: missing or bad certificate_key",
		                p->dir);
	if (!hash || !streq(hash, p->ca.hash))
		return ib_error(ctx, IB_E_SPEC,
		                "%s/plan.json does not belong to %s/ca.crt (ca_hash differs): "
		                "add --rotate to start over",
		                p->dir, p->dir);
	memcpy(p->token, token, sizeof(p->token));
	memcpy(p->cert_key, ckey, sizeof(p->cert_key));
	return 0;
}

static int read_plan_json(struct ib_ctx *ctx, const char *dir, struct jsonr **ret)
{
	_cleanup_free_ char *text = NULL, *what = ib_path_join(dir, "plan.json");
	int r = read_in(ctx, dir, "plan.json", PLAN_MAX, &text);
	if (r < 0)
		return r;
	r = jsonr_parse(ctx, IB_E_SPEC, what, text, strlen(text), ret);
	if (r == 0 && (*ret)->type != JSONR_OBJECT) {
		jsonr_free(*ret);
		*ret = NULL;
		return ib_error(ctx, IB_E_SPEC, "%s: not a JSON object", what);
	}
	return r;
}

static int make_secrets(struct ib_ctx *ctx, struct ib_cluster_plan *p)
{
	int r;
	if ((r = ib_ca_generate(ctx, time(NULL), &p->ca)) < 0 ||
	    (r = ib_token_generate(ctx, p->token)) < 0 ||
	    (r = ib_cert_key_generate(ctx, p->cert_key)) < 0)
		return r;
	return 0;
}

int ib_cluster_plan_init(struct ib_ctx *ctx, const char *dir, const struct ib_cluster_opts *o,
                         struct ib_cluster_plan *ret)
{
	struct ib_cluster_plan p = {.lock_fd = -1};
	p.dir = xstrdup(dir);
	int r = check_opts(ctx, o, &p);
	if (r == 0)
		r = plan_hosts(ctx, &p, o->tooling);
	if (r == 0)
		r = lock_dir(ctx, dir, &p.lock_fd);
	if (r < 0)
		goto fail;
	static const char *const parts[] = {"ca.crt", "ca.key", "plan.json"};
	int have = 0;
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		_cleanup_free_ char *path = ib_path_join(dir, parts[i]);
		have += ib_exists(path);
	}
	if (have == (int)ARRAY_SIZE(parts) && !o->rotate) {
		_cleanup_jsonr_ struct jsonr *j = NULL;
		r = read_plan_json(ctx, dir, &j);
		if (r == 0)
			r = load_secrets(ctx, &p, j);
		p.reused = 1;
	} else if (have > 0 && !o->rotate) {
		r = ib_error(
		        ctx, IB_E_SPEC,
		        "'%s' holds part of a plan (ca.crt, ca.key and plan.json go together): "
		        "add --rotate to start over",
		        dir);
	} else {
		r = make_secrets(ctx, &p);
	}
	if (r < 0)
		goto fail;
	fill_machines(&p, o->memory, o->cpus);
	*ret = p;
	return 0;
fail:
	ib_cluster_plan_release(&p);
	return r;
}

/* plan.json's "machines": {"master": {"memory": 2048, "cpus": 1}, ...}; absent (a plan made
 * before it was recorded) or a role missing: the defaults. */
static int load_machines(struct ib_ctx *ctx, const char *path, const struct jsonr *j,
                         int memory[IB_ROLE_N], int cpus[IB_ROLE_N])
{
	const struct jsonr *m = jsonr_get(j, "machines");
	if (!m || m->type == JSONR_NULL)
		return 0;
	if (m->type != JSONR_OBJECT)
		return ib_error(ctx, IB_E_SPEC, "%s: machines: not an object", path);
	for (size_t i = 0; i < IB_ROLE_N; i++) {
		const struct jsonr *r = jsonr_get(m, ib_cluster_roles[i]);
		if (!r)
			continue;
		const struct jsonr *mem = jsonr_get_type(r, "memory", JSONR_NUMBER);
		const struct jsonr *cpu = jsonr_get_type(r, "cpus", JSONR_NUMBER);
		if (r->type != JSONR_OBJECT || !mem || !mem->is_int ||
		    mem->integer < IB_MEMORY_MIN || mem->integer > IB_MEMORY_MAX || !cpu ||
		    !cpu->is_int || cpu->integer < 1 || cpu->integer > IB_CPUS_MAX)
			return ib_error(ctx, IB_E_SPEC,
			                "%s: machines.%s: expected memory (MiB, %d to %d) and cpus "
			                "(1 to %d)",
			                path, ib_cluster_roles[i], IB_MEMORY_MIN, IB_MEMORY_MAX,
			                IB_CPUS_MAX);
		memory[i] = (int)mem->integer;
		cpus[i] = (int)cpu->integer;
	}
	return 0;
}

int ib_cluster_plan_load(struct ib_ctx *ctx, const char *dir, struct ib_cluster_plan *ret)
{
	_cleanup_free_ char *path = ib_path_join(dir, "plan.json");
	if (!ib_exists(path))
		return ib_error(ctx, IB_E_USAGE,
		                "no cluster plan in '%s': run 'imgbuild cluster plan "
		                "--master-address ADDR' first",
		                dir);
	_cleanup_jsonr_ struct jsonr *j = NULL;
	int r = read_plan_json(ctx, dir, &j);
	if (r < 0)
		return r;
	const struct jsonr *workers = jsonr_get_type(j, "workers", JSONR_NUMBER);
	const struct jsonr *addons = jsonr_get_type(j, "addons", JSONR_ARRAY);
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; addons && i < addons->n; i++)
		if (addons->items[i].type == JSONR_STRING)
			sb_addf(&sb, "%s%s", i ? " " : "", addons->items[i].str);
	struct ib_cluster_opts o = {
	        .name = jsonr_get_str(j, "cluster_name"),
	        .master_address = jsonr_get_str(j, "master_address"),
	        .workers = workers && workers->is_int && workers->integer <= IB_CLUSTER_MAX_WORKERS
	                           ? (int)workers->integer
	                           : 0,
	        .network = jsonr_get_str(j, "network"),
	        .pod_cidr = jsonr_get_str(j, "pod_cidr"),
	        .addons = sb_str(&sb),
	        .tooling = jsonr_get_type(j, "tooling", JSONR_OBJECT) != NULL,
	};
	int memory[IB_ROLE_N] = {0}, cpus[IB_ROLE_N] = {0};
	struct ib_cluster_plan p = {.lock_fd = -1};
	p.dir = xstrdup(dir);
	r = lock_dir(ctx, dir, &p.lock_fd);
	if (r == 0)
		r = load_machines(ctx, path, j, memory, cpus);
	if (r == 0 && (!o.name || !o.master_address || !o.workers))
		r = ib_error(ctx, IB_E_SPEC,
		             "%s: cluster_name, master_address or workers missing or bad", path);
	/* The plan's options pass the checks a new plan's do, so that a hand-edited one
	 * cannot render what `cluster plan` would have refused. */
	if (r == 0 && (r = check_opts(ctx, &o, &p)) < 0)
		ib_error_prefix(ctx, "%s: ", path);
	if (r == 0)
		r = load_secrets(ctx, &p, j);
	if (r == 0 && (r = plan_hosts(ctx, &p, o.tooling)) < 0)
		ib_error_prefix(ctx, "%s: ", path);
	sb_release(&sb);
	if (r < 0) {
		ib_cluster_plan_release(&p);
		return r;
	}
	fill_machines(&p, memory, cpus);
	p.reused = 1;
	*ret = p;
	return 0;
}

int ib_cluster_extra_host(struct ib_ctx *ctx, const struct ib_cluster_plan *p, const char *name,
                          int index, struct ib_cluster_host *ret)
{
	if (!p->has_network)
		return ib_error(ctx, IB_E_USAGE,
		                "the plan in '%s' has no network: '%s' would have no address",
		                p->dir, name);
	uint32_t a = worker_address(&p->network, p->workers + index);
	if (index < 1 || a >= broadcast(&p->network))
		return ib_error(ctx, IB_E_USAGE, "the plan's network has no address for '%s'",
		                name);
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->name, sizeof(ret->name), "%s", name);
	ret->worker = -1;
	ib_ipv4_format(a, ret->address);
	host_mac("52:54", a, ret->mac);
	host_mac("52:55", a, ret->uplink_mac);
	return 0;
}
