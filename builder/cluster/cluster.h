/* cluster.h: a kubeadm cluster planned ahead: its CA, bootstrap token and certificate key,
 * the hosts and their addresses, and the per-host texts cloud-init gets (doc/kubernetes.md).
 *
 * Secrets live only in the plan directory (0700, files 0600 but ca.crt) and in user-data,
 * never in an image. The plan is made before any machine exists, so that a worker needs
 * nothing from the master but its address: the CA is imgbuild's, and its hash is known.
 */
#pragma once

#include <time.h>

#include "util/ctx.h"
#include "seed/seed.h" /* struct ib_tvar */

#define IB_CLUSTER_MAX_WORKERS 64
#define IB_TOKEN_LEN           23 /* [a-z0-9]{6}.[a-z0-9]{16} */
#define IB_CERT_KEY_LEN        64 /* 32 random bytes in hex */
#define IB_CA_HASH_LEN         71 /* "sha256:" and 64 hex digits */
#define IB_CA_DAYS             3650
/* The first host address of a --network goes to the master, the next ones to workers. */
#define IB_CLUSTER_HOST_BASE 10

/* ---- pki.c: the cluster CA ---- */

struct ib_ca {
	char *cert_pem;
	char *key_pem;
	char hash[IB_CA_HASH_LEN + 1]; /* what kubeadm's --discovery-token-ca-cert-hash takes */
};

/* A new self-signed CA as kubeadm makes one (RSA 2048, CN=kubernetes, 10 years), valid
 * from an hour before now so that a node whose clock lags still accepts it. */
int ib_ca_generate(struct ib_ctx *ctx, time_t now, struct ib_ca *ret);
/* Take a CA from PEM texts (what: named in errors): the key must match the certificate,
 * which must be a CA. Computes the hash. */
int ib_ca_load(struct ib_ctx *ctx, const char *what, const char *cert_pem, const char *key_pem,
               struct ib_ca *ret);
/* "sha256:<hex>" of the DER SubjectPublicKeyInfo of a PEM certificate. */
int ib_ca_hash(struct ib_ctx *ctx, const char *cert_pem, char out[IB_CA_HASH_LEN + 1]);
void ib_ca_release(struct ib_ca *ca);

/* ---- token.c: the bootstrap token and the certificate key ---- */

int ib_token_generate(struct ib_ctx *ctx, char out[IB_TOKEN_LEN + 1]);
int ib_token_valid(const char *s);
int ib_cert_key_generate(struct ib_ctx *ctx, char out[IB_CERT_KEY_LEN + 1]);
int ib_cert_key_valid(const char *s);

/* ---- net.c: IPv4 addresses and networks ---- */

struct ib_cidr {
	uint32_t addr; /* host order, host bits zero */
	unsigned prefix;
};

/* Dotted quad, no leading zeros (they read as octal elsewhere). 0 or -1. */
int ib_ipv4_parse(const char *s, uint32_t *ret);
void ib_ipv4_format(uint32_t a, char out[16]);
/* "a.b.c.d/n". 0, -1 when malformed, -2 when host bits are set. */
int ib_cidr_parse(const char *s, struct ib_cidr *ret);
void ib_cidr_format(const struct ib_cidr *c, char out[19]);
int ib_cidr_contains(const struct ib_cidr *c, uint32_t a);
int ib_cidr_overlap(const struct ib_cidr *a, const struct ib_cidr *b);

/* ---- plan.c: the plan ---- */

/* The roles of a local cluster's machines, in the order plan.json and --memory name them. */
enum ib_cluster_role { IB_ROLE_MASTER, IB_ROLE_WORKER, IB_ROLE_TOOLING, IB_ROLE_N };
extern const char *const ib_cluster_roles[IB_ROLE_N];

/* What a machine of a role gets under `cluster up`. */
struct ib_machine {
	int memory; /* MiB */
	int cpus;
};
/* master 2048 MiB, worker 1024, tooling 3072 (its stack: Jenkins, Grafana, Loki,
 * PostgreSQL...); one CPU each. */
extern const struct ib_machine ib_machine_defaults[IB_ROLE_N];
#define IB_MEMORY_MIN 256
#define IB_MEMORY_MAX (1 << 20)
#define IB_CPUS_MAX   64

/* --memory or --cpus: "N" for every role, or "ROLE=N" items separated by commas (repeatable:
 * later items win). Sets out[role] for the roles named; IB_E_USAGE naming opt otherwise. */
int ib_machine_parse(struct ib_ctx *ctx, const char *opt, const char *text, int lo, int hi,
                     int out[IB_ROLE_N]);

struct ib_cluster_host {
	char name[16];    /* "master", "worker-12" */
	int worker;       /* 0: the master; N: worker-N; -1: a worker named otherwise */
	char address[16]; /* static address on the plan's network; "" when none */
	/* With a network: the MACs of the NIC on it (52:54 and the address's four bytes) and
	 * of the NIC with the way out, DHCP (52:55 and the same); "" otherwise. */
	char mac[18];
	char uplink_mac[18];
	char *user_data; /* rendered by the caller before writing; owned */
};

/* What `imgbuild cluster plan` is given. */
struct ib_cluster_opts {
	const char *name;           /* the cluster's: the project's name */
	const char *master_address; /* IPv4 */
	int workers;                /* 1..IB_CLUSTER_MAX_WORKERS */
	const char *network;        /* CIDR of a private network for static addresses, or NULL */
	const char *pod_cidr;       /* or NULL: the image's default (kubernetes.env) */
	const char *addons;         /* names separated by commas or spaces, or NULL */
	int rotate;                 /* new CA, token and certificate key even if some exist */
	/* A tooling host too: it gets the address after the workers' (needs a network). */
	int tooling;
	const int *memory; /* [IB_ROLE_N] MiB, 0: the default; or NULL */
	const int *cpus;   /* [IB_ROLE_N], 0: the default; or NULL */
};

struct ib_cluster_plan {
	char *dir;
	char *name;
	char master_address[16];
	int has_network;
	struct ib_cidr network;
	char *pod_cidr; /* NULL: the image's default */
	char *addons;   /* space separated; "" for none */
	int workers;
	struct ib_ca ca;
	char token[IB_TOKEN_LEN + 1];
	char cert_key[IB_CERT_KEY_LEN + 1];
	int reused; /* the secrets came from the directory */
	struct ib_cluster_host hosts[1 + IB_CLUSTER_MAX_WORKERS];
	size_t n_hosts;
	/* The tooling host: not a node; its user-data is the tooling role's. */
	int has_tooling;
	struct ib_cluster_host tooling;
	struct ib_machine machines[IB_ROLE_N];
	int lock_fd; /* flock on dir while the plan is held; -1 when dir did not exist */
};

/* Check the options (IB_E_USAGE naming the bad one), then take the CA, token and
 * certificate key from dir when it holds a plan (unless rotating) or make new ones.
 * Writes nothing; holds a lock on dir, if it exists, until the plan is released. */
int ib_cluster_plan_init(struct ib_ctx *ctx, const char *dir, const struct ib_cluster_opts *o,
                         struct ib_cluster_plan *ret);
/* Read a plan written before, with its options (for `imgbuild seed --plan`). */
int ib_cluster_plan_load(struct ib_ctx *ctx, const char *dir, struct ib_cluster_plan *ret);
void ib_cluster_plan_release(struct ib_cluster_plan *p);
/* The host of that name: "master" or "worker-N", also N beyond the planned workers as long
 * as the network has an address for it (more workers can join later). IB_E_USAGE else. */
int ib_cluster_host(struct ib_ctx *ctx, const struct ib_cluster_plan *p, const char *name,
                    int worker, struct ib_cluster_host *ret);

/* ---- render.c: the texts of a plan ---- */

/* The names of the template variables a host gets (NULL-terminated); user-data templates
 * that use any of them need a plan. */
extern const char *const ib_cluster_var_names[];
#define IB_CLUSTER_VAR_PREFIX "cluster_"
#define IB_CLUSTER_N_VARS     3

/* The template variables for a host (base64 one-liners: cluster.env, and for the master the
 * CA certificate and key). Values are owned by vars; free with ib_cluster_vars_release. */
struct ib_cluster_vars {
	struct ib_tvar v[IB_CLUSTER_N_VARS];
	size_t n;
	char *owned[IB_CLUSTER_N_VARS];
};
void ib_cluster_vars_init(struct ib_cluster_vars *vars, const struct ib_cluster_plan *p,
                          const struct ib_cluster_host *h);
void ib_cluster_vars_release(struct ib_cluster_vars *vars);

/* Caller frees each with free(). */
char *ib_cluster_env(const struct ib_cluster_plan *p, const struct ib_cluster_host *h);
char *ib_cluster_instance_id(const struct ib_cluster_plan *p, const struct ib_cluster_host *h);
char *ib_cluster_meta_data(const struct ib_cluster_plan *p, const struct ib_cluster_host *h);
/* NULL when the plan has no network: the image's default (DHCP) applies. */
char *ib_cluster_network_config(const struct ib_cluster_plan *p, const struct ib_cluster_host *h);
char *ib_cluster_plan_json(const struct ib_cluster_plan *p);
/* TOOLING_NODES of the tooling host: "master=10.77.0.10 worker-1=10.77.0.11 ...". */
char *ib_cluster_tooling_nodes(const struct ib_cluster_plan *p);

/* ---- write.c ---- */

/* Write the plan directory: ca.crt, ca.key, plan.json, and for every host (the tooling
 * host too) its user-data (user_data, rendered by the caller) and seed ISO. Everything is
 * written aside, then renamed into place together; files of workers beyond the plan's, and
 * the tooling host's of a plan without one, are removed. Releases the lock on the
 * directory. */
int ib_cluster_plan_write(struct ib_ctx *ctx, struct ib_cluster_plan *p, time_t mtime);

/* The host of a plan that is not a Kubernetes node (the tooling host): the address after
 * the planned workers' (index 1 after the last worker, 2 after that...), MACs as for the
 * others. IB_E_USAGE when the plan has no network or no room for it. */
int ib_cluster_extra_host(struct ib_ctx *ctx, const struct ib_cluster_plan *p, const char *name,
                          int index, struct ib_cluster_host *ret);

/* ---- ports.c: loopback ports for a local cluster ---- */

enum ib_proto { IB_TCP, IB_UDP };

/* Is 127.0.0.1:port free to bind (TCP with SO_REUSEADDR, as QEMU's hostfwd binds)? */
int ib_port_free(enum ib_proto proto, int port);
/* The first port from want up (want 0: one the kernel picks) that is free and not among
 * taken[0..n); -1 when none below 65536. */
int ib_port_pick(enum ib_proto proto, int want, const int *taken, size_t n);

/* ---- state.c: a local cluster's machines (DIR/state.json) ---- */
struct ib_cluster_state;

#define IB_VM_MAX     (2 + IB_CLUSTER_MAX_WORKERS)
#define IB_VM_MAX_FWD 8

struct ib_fwd {
	int host_port;  /* on 127.0.0.1 */
	int guest_port; /* TCP */
};

struct ib_vm {
	char name[16];
	char role[16]; /* master, worker, tooling: the image out/<role>.qcow2 */
	char address[16];
	char mac[18];        /* the NIC on the private network */
	char uplink_mac[18]; /* the user-mode NIC with the forwards */
	int pid;             /* QEMU's; 0 before it runs */
	int link_port;       /* UDP 127.0.0.1:<port> of its private NIC */
	int ssh_port;
	int memory; /* MiB */
	int cpus;
	struct ib_fwd fwd[IB_VM_MAX_FWD]; /* besides SSH */
	size_t n_fwd;
};

struct ib_cluster_state {
	char accel[8];    /* kvm or tcg */
	char firmware[8]; /* bios or uefi (OVMF) */
	int hub_pid;
	int hub_port;
	struct ib_vm vms[IB_VM_MAX];
	size_t n_vms;
};

/* Caller frees with free(). */
char *ib_cluster_state_json(const struct ib_cluster_state *s);
int ib_cluster_state_parse(struct ib_ctx *ctx, const char *what, const char *text,
                           struct ib_cluster_state *ret);
/* DIR/state.json, written atomically (0600) / read back. Reading a missing file is
 * IB_E_USAGE naming `cluster up`. */
int ib_cluster_state_write(struct ib_ctx *ctx, const char *dir, const struct ib_cluster_state *s);
int ib_cluster_state_read(struct ib_ctx *ctx, const char *dir, struct ib_cluster_state *ret);
const struct ib_vm *ib_cluster_state_find(const struct ib_cluster_state *s, const char *name);

/* Every machine's private link port (UDP), SSH port and its role's forwarded services
 * (6443, 8500, 8501, 20001 on the master; 3000, 8084, 8181, 8282 on tooling): the same
 * port on the host when free, else the next free one. -1 when ports run out. */
int ib_cluster_assign_ports(struct ib_cluster_state *s);

/* ---- hub.c: the private network of a local cluster, as a UDP broadcast hub ---- */

/* Relay every datagram received on fd (a bound UDP socket) to every other endpoint known:
 * the 127.0.0.1 ports given, and every source heard from. Runs until *stop is set (checked
 * at least every 200 ms) or a fatal socket error (-errno). */
int ib_hub_run(int fd, const int *ports, size_t n, volatile int *stop);

/* ---- vm.c: QEMU for a local cluster ---- */

/* "tcg" or "kvm": IMGBUILD_QEMU_ACCEL when set; else kvm when /dev/kvm opens read-write and
 * a tiny guest (the host's kernel, to its "no root" panic) boots under it within 20 s, the
 * answer cached per boot of the host in the cache directory; else tcg. */
const char *ib_qemu_accel(struct ib_ctx *ctx);
/* The -netdev user option of vm: its MAC-less netdev with SSH and the forwards. Caller frees. */
char *ib_vm_netdev_user(const struct ib_vm *vm);
/* OVMF as Debian installs it (package ovmf): the code read-only, a copy of the variable
 * store per machine (dir/vm/NAME.vars.fd). */
#define IB_OVMF_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define IB_OVMF_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"
/* QEMU's argument vector for vm under dir/vm/ (overlay, seed, serial, pid file, monitor,
 * with s's accelerator, firmware and hub), daemonized. Caller frees with strv_release. */
void ib_vm_argv(const struct ib_vm *vm, const char *dir, const char *seed,
                const struct ib_cluster_state *s, struct strv *ret);
/* Is pid alive and a QEMU of this cluster directory (its command line names dir)? */
int ib_vm_alive(int pid, const char *dir);
/* Stop a process of this cluster: "quit" through the monitor socket (may be NULL), then
 * SIGTERM, then SIGKILL, each with a bound. Returns once it is gone. */
void ib_vm_stop(int pid, const char *dir, const char *monitor);

/* ---- checks.c: the answers of `cluster status`'s role checks ---- */

/* Node name's state in the output of `kubectl get nodes -o json`: "Ready", "NotReady", "not
 * joined" (absent from the list); NULL when the text is not a node list (no control plane
 * answered). */
const char *ib_node_state(const char *nodes_json, const char *name);
/* The tooling host's answer: `systemctl is-active` of the stack's unit on the first line,
 * then each compose container's state -> "active, 11/12 containers running". Caller frees. */
char *ib_tooling_state(const char *out);
