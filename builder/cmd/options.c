/* options.c: the option table, the one place an option is declared: how it is spelled and
 * documented, which bit commands accept it by, and where its value goes. getopt's tables,
 * --help, --list-options (completion, the man page check) are all derived from it. */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>

#include "cli.h"
#include "cluster/cluster.h"

/* Where a value goes: a string, an int flag or an int in [lo, hi] of struct cli, or a
 * parser for the rest. */
enum opt_kind { SET_STR, SET_FLAG, SET_NUM, PARSE };
#define STR(f)           .kind = SET_STR, .field = offsetof(struct cli, f)
#define FLAG(f)          .kind = SET_FLAG, .field = offsetof(struct cli, f)
#define NUM(f, lo_, hi_) .kind = SET_NUM, .field = offsetof(struct cli, f), .lo = lo_, .hi = hi_
#define WITH(fn)         .kind = PARSE, .parse = fn

struct cli_option {
	unsigned long long bit;
	const char *flags; /* as shown in help, and parsed for getopt: "-j, --jobs N" */
	const char *help;
	enum opt_kind kind;
	size_t field;
	long lo, hi;
	int (*parse)(struct cli *cli, const char *opt, const char *arg);
};

static int number(struct cli *cli, const char *opt, const char *s, long lo, long hi, int *ret)
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

static int parse_verbose(struct cli *cli, const char *opt, const char *s)
{
	cli->verbosity++;
	return 0;
}

static int parse_quiet(struct cli *cli, const char *opt, const char *s)
{
	cli->verbosity = 0;
	return 0;
}

static int parse_memory(struct cli *cli, const char *opt, const char *s)
{
	return ib_machine_parse(&cli->ctx, opt, s, IB_MEMORY_MIN, IB_MEMORY_MAX, cli->memory);
}

static int parse_cpus(struct cli *cli, const char *opt, const char *s)
{
	return ib_machine_parse(&cli->ctx, opt, s, 1, IB_CPUS_MAX, cli->cpus);
}

/* A qemu-img size: digits and an optional K, M, G or T. */
static int parse_disk_size(struct cli *cli, const char *opt, const char *s)
{
	size_t n = strspn(s, "0123456789");
	if (n == 0 || n > 12 || (s[n] && (s[n + 1] || !strchr("KMGT", s[n]))))
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "bad value '%s' for %s: expected a size like 8G", s, opt);
	cli->disk_size = s;
	return 0;
}

static int parse_firmware(struct cli *cli, const char *opt, const char *s)
{
	if (!streq(s, "bios") && !streq(s, "uefi"))
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "bad value '%s' for %s: expected bios or uefi", s, opt);
	cli->firmware = s;
	return 0;
}

/* --copy-to is repeatable and takes comma lists. Static: lives as long as the program. */
static struct strv copy_to_regions;

static int parse_copy_to(struct cli *cli, const char *opt, const char *s)
{
	cli->copy_to = &copy_to_regions;
	const char *p = s;
	while (*p) {
		size_t n = strcspn(p, ",");
		if (n == 0)
			return ib_error(&cli->ctx, IB_E_USAGE, "empty region in %s '%s'", opt, s);
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

static const struct cli_option options[] = {
        {OPT_DIR, "-C DIR", "run as if started in DIR (where imgbuild.yaml is)", STR(dir)},
        {OPT_OUT, "-o, --output DIR", "write outputs to DIR instead of the spec's output.dir",
         STR(out)},
        {OPT_JOBS, "-j, --jobs N", "build N roles at once (default 1)", NUM(jobs, 1, 64)},
        {OPT_VERBOSE, "-v, --verbose", "say more; twice shows the output of the tools run",
         WITH(parse_verbose)},
        {OPT_QUIET, "-q, --quiet", "print errors only", WITH(parse_quiet)},
        {OPT_JSON, "--json", "print machine-readable JSON lines on stdout", FLAG(json)},
        {OPT_FORCE, "--force", "rebuild even when the inputs did not change", FLAG(force)},
        {OPT_SSH_KEY, "--ssh-key FILE", "authorize this SSH public key in the seed", STR(ssh_key)},
        {OPT_HOSTNAME, "--hostname NAME", "host name in the seed (default: the role)",
         STR(hostname)},
        {OPT_PLAN, "--plan DIR", "seed: render from the cluster plan in DIR (see cluster plan)",
         STR(plan_dir)},
        {OPT_CLUSTER_DIR, "--dir DIR", "cluster plan: the plan's directory (default OUT/cluster)",
         STR(cluster_dir)},
        {OPT_MASTER_ADDRESS, "--master-address ADDR", "cluster plan: the master's IPv4 address",
         STR(master_address)},
        {OPT_WORKERS, "--workers N", "cluster plan: number of workers, 1 to 64 (default 2)",
         NUM(workers, 1, 64)},
        {OPT_NETWORK, "--network CIDR", "cluster plan: static addresses on this private network",
         STR(network)},
        {OPT_POD_CIDR, "--pod-cidr CIDR", "cluster plan: the pod network (default: the image's)",
         STR(pod_cidr)},
        {OPT_ADDONS, "--addons LIST", "cluster plan: add-ons to turn on, e.g. istio", STR(addons)},
        {OPT_ROTATE, "--rotate", "cluster plan: new CA, token and certificate key", FLAG(rotate)},
        {OPT_MEMORY, "--memory [ROLE=]MIB",
         "cluster plan/up: memory per VM of ROLE or all (2048 master, 1024 worker, 3072 "
         "tooling)",
         WITH(parse_memory)},
        {OPT_CPUS, "--cpus [ROLE=]N", "cluster plan/up: CPUs per VM of ROLE or all (default 1)",
         WITH(parse_cpus)},
        {OPT_DISK_SIZE, "--disk-size SIZE", "cluster up: size of each VM's overlay (default 8G)",
         WITH(parse_disk_size)},
        {OPT_TIMEOUT, "--timeout SECONDS",
         "cluster up: wait this long for cloud-init (default 900)", NUM(timeout, 1, 86400)},
        {OPT_KEEP, "--keep", "cluster up: leave the VMs running when it fails", FLAG(keep)},
        {OPT_NO_TOOLING, "--no-tooling", "cluster plan/up: no tooling host", FLAG(no_tooling)},
        {OPT_FIRMWARE, "--firmware bios|uefi", "cluster up: boot by SeaBIOS or by OVMF (UEFI)",
         WITH(parse_firmware)},
        {OPT_OFFLINE, "--offline", "never touch the network; fail listing what is missing",
         FLAG(offline)},
        {OPT_MIRROR, "--mirror URL", "fetch artifacts and images from this mirror (or directory)",
         STR(mirror)},
        {OPT_ALL, "--all", "cache prune: empty the whole download cache", FLAG(all)},
        {OPT_ROLE, "--role ROLE", "verify: also check what ROLE declares under checks:", STR(role)},
        {OPT_TARGET, "--target ami", "all: then publish every role to AWS (see publish)",
         STR(target)},
        {OPT_REGION, "--region REGION", "AWS region (default: AWS_REGION, the profile's)",
         STR(region)},
        {OPT_ENDPOINT, "--endpoint-url URL", "send every AWS request to URL (moto, a proxy)",
         STR(endpoint_url)},
        {OPT_PROFILE, "--profile NAME", "AWS profile from ~/.aws/credentials and ~/.aws/config",
         STR(profile)},
        {OPT_CONCURRENCY, "--concurrency N", "snapshot blocks uploaded at once (default 64)",
         NUM(concurrency, 1, 1024)},
        {OPT_SKIP_HOLES, "--skip-holes", "leave out blocks in holes of the sparse image",
         FLAG(skip_holes)},
        {OPT_COPY_TO, "--copy-to REGION", "also copy the AMI there (repeatable, or a,b)",
         WITH(parse_copy_to)},
        {OPT_INSTANCE_TYPE, "--instance-type TYPE", "launch templates' type (default t3.medium)",
         STR(instance_type)},
        {OPT_DRY_RUN, "--dry-run", "print every AWS request, secrets redacted; send none",
         FLAG(dry_run)},
        {OPT_KEY, "--key FILE", "bundle: the private key (create) or public key (verify, import)",
         STR(key_file)},
        {OPT_WITH_IMAGES, "--with-images", "bundle create: also pack the built images",
         FLAG(with_images)},
        {OPT_NO_VERIFY, "--no-verify", "build, all: do not read each image back before it lands",
         FLAG(no_verify)},
        {OPT_HELP, "-h, --help", "show this help", FLAG(help)},
};

/* The options handled here, not stored: getopt values past every table index. */
enum { LONG_VERSION = 1000, LONG_LIST_CMDS, LONG_LIST_OPTS };

/* "-o, --output DIR" -> 'o'; "--json" -> 0. */
static int short_name(const char *flags)
{
	return flags[0] == '-' && flags[1] != '-' ? flags[1] : 0;
}

/* The long name's length and start ("output"), or NULL when there is none. */
static const char *long_name(const char *flags, int *len)
{
	const char *l = strstr(flags, "--");
	if (!l)
		return NULL;
	l += 2;
	*len = (int)strcspn(l, " ,");
	return l;
}

/* An option as typed: its long form ("--output"), or its short one when it has no long
 * form or want_short asks ("-o"). */
static void spelling(const char *flags, int want_short, char *buf, size_t n)
{
	int len = 0;
	const char *l = long_name(flags, &len);
	if (l && !(want_short && short_name(flags)))
		snprintf(buf, n, "--%.*s", len, l);
	else
		snprintf(buf, n, "-%c", short_name(flags));
}

/* A metavariable after the names means a value follows. */
static int takes_value(const char *flags)
{
	int len = 0;
	const char *l = long_name(flags, &len);
	return strchr(l ? l : flags, ' ') != NULL;
}

static void print_options(FILE *f, unsigned long long mask)
{
	for (size_t i = 0; i < ARRAY_SIZE(options); i++)
		if (options[i].bit & mask)
			fprintf(f, "  %-22s %s\n", options[i].flags, options[i].help);
}

void cli_usage_all(FILE *f)
{
	fprintf(f, "usage: imgbuild [options] COMMAND [args]\n\n"
	           "Build bootable disk images (raw, qcow2) from a declarative YAML spec.\n\n"
	           "commands:\n");
	for (const struct command *c = commands; c->name; c++)
		if (!c->hidden)
			fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f, "\noptions (see 'imgbuild help COMMAND' for which apply):\n");
	print_options(f, ~0ULL);
	fprintf(f, "  %-22s %s\n", "--version", "print the version");
	fprintf(f, "\nexit status: 0 ok, 1 build failure, 2 bad usage or bad spec\n"
	           "(diff: 0 the same, 1 different, 2 trouble)\n");
}

void cli_usage(FILE *f, const struct command *c)
{
	fprintf(f, "usage: imgbuild %s [options]%s%s\n\n%s\n\noptions:\n", c->name,
	        *c->args ? " " : "", c->args, c->summary);
	print_options(f, c->opts);
}

const struct command *cli_find_command(const char *name)
{
	for (const struct command *c = commands; c->name; c++)
		if (streq(c->name, name))
			return c;
	return NULL;
}

/* One option per line, the long form (the short one when there is none): for the bash
 * completion and the man page check. */
static void list_options(const char *name)
{
	const struct command *c = cli_find_command(name);
	char spelt[32];
	for (size_t i = 0; c && i < ARRAY_SIZE(options); i++) {
		if (!(c->opts & options[i].bit))
			continue;
		spelling(options[i].flags, 0, spelt, sizeof(spelt));
		printf("%s\n", spelt);
	}
}

const char *cli_option_flags(unsigned long long bit)
{
	for (size_t i = 0; i < ARRAY_SIZE(options); i++)
		if (options[i].bit & bit)
			return options[i].flags;
	return NULL;
}

/* Store one option's value. Messages name it short when it has a short form ("-j"). */
static int apply(struct cli *cli, const struct cli_option *o, const char *arg)
{
	char opt[32];
	spelling(o->flags, 1, opt, sizeof(opt));
	void *field = (char *)cli + o->field;
	switch (o->kind) {
	case SET_STR: *(const char **)field = arg; return 0;
	case SET_FLAG: *(int *)field = 1; return 0;
	case SET_NUM: return number(cli, opt, arg, o->lo, o->hi, field);
	case PARSE: return o->parse(cli, opt, arg);
	}
	return 0;
}

int cli_parse_options(struct cli *cli, int argc, char **argv, unsigned long long *used)
{
	/* Long names point into the table's strings, so they are copied out once. */
	static char names[ARRAY_SIZE(options)][32];
	static struct option longs[ARRAY_SIZE(options) + 4];
	char shorts[2 * ARRAY_SIZE(options) + 1];
	size_t nl = 0, ns = 0;
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		const char *flags = options[i].flags;
		int has_arg = takes_value(flags), s = short_name(flags), len = 0;
		const char *l = long_name(flags, &len);
		if (s) {
			shorts[ns++] = (char)s;
			if (has_arg)
				shorts[ns++] = ':';
		}
		if (l) {
			snprintf(names[i], sizeof(names[i]), "%.*s", len, l);
			longs[nl++] =
			        (struct option){names[i], has_arg ? required_argument : no_argument,
			                        NULL, s ? s : 256 + (int)i};
		}
	}
	shorts[ns] = '\0';
	longs[nl++] = (struct option){"version", no_argument, NULL, LONG_VERSION};
	/* For the bash completion, so that it never falls out of step with this table. */
	longs[nl++] = (struct option){"list-commands", no_argument, NULL, LONG_LIST_CMDS};
	longs[nl++] = (struct option){"list-options", required_argument, NULL, LONG_LIST_OPTS};
	longs[nl] = (struct option){NULL, 0, NULL, 0};

	int c;
	/* No "+": options are accepted before and after the command. */
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct cli_option *o = NULL;
		if (c >= 256 && c < 256 + (int)ARRAY_SIZE(options))
			o = &options[c - 256];
		for (size_t i = 0; !o && c < 256 && i < ARRAY_SIZE(options); i++)
			if (short_name(options[i].flags) == c)
				o = &options[i];
		if (o) {
			*used |= o->bit;
			int r = apply(cli, o, optarg);
			if (r < 0)
				return r;
			continue;
		}
		switch (c) {
		case LONG_VERSION: printf("imgbuild %s\n", IMGBUILD_VERSION); return 1;
		case LONG_LIST_CMDS:
			for (const struct command *k = commands; k->name; k++)
				if (!k->hidden)
					printf("%s\n", k->name);
			return 1;
		case LONG_LIST_OPTS: list_options(optarg); return 1;
		default:
			return ib_error(&cli->ctx, IB_E_USAGE,
			                "bad option (see 'imgbuild --help')");
		}
	}
	return 0;
}
