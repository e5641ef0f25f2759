/* ocitool.c: OCI pulls and archives driven from scripts (tests/integration/31-oci.sh); not
 * installed.
 *
 *   ocitool pull REF CACHE_DIR OUT.tar|- [--offline] [--mirror URL|DIR] [-r RETRIES] [-v]
 *
 * Pulls REF for linux/amd64 into the cache and, unless OUT is "-", writes the image archive.
 * Prints "name", "index" (when the reference named an index), "manifest", "config" and one
 * "layer" line each, as "key value". Errors are one line on stderr, "ocitool: error: ...".
 * Exit 0 ok, 2 bad usage or bad input, 1 any other failure.
 */
#include <getopt.h>

#include "oci/oci.h"

static void on_log(struct ib_ctx *ctx, enum ib_log_level lvl, const char *msg, void *data)
{
	int verbose = *(int *)data;
	if (lvl <= IB_LOG_WARN || verbose)
		fprintf(stderr, "ocitool: %s\n", msg);
}

static int usage(void)
{
	fprintf(stderr, "usage: ocitool pull REF CACHE_DIR OUT.tar|- [--offline] [--mirror M] "
	                "[-r RETRIES] [-v]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct ib_fetch_opts o;
	ib_fetch_opts_init(&o);
	int verbose = 0, c;
	static const struct option longs[] = {{"offline", no_argument, NULL, 'O'},
	                                      {"mirror", required_argument, NULL, 'm'},
	                                      {NULL, 0, NULL, 0}};
	while ((c = getopt_long(argc, argv, "r:v", longs, NULL)) != -1) {
		switch (c) {
		case 'r': o.retries = atoi(optarg); break;
		case 'v': verbose = 1; break;
		case 'O': o.offline = 1; break;
		case 'm': o.mirror = optarg; break;
		default: return usage();
		}
	}
	if (argc - optind != 4 || !streq(argv[optind], "pull"))
		return usage();
	const char *refs = argv[optind + 1], *cache = argv[optind + 2], *out = argv[optind + 3];

	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ctx.log = on_log;
	ctx.cb_data = &verbose;
	struct ib_oci_ref ref = {0};
	struct ib_cas cas = {0};
	struct ib_oci_image img = {0};
	int r = ib_oci_ref_parse(&ctx, refs, &ref);
	if (r == 0)
		r = ib_cas_open(&ctx, cache, &cas);
	if (r == 0)
		r = ib_oci_pull(&ctx, &cas, &o, &ref, &img);
	if (r == 0 && !streq(out, "-"))
		r = ib_oci_archive_write(&ctx, &cas, &ref, &img, out);
	if (r == 0) {
		char *name = ib_oci_ref_string(&ref);
		printf("name %s\n", name);
		free(name);
		if (*img.index_digest)
			printf("index %s\n", img.index_digest);
		printf("manifest %s\nconfig %s\n", img.manifest_digest, img.config_digest);
		for (size_t i = 0; i < img.n_layers; i++)
			printf("layer %s\n", img.layers[i]);
	} else {
		fprintf(stderr, "ocitool: error: %s\n", ctx.err);
	}
	ib_oci_image_release(&img);
	ib_cas_release(&cas);
	ib_oci_ref_release(&ref);
	return ib_exit_status(r);
}
