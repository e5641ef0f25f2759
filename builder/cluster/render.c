/* render.c: the texts of a plan: cluster.env, meta-data, network-config, plan.json, and the
 * template variables that carry them into user-data. */
#include "cluster/cluster.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util/json.h"
#include "util/strbuf.h"

/* The NICs a plan's network-config configures are found by MAC and renamed: Debian 12's
 * renderer (ENI) cannot match a NIC by a name pattern. */
#define CLUSTER_NIC "cluster0"
#define UPLINK_NIC  "uplink0"

const char *const ib_cluster_var_names[] = {
        IB_CLUSTER_VAR_PREFIX "env_b64",
        IB_CLUSTER_VAR_PREFIX "ca_crt_b64",
        IB_CLUSTER_VAR_PREFIX "ca_key_b64",
        NULL,
};

static char *base64(const char *s)
{
	size_t n = strlen(s);
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	return out;
}

/* Secrets pass through these buffers: wipe them before they go back to the allocator. */
static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

void ib_cluster_vars_init(struct ib_cluster_vars *vars, const struct ib_cluster_plan *p,
                          const struct ib_cluster_host *h)
{
	memset(vars, 0, sizeof(*vars));
	_cleanup_free_ char *env = ib_cluster_env(p, h);
	const char *texts[IB_CLUSTER_N_VARS] = {env, p->ca.cert_pem, p->ca.key_pem};
	/* Workers get neither the CA key nor (inside cluster.env) the certificate key. */
	size_t n = h->worker ? 1 : IB_CLUSTER_N_VARS;
	for (size_t i = 0; i < n; i++) {
		vars->owned[i] = base64(texts[i]);
		vars->v[i].name = ib_cluster_var_names[i];
		vars->v[i].value = vars->owned[i];
	}
	vars->n = n;
	OPENSSL_cleanse(env, strlen(env));
}

void ib_cluster_vars_release(struct ib_cluster_vars *vars)
{
	for (size_t i = 0; i < IB_CLUSTER_N_VARS; i++)
		free_secret(vars->owned[i]);
	memset(vars, 0, sizeof(*vars));
}

/* A value as sh reads it back unchanged: bare when it is plain, else single-quoted. */
static void shell_value(struct strbuf *sb, const char *v)
{
	int plain = 1;
	for (const char *c = v; *c && plain; c++)
		plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		        (*c >= '0' && *c <= '9') || strchr("._:/@%+,-", *c);
	if (plain) {
		sb_adds(sb, v);
		return;
	}
	sb_addc(sb, '\'');
	for (const char *c = v; *c; c++)
		if (*c == '\'')
			sb_adds(sb, "'\\''");
		else
			sb_addc(sb, *c);
	sb_addc(sb, '\'');
}

static void env_line(struct strbuf *sb, const char *name, const char *value)
{
	sb_adds(sb, name);
	sb_addc(sb, '=');
	shell_value(sb, value);
	sb_addc(sb, '\n');
}

char *ib_cluster_env(const struct ib_cluster_plan *p, const struct ib_cluster_host *h)
{
	struct strbuf sb = STRBUF_INIT;
	sb_addf(&sb,
	        "# /etc/imgbuild/cluster.env for %s of cluster %s, written by imgbuild cluster "
	        "plan.\n# Secrets: keep it 0600. Read after /etc/imgbuild/kubernetes.env.\n",
	        h->name, p->name);
	env_line(&sb, "K8S_CLUSTER_NAME", p->name);
	env_line(&sb, "K8S_MASTER_ADDRESS", p->master_address);
	/* Without a planned network the master's address may be one it does not hold (NAT):
	 * empty lets kubeadm take the address of the default route. */
	if (!h->worker)
		env_line(&sb, "K8S_ADVERTISE_ADDRESS", p->has_network ? p->master_address : "");
	env_line(&sb, "K8S_NODE_NAME", h->name);
	/* With a planned network the default route leaves by another NIC (the uplink):
	 * kubelet must be told which address is the node's. */
	if (p->has_network)
		env_line(&sb, "K8S_NODE_ADDRESS", h->address);
	env_line(&sb, "K8S_TOKEN", p->token);
	env_line(&sb, "K8S_CA_HASH", p->ca.hash);
	if (!h->worker)
		env_line(&sb, "K8S_CERT_KEY", p->cert_key);
	/* Absent rather than empty: an empty value would override kubernetes.env's. */
	if (p->pod_cidr)
		env_line(&sb, "K8S_POD_CIDR", p->pod_cidr);
	env_line(&sb, "K8S_ADDONS", p->addons);
	/* Where the node ships its logs (Loki) and metrics go; empty: no tooling host. */
	env_line(&sb, "K8S_TOOLING_ADDRESS", p->has_tooling ? p->tooling.address : "");
	return sb_take(&sb);
}

char *ib_cluster_instance_id(const struct ib_cluster_plan *p, const struct ib_cluster_host *h)
{
	return xasprintf("%s-%s", p->name, h->name);
}

char *ib_cluster_meta_data(const struct ib_cluster_plan *p, const struct ib_cluster_host *h)
{
	_cleanup_free_ char *iid = ib_cluster_instance_id(p, h);
	return xasprintf("instance-id: %s\nlocal-hostname: %s\n", iid, h->name);
}

char *ib_cluster_network_config(const struct ib_cluster_plan *p, const struct ib_cluster_host *h)
{
	if (!p->has_network || !*h->address || !*h->mac)
		return NULL;
	/* The uplink is DHCP'd as the image's default would be, since a network-config replaces
	 * that default: without it the machine could only reach the cluster network. */
	return xasprintf("# network-config (version 2) for %s of cluster %s: a static address on\n"
	                 "# the private cluster network, no gateway; the way out by DHCP.\n"
	                 "version: 2\n"
	                 "ethernets:\n"
	                 "  " CLUSTER_NIC ":\n"
	                 "    match:\n"
	                 "      macaddress: \"%s\"\n"
	                 "    set-name: " CLUSTER_NIC "\n"
	                 "    addresses: [%s/%u]\n"
	                 "  " UPLINK_NIC ":\n"
	                 "    match:\n"
	                 "      macaddress: \"%s\"\n"
	                 "    set-name: " UPLINK_NIC "\n"
	                 "    dhcp4: true\n"
	                 "    optional: true\n",
	                 h->name, p->name, h->mac, h->address, p->network.prefix, h->uplink_mac);
}

char *ib_cluster_tooling_nodes(const struct ib_cluster_plan *p)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < p->n_hosts; i++)
		if (*p->hosts[i].address)
			sb_addf(&sb, "%s%s=%s", sb.len ? " " : "", p->hosts[i].name,
			        p->hosts[i].address);
	return sb_take(&sb);
}

static void host_fields(struct json *j, const struct ib_cluster_host *h)
{
	_cleanup_free_ char *ud = xasprintf("%s.user-data", h->name);
	_cleanup_free_ char *iso = xasprintf("%s.seed.iso", h->name);
	json_str(j, "address", *h->address ? h->address : NULL);
	json_str(j, "mac", *h->mac ? h->mac : NULL);
	json_str(j, "uplink_mac", *h->uplink_mac ? h->uplink_mac : NULL);
	json_str(j, "user_data", ud);
	json_str(j, "seed", iso);
}

char *ib_cluster_plan_json(const struct ib_cluster_plan *p)
{
	struct strbuf sb = STRBUF_INIT;
	struct json j;
	char net[19];
	json_init(&j, &sb, 1);
	json_obj_begin(&j, NULL);
	json_int(&j, "version", 1);
	json_str(&j, "cluster_name", p->name);
	json_str(&j, "master_address", p->master_address);
	if (p->has_network)
		ib_cidr_format(&p->network, net);
	json_str(&j, "network", p->has_network ? net : NULL);
	json_str(&j, "pod_cidr", p->pod_cidr);
	json_arr_begin(&j, "addons");
	_cleanup_free_ char *addons = xstrdup(p->addons);
	char *save = NULL;
	for (char *a = strtok_r(addons, " ", &save); a; a = strtok_r(NULL, " ", &save))
		json_str(&j, NULL, a);
	json_arr_end(&j);
	json_int(&j, "workers", p->workers);
	json_str(&j, "token", p->token);
	json_str(&j, "certificate_key", p->cert_key);
	json_str(&j, "ca_hash", p->ca.hash);
	json_arr_begin(&j, "hosts");
	for (size_t i = 0; i < p->n_hosts; i++) {
		const struct ib_cluster_host *h = &p->hosts[i];
		json_obj_begin(&j, NULL);
		json_str(&j, "name", h->name);
		json_str(&j, "role", h->worker ? "worker" : "master");
		host_fields(&j, h);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	if (p->has_tooling) {
		json_obj_begin(&j, "tooling");
		json_str(&j, "name", p->tooling.name);
		json_str(&j, "role", "tooling");
		host_fields(&j, &p->tooling);
		json_obj_end(&j);
	} else {
		json_str(&j, "tooling", NULL);
	}
	json_obj_begin(&j, "machines");
	for (size_t i = 0; i < IB_ROLE_N; i++) {
		json_obj_begin(&j, ib_cluster_roles[i]);
		json_int(&j, "memory", p->machines[i].memory);
		json_int(&j, "cpus", p->machines[i].cpus);
		json_obj_end(&j);
	}
	json_obj_end(&j);
	json_obj_end(&j);
	sb_addc(&sb, '\n');
	return sb_take(&sb);
}
