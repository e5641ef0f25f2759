/* cli.h: the command-line front: the command table, options and output helpers. */
#pragma once

#include <pthread.h>

#include "spec/spec.h"
#include "util/ctx.h"

/* Options; each command lists the ones it accepts (bit mask), which also drives --help,
 * the man page check and bash completion. */
enum {
	OPT_DIR = 1 << 0,      /* -C DIR */
	OPT_OUT = 1 << 1,      /* -o DIR */
	OPT_JOBS = 1 << 2,     /* -j N */
	OPT_VERBOSE = 1 << 3,  /* -v */
	OPT_QUIET = 1 << 4,    /* -q */
	OPT_JSON = 1 << 5,     /* --json */
	OPT_FORCE = 1 << 6,    /* --force */
	OPT_SSH_KEY = 1 << 7,  /* --ssh-key FILE */
	OPT_HOSTNAME = 1 << 8, /* --hostname NAME */
	OPT_HELP = 1 << 9,     /* -h, --help */
	OPT_OFFLINE = 1 << 10, /* --offline */
	OPT_MIRROR = 1 << 11,  /* --mirror URL|DIR */
	OPT_ALL = 1 << 12,     /* --all */
	OPT_ROLE = 1 << 13,    /* --role ROLE */
	OPT_PLAN = 1 << 14,    /* --plan DIR */
	/* cluster plan */
	OPT_CLUSTER_DIR = 1 << 15,    /* --dir DIR */
	OPT_MASTER_ADDRESS = 1 << 16, /* --master-address ADDR */
	OPT_WORKERS = 1 << 17,        /* --workers N */
	OPT_NETWORK = 1 << 18,        /* --network CIDR */
	OPT_POD_CIDR = 1 << 19,       /* --pod-cidr CIDR */
	/* publish (AWS); high bits, clear of the others' */
	OPT_REGION = 1 << 20,        /* --region REGION */
	OPT_ENDPOINT = 1 << 21,      /* --endpoint-url URL */
	OPT_PROFILE = 1 << 22,       /* --profile NAME */
	OPT_CONCURRENCY = 1 << 23,   /* --concurrency N */
	OPT_SKIP_HOLES = 1 << 24,    /* --skip-holes */
	OPT_COPY_TO = 1 << 25,       /* --copy-to REGION */
	OPT_INSTANCE_TYPE = 1 << 26, /* --instance-type TYPE */
	OPT_DRY_RUN = 1 << 27,       /* --dry-run */
	OPT_TARGET = 1 << 28,        /* --target ami */
	OPT_ADDONS = 1 << 29,        /* --addons LIST (cluster plan) */
	OPT_ROTATE = 1 << 30,        /* --rotate (cluster plan) */
};
/* cluster up: past the 32 bits of an int enum */
#define OPT_MEMORY     (1ULL << 31) /* --memory MIB */
#define OPT_CPUS       (1ULL << 32) /* --cpus N */
#define OPT_DISK_SIZE  (1ULL << 33) /* --disk-size SIZE */
#define OPT_TIMEOUT    (1ULL << 34) /* --timeout SECONDS */
#define OPT_KEEP       (1ULL << 35) /* --keep */
#define OPT_NO_TOOLING (1ULL << 36) /* --no-tooling */
/* bundle */
#define OPT_KEY         (1ULL << 37) /* --key FILE */
#define OPT_WITH_IMAGES (1ULL << 38) /* --with-images */
#define OPT_FIRMWARE    (1ULL << 39) /* --firmware bios|uefi */
/* build, all: far from the others' bits, which other commands may claim */
#define OPT_NO_VERIFY (1ULL << 50) /* --no-verify */
#define OPT_CLUSTER_UP                                                                             \
	(OPT_MEMORY | OPT_CPUS | OPT_DISK_SIZE | OPT_TIMEOUT | OPT_KEEP | OPT_NO_TOOLING |         \
	 OPT_FIRMWARE)
#define OPT_COMMON (OPT_DIR | OPT_VERBOSE | OPT_QUIET | OPT_HELP)
#define OPT_BUILD                                                                                  \
	(OPT_COMMON | OPT_OUT | OPT_JOBS | OPT_JSON | OPT_FORCE | OPT_OFFLINE | OPT_MIRROR |       \
	 OPT_NO_VERIFY)
/* publish's options */
#define OPT_AWS                                                                                    \
	(OPT_REGION | OPT_ENDPOINT | OPT_PROFILE | OPT_CONCURRENCY | OPT_SKIP_HOLES |              \
	 OPT_COPY_TO | OPT_INSTANCE_TYPE | OPT_DRY_RUN)
/* cluster plan's options */
#define OPT_CLUSTER                                                                                \
	(OPT_CLUSTER_DIR | OPT_MASTER_ADDRESS | OPT_WORKERS | OPT_NETWORK | OPT_SSH_KEY |          \
	 OPT_POD_CIDR | OPT_ADDONS | OPT_ROTATE)

struct cli {
	const char *dir; /* -C */
	const char *out; /* -o */
	int jobs;        /* -j */
	int verbosity;   /* 0 quiet, 1 normal, 2 -v, 3 -vv */
	int json;
	int force;
	const char *ssh_key;
	const char *hostname;
	int offline;        /* --offline: never touch the network */
	const char *mirror; /* --mirror */
	int all;            /* --all */
	const char *role;   /* --role */
	int tty;            /* stderr is a terminal: draw progress bars */
	struct ib_ctx ctx;
	pthread_mutex_t out_lock;
	int bar_active; /* a progress line is on screen and needs clearing */

	/* publish */
	const char *region;
	const char *endpoint_url;
	const char *profile;
	int concurrency; /* 0: the default */
	int skip_holes;
	const struct strv *copy_to; /* --copy-to regions (static storage), or NULL */
	const char *instance_type;
	int dry_run;
	const char *target; /* all --target ami */

	/* cluster plan, and seed --plan */
	const char *plan_dir;       /* seed --plan */
	const char *cluster_dir;    /* --dir */
	const char *master_address; /* --master-address */
	int workers;                /* --workers; 0: the default */
	const char *network;        /* --network */
	const char *pod_cidr;       /* --pod-cidr */
	const char *addons;         /* --addons */
	int rotate;                 /* --rotate */

	/* cluster up */
	/* --memory MiB and --cpus per role (enum ib_cluster_role); 0: the plan's */
	int memory[3];
	int cpus[3];
	const char *firmware;  /* --firmware; NULL: bios */
	const char *disk_size; /* --disk-size; NULL: 8G */
	int timeout;           /* --timeout seconds; 0: 900 */
	int keep;              /* --keep: leave a cluster that failed to come up running */
	int no_tooling;        /* --no-tooling */

	/* bundle */
	const char *key_file; /* --key */
	int with_images;      /* --with-images */
	int no_verify;        /* build, all: --no-verify */
	int help;             /* -h: show the help of the command given, or of all */
};

struct command {
	const char *name;
	int (*fn)(struct cli *cli, int argc, char **argv);
	const char *args;
	const char *summary;
	unsigned long long opts;
	int hidden; /* internal: not in --help, --list-commands, the man page or completion */
};

extern const struct command commands[];

int cmd_all(struct cli *cli, int argc, char **argv);
int cmd_build(struct cli *cli, int argc, char **argv);
int cmd_list(struct cli *cli, int argc, char **argv);
int cmd_validate(struct cli *cli, int argc, char **argv);
int cmd_seed(struct cli *cli, int argc, char **argv);
int cmd_help(struct cli *cli, int argc, char **argv);
int cmd_fetch(struct cli *cli, int argc, char **argv);
int cmd_cache(struct cli *cli, int argc, char **argv);
int cmd_verify(struct cli *cli, int argc, char **argv);
/* Returns 1 (not an error) when the images differ. */
int cmd_diff(struct cli *cli, int argc, char **argv);
int cmd_publish(struct cli *cli, int argc, char **argv);
int cmd_cluster(struct cli *cli, int argc, char **argv);
int cmd_key(struct cli *cli, int argc, char **argv);
int cmd_bundle(struct cli *cli, int argc, char **argv);
/* `all`, then `publish` with --target ami. */
int cmd_all_target(struct cli *cli, int argc, char **argv);
/* Hidden: the assembly inside a user namespace, run by a build as a normal user. */
int cmd_assemble(struct cli *cli, int argc, char **argv);
/* Hidden: a local cluster's private network (cluster up). */
int cmd_hub(struct cli *cli, int argc, char **argv);

/* Called on the signal thread on SIGINT/SIGTERM before temporary files are removed (a
 * command that started processes outliving it stops them here); NULL: none. */
extern void (*volatile cli_interrupt_hook)(void);

/* Load the project from -C (or the current directory). */
int cli_load_project(struct cli *cli, struct ib_project **ret);
/* One warning naming how many images are pinned by tag only, and the first. */
void cli_warn_unpinned(struct cli *cli, const struct ib_project *p);
struct ib_fetch_opts;
/* Download settings from --offline and --mirror. */
void cli_fetch_opts(const struct cli *cli, struct ib_fetch_opts *o);
/* Build these roles and print the summary. */
int cli_build(struct cli *cli, struct ib_project *p, const char *const *roles, size_t n);
/* ---- options.c: the option table ---- */
/* Parse every option, before and after the command, into cli; the bits of those given in
 * *used. Returns 0, 1 when an option was answered on the spot (--version, --list-*) and
 * the program ends, or an error (usage). */
int cli_parse_options(struct cli *cli, int argc, char **argv, unsigned long long *used);
/* The first option of the table among bits, as --help shows it ("-j, --jobs N"). */
const char *cli_option_flags(unsigned long long bit);
const struct command *cli_find_command(const char *name);
void cli_usage_all(FILE *f);
void cli_usage(FILE *f, const struct command *c);
/* Print a message line to stderr, clearing any progress bar first. */
void cli_message(struct cli *cli, const char *fmt, ...) _printf_(2, 3);
void cli_install_callbacks(struct cli *cli);
