/* main.c: the command table, signal handling and dispatch (options: cmd/options.c). */
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

int cmd_help(struct cli *cli, int argc, char **argv)
{
	if (argc < 2) {
		cli_usage_all(stdout);
		return 0;
	}
	const struct command *c = cli_find_command(argv[1]);
	if (!c)
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "unknown command '%s' (see 'imgbuild --help')", argv[1]);
	cli_usage(stdout, c);
	return 0;
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

int main(int argc, char **argv)
{
	struct cli cli = {.jobs = 1, .verbosity = 1};
	unsigned long long used = 0;
	int r = 0;

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

	r = cli_parse_options(&cli, argc, argv, &used);
	if (r > 0)
		return 0;
	if (r < 0)
		goto done;

	if (optind >= argc) {
		if (cli.help) {
			cli_usage_all(stdout);
			return 0;
		}
		cli_usage_all(stderr);
		r = ib_error(&cli.ctx, IB_E_USAGE, "no command given");
		goto done;
	}
	const struct command *cmd = cli_find_command(argv[optind]);
	if (!cmd) {
		r = ib_error(&cli.ctx, IB_E_USAGE, "unknown command '%s' (see 'imgbuild --help')",
		             argv[optind]);
		goto done;
	}
	if (cli.help) {
		cli_usage(stdout, cmd);
		return 0;
	}
	unsigned long long bad = used & ~(cmd->opts | OPT_COMMON);
	if (bad) {
		r = ib_error(&cli.ctx, IB_E_USAGE, "option '%s' does not apply to '%s'",
		             cli_option_flags(bad), cmd->name);
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
