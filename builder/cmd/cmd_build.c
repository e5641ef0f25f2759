/* cmd_build.c: `imgbuild all` and `imgbuild build ROLE...`, with the summary table. */
#include <sys/resource.h>

#include "cli.h"
#include "layer/layer.h"
#include "fetch/fetch.h"
#include "pipeline/build.h"
#include "util/fs.h"
#include "util/json.h"

int cli_load_project(struct cli *cli, struct ib_project **ret)
{
	return ib_project_load(&cli->ctx, ".", ret);
}

void cli_warn_unpinned(struct cli *cli, const struct ib_project *p)
{
	size_t n = 0;
	const char *first = NULL;
	for (size_t i = 0; i < p->n_roles; i++) {
		n += p->roles[i].n_unpinned;
		if (!first)
			first = p->roles[i].first_unpinned;
	}
	if (n)
		ib_log(&cli->ctx, IB_LOG_WARN,
		       "%zu image%s pinned by tag only (the first: %s): a moved tag changes the "
		       "build; pin with @sha256:<digest> (each manifest lists the digests used)",
		       n, n == 1 ? " is" : "s are", first);
}

static void human(long long bytes, char *out, size_t n)
{
	if (bytes < 0) {
		snprintf(out, n, "-");
		return;
	}
	const char *units[] = {"B", "K", "M", "G", "T"};
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, n, u ? "%.1f%s" : "%.0f%s", v, units[u]);
}

static void print_summary(struct cli *cli, const struct ib_role_result *res, size_t n)
{
	if (cli->json) {
		struct strbuf sb = STRBUF_INIT;
		struct json j;
		json_init(&j, &sb, 0);
		json_obj_begin(&j, NULL);
		json_str(&j, "event", "summary");
		json_arr_begin(&j, "roles");
		for (size_t i = 0; i < n; i++) {
			json_obj_begin(&j, NULL);
			json_str(&j, "role", res[i].role);
			json_str(&j, "result",
			         res[i].rc < 0   ? "failed"
			         : res[i].reused ? "reused"
			                         : "rebuilt");
			if (res[i].rc < 0)
				json_str(&j, "error", res[i].err);
			json_bool(&j, "rootfs_reused", res[i].rootfs_reused);
			json_str(&j, "digest", res[i].digest);
			json_int(&j, "raw_size", res[i].raw_size);
			json_int(&j, "raw_allocated", res[i].raw_alloc);
			json_int(&j, "qcow2_size", res[i].qcow2_size);
			json_obj_begin(&j, "seconds");
			for (int s = 0; s < IB_STAGE__MAX; s++)
				json_num(&j, ib_stage_name((enum ib_stage)s), res[i].seconds[s]);
			json_num(&j, "total", res[i].total);
			json_obj_end(&j);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		struct rusage ru;
		if (getrusage(RUSAGE_SELF, &ru) == 0)
			json_int(&j, "peak_rss_kib", ru.ru_maxrss);
		json_obj_end(&j);
		printf("%s\n", sb_str(&sb));
		sb_release(&sb);
		return;
	}
	if (cli->verbosity < 1)
		return;
	pthread_mutex_lock(&cli->out_lock);
	if (cli->bar_active) {
		fputs("\r\033[K", stderr);
		cli->bar_active = 0;
	}
	printf("\n%-10s %-8s %-15s %-8s", "ROLE", "RESULT", "RAW (USED)", "QCOW2");
	for (int s = 0; s < IB_STAGE__MAX; s++)
		printf(" %8s", ib_stage_name((enum ib_stage)s));
	printf(" %8s\n", "total");
	for (size_t i = 0; i < n; i++) {
		char raw[16], used[16], q[16], rawcol[40];
		human(res[i].raw_size, raw, sizeof(raw));
		human(res[i].raw_alloc, used, sizeof(used));
		human(res[i].qcow2_size, q, sizeof(q));
		snprintf(rawcol, sizeof(rawcol), "%s (%s)", raw, used);
		printf("%-10s %-8s %-15s %-8s", res[i].role,
		       res[i].rc < 0   ? "FAILED"
		       : res[i].reused ? "reused"
		                       : "rebuilt",
		       rawcol, q);
		for (int s = 0; s < IB_STAGE__MAX; s++) {
			if (res[i].seconds[s] > 0)
				printf(" %7.1fs", res[i].seconds[s]);
			else
				printf(" %8s",
				       s == IB_STAGE_ROOTFS && res[i].reused ? "cached" : "-");
		}
		printf(" %7.1fs\n", res[i].total);
	}
	pthread_mutex_unlock(&cli->out_lock);
}

void cli_fetch_opts(const struct cli *cli, struct ib_fetch_opts *o)
{
	ib_fetch_opts_init(o);
	o->offline = cli->offline;
	/* The environment too: a site's mirror is set once for every command and CI job. */
	o->mirror = cli->mirror ? cli->mirror : getenv("IMGBUILD_MIRROR");
	if (o->mirror && !*o->mirror)
		o->mirror = NULL;
	o->progress = cli->tty && !cli->json && cli->verbosity > 0;
}

int cli_build(struct cli *cli, struct ib_project *p, const char *const *roles, size_t n)
{
	/* Every role resolves (its templates render) before any work starts: a spec error is
	 * reported as such, and no role is half built because another one is wrong. */
	for (size_t i = 0; i < n; i++) {
		struct ib_resolved *res = NULL;
		int r = ib_role_resolve(&cli->ctx, p, roles[i], &res);
		ib_resolved_free(res);
		if (r < 0)
			return r;
	}
	cli_warn_unpinned(cli, p);
	time_t epoch = ib_source_date_epoch();
	if (epoch < 0)
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "SOURCE_DATE_EPOCH must be a number of seconds since 1970");
	_cleanup_free_ char *out = cli->out ? ib_abspath(cli->out) : xstrdup(p->output_dir);
	_cleanup_free_ char *cache = ib_cache_dir();
	struct ib_fetch_opts fo;
	cli_fetch_opts(cli, &fo);
	struct ib_build_opts o = {
	        .fetch = &fo,
	        .project = p,
	        .out_dir = out,
	        .cache_dir = cache,
	        .jobs = cli->jobs,
	        .force = cli->force,
	        .epoch = epoch,
	        .verify = !cli->no_verify,
	};
	struct ib_role_result *res = xcalloc(n, sizeof(*res));
	int r = ib_build_roles(&cli->ctx, &o, roles, n, res);
	/* Every failed role says why (offline, that lists everything missing); the first one
	 * is the error main prints. */
	int first = 1;
	for (size_t i = 0; i < n; i++) {
		if (res[i].rc >= 0)
			continue;
		if (!first)
			cli_message(cli, "imgbuild: error: building '%s': %s", res[i].role,
			            res[i].err);
		first = 0;
	}
	print_summary(cli, res, n);
	free(res);
	return r;
}

int cmd_all(struct cli *cli, int argc, char **argv)
{
	if (argc > 1)
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "'all' takes no arguments (did you mean 'build %s'?)", argv[1]);
	struct ib_project *p = NULL;
	int r = cli_load_project(cli, &p);
	if (r < 0)
		return r;
	struct strv roles = {0};
	for (size_t i = 0; i < p->n_roles; i++)
		if (!p->roles[i].abstract)
			strv_push(&roles, p->roles[i].name);
	if (roles.n == 0)
		r = ib_error(&cli->ctx, IB_E_SPEC, "the project has no role to build");
	else
		r = cli_build(cli, p, (const char *const *)roles.v, roles.n);
	strv_release(&roles);
	ib_project_free(p);
	return r;
}

int cmd_build(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "'build' needs at least one role (see 'imgbuild list')");
	struct ib_project *p = NULL;
	int r = cli_load_project(cli, &p);
	if (r < 0)
		return r;
	struct strv roles = {0};
	for (int i = 1; i < argc && r == 0; i++) {
		if (!ib_project_find_role(p, argv[i]))
			r = ib_error(&cli->ctx, IB_E_USAGE,
			             "unknown role '%s' (see 'imgbuild list')", argv[i]);
		else if (!strv_contains(&roles, argv[i]))
			strv_push(&roles, argv[i]);
	}
	if (r == 0)
		r = cli_build(cli, p, (const char *const *)roles.v, roles.n);
	strv_release(&roles);
	ib_project_free(p);
	return r;
}
