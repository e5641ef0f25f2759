/* fetchtool.c: the downloader driven from scripts (bench/fetch.sh, tests); not installed.
 *
 *   fetchtool CACHE_DIR [-j N] [-r RETRIES] [--offline] [--mirror URL|DIR] [-v] < items
 *
 * Each input line is "URL SHA256" or "URL - CHECKSUM_URL". Prints one line per item
 * ("ok <sha256> <path> fetched|cached" or "FAIL <message>"), then on stderr the seconds,
 * bytes and peak resident memory. Exit 0 when every item succeeded, 1 otherwise, 2 on
 * bad usage.
 */
#include <getopt.h>
#include <sys/resource.h>

#include "fetch/fetch.h"
#include "util/fs.h"

static void on_log(struct ib_ctx *ctx, enum ib_log_level lvl, const char *msg, void *data)
{
	int verbose = *(int *)data;
	if (lvl <= IB_LOG_WARN || verbose)
		fprintf(stderr, "fetchtool: %s\n", msg);
}

int main(int argc, char **argv)
{
	struct ib_fetch_opts o;
	ib_fetch_opts_init(&o);
	int verbose = 0, c;
	static const struct option longs[] = {{"offline", no_argument, NULL, 'O'},
	                                      {"mirror", required_argument, NULL, 'm'},
	                                      {NULL, 0, NULL, 0}};
	while ((c = getopt_long(argc, argv, "j:r:v", longs, NULL)) != -1) {
		switch (c) {
		case 'j': o.parallel = atoi(optarg); break;
		case 'r': o.retries = atoi(optarg); break;
		case 'v': verbose = 1; break;
		case 'O': o.offline = 1; break;
		case 'm': o.mirror = optarg; break;
		default: return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: fetchtool CACHE_DIR [-j N] [-r RETRIES] [--offline] "
		                "[--mirror M] [-v] < 'URL SHA256' lines\n");
		return 2;
	}
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ctx.log = on_log;
	ctx.cb_data = &verbose;
	struct ib_cas cas;
	if (ib_cas_open(&ctx, argv[optind], &cas) < 0) {
		fprintf(stderr, "fetchtool: %s\n", ctx.err);
		return 1;
	}

	struct ib_fetch_item *items = NULL;
	struct strv fields = {0};
	size_t n = 0, alloc = 0;
	char line[8192];
	while (fgets(line, sizeof(line), stdin)) {
		char *save = NULL, *u = strtok_r(line, " \t\n", &save);
		char *h = u ? strtok_r(NULL, " \t\n", &save) : NULL;
		char *cu = h ? strtok_r(NULL, " \t\n", &save) : NULL;
		if (!u || *u == '#')
			continue;
		if (n == alloc)
			items = xrealloc(items, (alloc = alloc ? 2 * alloc : 64) * sizeof(*items));
		struct ib_fetch_item *it = &items[n++];
		memset(it, 0, sizeof(*it));
		strv_push(&fields, u);
		it->url = fields.v[fields.n - 1];
		if (h && !streq(h, "-")) {
			strv_push(&fields, h);
			it->sha256 = fields.v[fields.n - 1];
		}
		if (cu) {
			strv_push(&fields, cu);
			it->checksum_url = fields.v[fields.n - 1];
		}
	}
	/* (strv_push copies; its array may move, the strings it points to do not.) */

	double t0 = ib_now();
	int r = ib_fetch_all(&ctx, &cas, &o, items, n);
	double t = ib_now() - t0;
	unsigned long long bytes = 0;
	for (size_t i = 0; i < n; i++) {
		if (items[i].rc == 0) {
			printf("ok %s %s %s\n", items[i].digest, items[i].path,
			       items[i].cached ? "cached" : "fetched");
			long long s = ib_file_size(items[i].path);
			bytes += s > 0 ? (unsigned long long)s : 0;
		} else {
			printf("FAIL %s\n", items[i].err);
		}
		ib_fetch_item_release(&items[i]);
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "fetchtool: %zu items, %llu bytes in %.3f s, peak RSS %ld KiB\n", n, bytes,
	        t, ru.ru_maxrss);
	if (r < 0)
		fprintf(stderr, "fetchtool: error: %s\n", ctx.err);
	free(items);
	strv_release(&fields);
	ib_cas_release(&cas);
	return r < 0 ? 1 : 0;
}
