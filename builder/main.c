/* main.c: option parsing, the command table, signal handling and dispatch. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>

#include "cluster/cluster.h"
#include "cmd/cli.h"
#include "util/proc.h"
#include "util/tmpreg.h"

const struct command commands[] = {
        {"all", cmd_all_target, "", "build every role that is not abstract",
         OPT_BUILD | OPT_TARGET | OPT_AWS, 0},
        {"build", cmd_build, "ROLE...", "build the named roles", OPT_BUILD, 0},
        {"list", cmd_list, "", "list the roles of the project", OPT_COMMON | OPT_JSON, 0},
        {"validate", cmd_validate, "", "check the spec without building anything", OPT_COMMON, 0},
        {"seed", cmd_seed, "ROLE", "write a NoCloud seed image for booting ROLE locally",
         OPT_COMMON | OPT_OUT | OPT_SSH_KEY | OPT_HOSTNAME | OPT_PLAN, 0},
        {"cluster", cmd_cluster, "plan|up|status|ssh NAME|logs NAME|down",
         "plan a kubeadm cluster (CA, token, seeds); boot it locally under QEMU",
         OPT_COMMON | OPT_CLUSTER | OPT_CLUSTER_UP | OPT_JSON, 0},
        {"fetch", cmd_fetch, "", "fill the cache with what every role needs, build nothing",
         OPT_COMMON | OPT_OFFLINE | OPT_MIRROR, 0},
        {"cache", cmd_cache, "ls|verify|prune", "list, verify or prune the download cache",
         OPT_COMMON | OPT_JSON | OPT_ALL, 0},
        {"verify", cmd_verify, "IMAGE",
         "check an image read-only (libguestfs): boot, sealing, role",
         OPT_COMMON | OPT_JSON | OPT_ROLE, 0},
        {"diff", cmd_diff, "A B",
         "name the files that differ between two images (libguestfs; exit 1 if any)",
         OPT_COMMON | OPT_JSON, 0},
        {"publish", cmd_publish, "[ROLE...]",
         "upload built images to AWS as AMIs with their launch templates",
         OPT_COMMON | OPT_OUT | OPT_JSON | OPT_AWS, 0},
        {"key", cmd_key, "generate PREFIX",
         "make an Ed25519 key pair for signing bundles (PREFIX.key, PREFIX.pub)", OPT_COMMON, 0},
        {"bundle", cmd_bundle, "create [ROLE...]|verify FILE|import FILE",
         "pack (-o FILE), check, or import (-o DIR: also the project) a signed bundle "
         "for air-gapped builds",
         OPT_COMMON | OPT_OUT | OPT_KEY | OPT_WITH_IMAGES | OPT_OFFLINE | OPT_MIRROR, 0},
        {"help", cmd_help, "[COMMAND]", "show help for imgbuild or one command", OPT_HELP, 0},
        /* Run by a build as a normal user inside a user namespace (pipeline/assemble.h). */
        {"__assemble", cmd_assemble, "KEY=VALUE...", "assemble a role in a user namespace",
         OPT_COMMON, 1},
        /* Run by `cluster up`: the cluster's private network, a UDP hub. */
        {"__hub", cmd_hub, "DIR PORT...", "relay a local cluster's private network", OPT_COMMON, 1},
        {NULL, NULL, NULL, NULL, 0, 0},
};

const struct option_doc option_docs[] = {
        {OPT_DIR, "-C DIR", "run as if started in DIR (where imgbuild.yaml is)"},
        {OPT_OUT, "-o, --output DIR", "write outputs to DIR instead of the spec's output.dir"},
        {OPT_JOBS, "-j, --jobs N", "build N roles at once (default 1)"},
        {OPT_VERBOSE, "-v, --verbose", "say more; twice shows the output of the tools run"},
        {OPT_QUIET, "-q, --quiet", "print errors only"},
        {OPT_JSON, "--json", "print machine-readable JSON lines on stdout"},
        {OPT_FORCE, "--force", "rebuild even when the inputs did not change"},
        {OPT_SSH_KEY, "--ssh-key FILE", "authorize this SSH public key in the seed"},
        {OPT_HOSTNAME, "--hostname NAME", "host name in the seed (default: the role)"},
        {OPT_PLAN, "--plan DIR", "seed: render from the cluster plan in DIR (see cluster plan)"},
        {OPT_CLUSTER_DIR, "--dir DIR", "cluster plan: the plan's directory (default OUT/cluster)"},
        {OPT_MASTER_ADDRESS, "--master-address ADDR", "cluster plan: the master's IPv4 address"},
        {OPT_WORKERS, "--workers N", "cluster plan: number of workers, 1 to 64 (default 2)"},
        {OPT_NETWORK, "--network CIDR", "cluster plan: static addresses on this private network"},
        {OPT_POD_CIDR, "--pod-cidr CIDR", "cluster plan: the pod network (default: the image's)"},
        {OPT_ADDONS, "--addons LIST", "cluster plan: add-ons to turn on, e.g. istio"},
        {OPT_ROTATE, "--rotate", "cluster plan: new CA, token and certificate key"},
        {OPT_MEMORY, "--memory [ROLE=]MIB",
         "cluster plan/up: memory per VM of ROLE or all (2048 master, 1024 worker, 3072 "
         "tooling)"},
        {OPT_CPUS, "--cpus [ROLE=]N", "cluster plan/up: CPUs per VM of ROLE or all (default 1)"},
        {OPT_DISK_SIZE, "--disk-size SIZE", "cluster up: size of each VM's overlay (default 8G)"},
        {OPT_TIMEOUT, "--timeout SECONDS",
         "cluster up: wait this long for cloud-init (default 900)"},
        {OPT_KEEP, "--keep", "cluster up: leave the VMs running when it fails"},
        {OPT_NO_TOOLING, "--no-tooling", "cluster plan/up: no tooling host"},
        {OPT_FIRMWARE, "--firmware bios|uefi", "cluster up: boot by SeaBIOS or by OVMF (UEFI)"},
        {OPT_OFFLINE, "--offline", "never touch the network; fail listing what is missing"},
        {OPT_MIRROR, "--mirror URL", "fetch artifacts and images from this mirror (or directory)"},
        {OPT_ALL, "--all", "cache prune: empty the whole download cache"},
        {OPT_ROLE, "--role ROLE", "verify: also check what ROLE declares under checks:"},
        {OPT_TARGET, "--target ami", "all: then publish every role to AWS (see publish)"},
        {OPT_REGION, "--region REGION", "AWS region (default: AWS_REGION, the profile's)"},
        {OPT_ENDPOINT, "--endpoint-url URL", "send every AWS request to URL (moto, a proxy)"},
        {OPT_PROFILE, "--profile NAME", "AWS profile from ~/.aws/credentials and ~/.aws/config"},
        {OPT_CONCURRENCY, "--concurrency N", "snapshot blocks uploaded at once (default 64)"},
        {OPT_SKIP_HOLES, "--skip-holes", "leave out blocks in holes of the sparse image"},
        {OPT_COPY_TO, "--copy-to REGION", "also copy the AMI there (repeatable, or a,b)"},
        {OPT_INSTANCE_TYPE, "--instance-type TYPE", "launch templates' type (default t3.medium)"},
        {OPT_DRY_RUN, "--dry-run", "print every AWS request, secrets redacted; send none"},
        {OPT_KEY, "--key FILE", "bundle: the private key (create) or public key (verify, import)"},
        {OPT_WITH_IMAGES, "--with-images", "bundle create: also pack the built images"},
        {OPT_NO_VERIFY, "--no-verify", "build, all: do not read each image back before it lands"},
        {OPT_HELP, "-h, --help", "show this help"},
        {0, NULL, NULL},
};

enum {
	LONG_JSON = 256,
	LONG_FORCE,
	LONG_SSH_KEY,
	LONG_HOSTNAME,
	LONG_VERSION,
	LONG_LIST_CMDS,
	LONG_LIST_OPTS,
	LONG_OFFLINE,
	LONG_MIRROR,
	LONG_ALL,
	LONG_REGION,
	LONG_ENDPOINT,
	LONG_PROFILE,
	LONG_CONCURRENCY,
	LONG_SKIP_HOLES,
	LONG_COPY_TO,
	LONG_INSTANCE_TYPE,
	LONG_DRY_RUN,
	LONG_TARGET,
	LONG_ROLE,
	LONG_PLAN,
	LONG_CLUSTER_DIR,
	LONG_MASTER_ADDRESS,
	LONG_WORKERS,
	LONG_NETWORK,
	LONG_POD_CIDR,
	LONG_ADDONS,
	LONG_ROTATE,
	LONG_MEMORY,
	LONG_CPUS,
	LONG_DISK_SIZE,
	LONG_TIMEOUT,
	LONG_KEEP,
	LONG_NO_TOOLING,
	LONG_KEY,
	LONG_WITH_IMAGES,
	LONG_FIRMWARE,
	LONG_NO_VERIFY,
};

static const struct option long_opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"jobs", required_argument, NULL, 'j'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"json", no_argument, NULL, LONG_JSON},
        {"force", no_argument, NULL, LONG_FORCE},
        {"ssh-key", required_argument, NULL, LONG_SSH_KEY},
        {"hostname", required_argument, NULL, LONG_HOSTNAME},
        {"offline", no_argument, NULL, LONG_OFFLINE},
        {"mirror", required_argument, NULL, LONG_MIRROR},
        {"all", no_argument, NULL, LONG_ALL},
        {"role", required_argument, NULL, LONG_ROLE},
        {"region", required_argument, NULL, LONG_REGION},
        {"endpoint-url", required_argument, NULL, LONG_ENDPOINT},
        {"profile", required_argument, NULL, LONG_PROFILE},
        {"concurrency", required_argument, NULL, LONG_CONCURRENCY},
        {"skip-holes", no_argument, NULL, LONG_SKIP_HOLES},
        {"copy-to", required_argument, NULL, LONG_COPY_TO},
        {"instance-type", required_argument, NULL, LONG_INSTANCE_TYPE},
        {"dry-run", no_argument, NULL, LONG_DRY_RUN},
        {"target", required_argument, NULL, LONG_TARGET},
        {"plan", required_argument, NULL, LONG_PLAN},
        {"dir", required_argument, NULL, LONG_CLUSTER_DIR},
        {"master-address", required_argument, NULL, LONG_MASTER_ADDRESS},
        {"workers", required_argument, NULL, LONG_WORKERS},
        {"network", required_argument, NULL, LONG_NETWORK},
        {"pod-cidr", required_argument, NULL, LONG_POD_CIDR},
        {"addons", required_argument, NULL, LONG_ADDONS},
        {"rotate", no_argument, NULL, LONG_ROTATE},
        {"memory", required_argument, NULL, LONG_MEMORY},
        {"cpus", required_argument, NULL, LONG_CPUS},
        {"disk-size", required_argument, NULL, LONG_DISK_SIZE},
        {"timeout", required_argument, NULL, LONG_TIMEOUT},
        {"keep", no_argument, NULL, LONG_KEEP},
        {"no-tooling", no_argument, NULL, LONG_NO_TOOLING},
        {"key", required_argument, NULL, LONG_KEY},
        {"with-images", no_argument, NULL, LONG_WITH_IMAGES},
        {"firmware", required_argument, NULL, LONG_FIRMWARE},
        {"no-verify", no_argument, NULL, LONG_NO_VERIFY},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, LONG_VERSION},
        /* For the bash completion, so that it never falls out of step with this table. */
        {"list-commands", no_argument, NULL, LONG_LIST_CMDS},
        {"list-options", required_argument, NULL, LONG_LIST_OPTS},
        {NULL, 0, NULL, 0},
};

static void usage_all(FILE *f)
{
	fprintf(f, "usage: imgbuild [options] COMMAND [args]\n\n"
	           "Build bootable disk images (raw, qcow2) from a declarative YAML spec.\n\n"
	           "commands:\n");
	for (const struct command *c = commands; c->name; c++)
		if (!c->hidden)
			fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f, "\noptions (see 'imgbuild help COMMAND' for which apply):\n");
	for (const struct option_doc *o = option_docs; o->flags; o++)
		fprintf(f, "  %-22s %s\n", o->flags, o->help);
	fprintf(f, "  %-22s %s\n", "--version", "print the version");
	fprintf(f, "\nexit status: 0 ok, 1 build failure, 2 bad usage or bad spec\n"
	           "(diff: 0 the same, 1 different, 2 trouble)\n");
}

void cli_usage(FILE *f, const struct command *c)
{
	fprintf(f, "usage: imgbuild %s [options]%s%s\n\n%s\n\noptions:\n", c->name,
	        *c->args ? " " : "", c->args, c->summary);
	for (const struct option_doc *o = option_docs; o->flags; o++)
		if (c->opts & o->bit)
			fprintf(f, "  %-22s %s\n", o->flags, o->help);
}

static const struct command *find_command(const char *name)
{
	for (const struct command *c = commands; c->name; c++)
		if (streq(c->name, name))
			return c;
	return NULL;
}

int cmd_help(struct cli *cli, int argc, char **argv)
{
	if (argc < 2) {
		usage_all(stdout);
		return 0;
	}
	const struct command *c = find_command(argv[1]);
	if (!c)
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "unknown command '%s' (see 'imgbuild --help')", argv[1]);
	cli_usage(stdout, c);
	return 0;
}

static void list_options(const char *name)
{
	const struct command *c = find_command(name);
	if (!c)
		return;
	for (const struct option_doc *o = option_docs; o->flags; o++) {
		if (!(c->opts & o->bit))
			continue;
		/* Print the long form (or the short one when there is none). */
		const char *l = strstr(o->flags, "--");
		const char *s = l ? l : o->flags;
		int n = (int)strcspn(s, " ,");
		printf("%.*s\n", n, s);
	}
}

void (*volatile cli_interrupt_hook)(void);

/* SIGINT/SIGTERM arrive here, on a thread of their own, never in a handler. */
static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig, count = 0;
	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		count++;
		ib_interrupted = 1;
		ib_kill_children();
		if (count == 1) {
			/* Give the pipeline a moment to unwind and remove its own work files. */
			for (int i = 0; i < 100; i++) {
				struct timespec ts = {0, 100 * 1000 * 1000};
				nanosleep(&ts, NULL);
			}
		}
		if (cli_interrupt_hook)
			cli_interrupt_hook();
		ib_commit_lock();
		ib_tmp_cleanup_all();
		fprintf(stderr, "\nimgbuild: error: interrupted by signal %d\n", sig);
		_exit(1);
	}
	return NULL;
}

static int parse_jobs(struct cli *cli, const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 64)
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "bad value '%s' for -j: expected a number from 1 to 64", s);
	cli->jobs = (int)v;
	return 0;
}

static int parse_concurrency(struct cli *cli, const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 1024)
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "bad value '%s' for --concurrency: expected 1 to 1024", s);
	cli->concurrency = (int)v;
	return 0;
}

static int parse_number(struct cli *cli, const char *opt, const char *s, long lo, long hi, int *ret)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "bad value '%s' for %s: expected a number from %ld to %ld", s, opt,
		                lo, hi);
	*ret = (int)v;
	return 0;
}

/* A qemu-img size: digits and an optional K, M, G or T. */
static int parse_disk_size(struct cli *cli, const char *s)
{
	size_t n = strspn(s, "0123456789");
	if (n == 0 || n > 12 || (s[n] && (s[n + 1] || !strchr("KMGT", s[n]))))
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "bad value '%s' for --disk-size: expected a size like 8G", s);
	cli->disk_size = s;
	return 0;
}

/* --copy-to is repeatable and takes comma lists. Static: lives as long as the program. */
static struct strv copy_to_regions;

static int parse_copy_to(struct cli *cli, const char *s)
{
	cli->copy_to = &copy_to_regions;
	const char *p = s;
	while (*p) {
		size_t n = strcspn(p, ",");
		if (n == 0)
			return ib_error(&cli->ctx, IB_E_USAGE, "empty region in --copy-to '%s'", s);
		char *region = xstrndup(p, n);
		if (!strv_contains(&copy_to_regions, region))
			strv_push(&copy_to_regions, region);
		free(region);
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cli cli = {.jobs = 1, .verbosity = 1};
	unsigned long long used = 0;
	int r = 0, help = 0;

	ib_ctx_init(&cli.ctx);
	pthread_mutex_init(&cli.out_lock, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Static: the signal thread waits on it until the process ends, also while exit()
	 * runs after main has returned and its frame is gone (valgrind saw sigwait read
	 * below the stack pointer). */
	static sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_t st;
	pthread_create(&st, NULL, signal_thread, &set);

	int c;
	/* "+" would stop at the command; options are accepted before and after it. */
	while (r == 0 && (c = getopt_long(argc, argv, "C:o:j:vqh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'C':
			cli.dir = optarg;
			used |= OPT_DIR;
			break;
		case 'o':
			cli.out = optarg;
			used |= OPT_OUT;
			break;
		case 'j':
			r = parse_jobs(&cli, optarg);
			used |= OPT_JOBS;
			break;
		case 'v':
			cli.verbosity++;
			used |= OPT_VERBOSE;
			break;
		case 'q':
			cli.verbosity = 0;
			used |= OPT_QUIET;
			break;
		case 'h':
			help = 1;
			used |= OPT_HELP;
			break;
		case LONG_JSON:
			cli.json = 1;
			used |= OPT_JSON;
			break;
		case LONG_FORCE:
			cli.force = 1;
			used |= OPT_FORCE;
			break;
		case LONG_SSH_KEY:
			cli.ssh_key = optarg;
			used |= OPT_SSH_KEY;
			break;
		case LONG_HOSTNAME:
			cli.hostname = optarg;
			used |= OPT_HOSTNAME;
			break;
		case LONG_OFFLINE:
			cli.offline = 1;
			used |= OPT_OFFLINE;
			break;
		case LONG_MIRROR:
			cli.mirror = optarg;
			used |= OPT_MIRROR;
			break;
		case LONG_ALL:
			cli.all = 1;
			used |= OPT_ALL;
			break;
		case LONG_ROLE:
			cli.role = optarg;
			used |= OPT_ROLE;
			break;
		case LONG_REGION:
			cli.region = optarg;
			used |= OPT_REGION;
			break;
		case LONG_ENDPOINT:
			cli.endpoint_url = optarg;
			used |= OPT_ENDPOINT;
			break;
		case LONG_PROFILE:
			cli.profile = optarg;
			used |= OPT_PROFILE;
			break;
		case LONG_CONCURRENCY:
			r = parse_concurrency(&cli, optarg);
			used |= OPT_CONCURRENCY;
			break;
		case LONG_SKIP_HOLES:
			cli.skip_holes = 1;
			used |= OPT_SKIP_HOLES;
			break;
		case LONG_COPY_TO:
			r = parse_copy_to(&cli, optarg);
			used |= OPT_COPY_TO;
			break;
		case LONG_INSTANCE_TYPE:
			cli.instance_type = optarg;
			used |= OPT_INSTANCE_TYPE;
			break;
		case LONG_DRY_RUN:
			cli.dry_run = 1;
			used |= OPT_DRY_RUN;
			break;
		case LONG_TARGET:
			cli.target = optarg;
			used |= OPT_TARGET;
			break;
		case LONG_PLAN:
			cli.plan_dir = optarg;
			used |= OPT_PLAN;
			break;
		case LONG_CLUSTER_DIR:
			cli.cluster_dir = optarg;
			used |= OPT_CLUSTER_DIR;
			break;
		case LONG_MASTER_ADDRESS:
			cli.master_address = optarg;
			used |= OPT_MASTER_ADDRESS;
			break;
		case LONG_WORKERS:
			r = parse_number(&cli, "--workers", optarg, 1, 64, &cli.workers);
			used |= OPT_WORKERS;
			break;
		case LONG_NETWORK:
			cli.network = optarg;
			used |= OPT_NETWORK;
			break;
		case LONG_POD_CIDR:
			cli.pod_cidr = optarg;
			used |= OPT_POD_CIDR;
			break;
		case LONG_ADDONS:
			cli.addons = optarg;
			used |= OPT_ADDONS;
			break;
		case LONG_ROTATE:
			cli.rotate = 1;
			used |= OPT_ROTATE;
			break;
		case LONG_MEMORY:
			r = ib_machine_parse(&cli.ctx, "--memory", optarg, IB_MEMORY_MIN,
			                     IB_MEMORY_MAX, cli.memory);
			used |= OPT_MEMORY;
			break;
		case LONG_CPUS:
			r = ib_machine_parse(&cli.ctx, "--cpus", optarg, 1, IB_CPUS_MAX, cli.cpus);
			used |= OPT_CPUS;
			break;
		case LONG_DISK_SIZE:
			r = parse_disk_size(&cli, optarg);
			used |= OPT_DISK_SIZE;
			break;
		case LONG_TIMEOUT:
			r = parse_number(&cli, "--timeout", optarg, 1, 86400, &cli.timeout);
			used |= OPT_TIMEOUT;
			break;
		case LONG_KEEP:
			cli.keep = 1;
			used |= OPT_KEEP;
			break;
		case LONG_NO_TOOLING:
			cli.no_tooling = 1;
			used |= OPT_NO_TOOLING;
			break;
		case LONG_KEY:
			cli.key_file = optarg;
			used |= OPT_KEY;
			break;
		case LONG_WITH_IMAGES:
			cli.with_images = 1;
			used |= OPT_WITH_IMAGES;
			break;
		case LONG_FIRMWARE:
			if (!streq(optarg, "bios") && !streq(optarg, "uefi"))
				r = ib_error(&cli.ctx, IB_E_USAGE,
				             "bad value '%s' for --firmware: expected bios or uefi",
				             optarg);
			cli.firmware = optarg;
			used |= OPT_FIRMWARE;
			break;
		case LONG_NO_VERIFY:
			cli.no_verify = 1;
			used |= OPT_NO_VERIFY;
			break;
		case LONG_VERSION: printf("imgbuild %s\n", IMGBUILD_VERSION); return 0;
		case LONG_LIST_CMDS:
			for (const struct command *k = commands; k->name; k++)
				if (!k->hidden)
					printf("%s\n", k->name);
			return 0;
		case LONG_LIST_OPTS: list_options(optarg); return 0;
		default: r = ib_error(&cli.ctx, IB_E_USAGE, "bad option (see 'imgbuild --help')");
		}
	}
	if (r < 0)
		goto done;

	if (optind >= argc) {
		if (help) {
			usage_all(stdout);
			return 0;
		}
		usage_all(stderr);
		r = ib_error(&cli.ctx, IB_E_USAGE, "no command given");
		goto done;
	}
	const struct command *cmd = find_command(argv[optind]);
	if (!cmd) {
		r = ib_error(&cli.ctx, IB_E_USAGE, "unknown command '%s' (see 'imgbuild --help')",
		             argv[optind]);
		goto done;
	}
	if (help) {
		cli_usage(stdout, cmd);
		return 0;
	}
	unsigned long long bad = used & ~(cmd->opts | OPT_COMMON);
	if (bad) {
		for (const struct option_doc *o = option_docs; o->flags; o++)
			if (bad & o->bit) {
				r = ib_error(&cli.ctx, IB_E_USAGE,
				             "option '%s' does not apply to '%s'", o->flags,
				             cmd->name);
				break;
			}
		goto done;
	}
	if (cli.dir && chdir(cli.dir) < 0) {
		r = ib_error_errno(&cli.ctx, IB_E_USAGE, errno, "cannot change to directory '%s'",
		                   cli.dir);
		goto done;
	}
	cli.ctx.verbosity = cli.verbosity;
	cli_install_callbacks(&cli);
	r = cmd->fn(&cli, argc - optind, argv + optind);

done:
	if (r < 0) {
		if (ib_interrupted) {
			/* The signal thread reports and exits once the work is cleaned up. */
			ib_tmp_cleanup_all();
			fprintf(stderr, "imgbuild: error: interrupted\n");
			return 1;
		}
		pthread_mutex_lock(&cli.out_lock);
		if (cli.bar_active)
			fputs("\r\033[K", stderr);
		fprintf(stderr, "imgbuild: error: %s\n",
		        cli.ctx.err[0] ? cli.ctx.err : ib_strerror(-r));
		pthread_mutex_unlock(&cli.out_lock);
	}
	/* A positive result is an exit status without an error (diff: 1, "they differ"). */
	return r > 0 ? r : ib_exit_status(r);
}
