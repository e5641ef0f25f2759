/* cmd_assemble.c: `imgbuild __assemble`, the assembly run inside a user namespace.
 *
 * Hidden: a build as a normal user starts it under `unshare --user --map-root-user
 * --map-auto` (pipeline/assemble.c), never a person. Arguments are KEY=VALUE words, so
 * that option parsing never touches them, and carry everything the steps need (the spec is
 * not read again):
 *   steps=rootfs,layer,disk rootfs=TAR layer=TAR work=DIR tree=DIR raw=FILE size=BYTES
 *   seed=TEXT epoch=N [manifest=FILE] result=FILE [verbosity=N]
 *   remove=DIR [verbosity=N]   remove a work directory (<out>/.imgbuild-work/<dir>)
 * The results, the error with its code and the log lines of level info and above go to the
 * result file; debug lines go to stderr, which the parent logs.
 */
#include <errno.h>

#include "cli.h"
#include "pipeline/assemble.h"
#include "util/fs.h"
#include "util/tmpreg.h"

struct args {
	const char *steps, *rootfs, *layer, *work, *tree, *raw, *size, *seed, *epoch, *result,
	        *remove, *verbosity, *manifest;
};

static int parse_args(struct ib_ctx *ctx, int argc, char **argv, struct args *a)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
#define K(k) {#k, offsetof(struct args, k)}
	        K(steps), K(rootfs), K(layer),  K(work),   K(tree),      K(raw),      K(size),
	        K(seed),  K(epoch),  K(result), K(remove), K(verbosity), K(manifest),
#undef K
	};
	for (int i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		size_t k = 0;
		for (; eq && k < ARRAY_SIZE(keys); k++)
			if (strlen(keys[k].key) == (size_t)(eq - argv[i]) &&
			    strncmp(argv[i], keys[k].key, (size_t)(eq - argv[i])) == 0)
				break;
		if (!eq || k == ARRAY_SIZE(keys))
			return ib_error(ctx, IB_E_USAGE,
			                "__assemble: bad argument '%s' (an internal command)",
			                argv[i]);
		*(const char **)((char *)a + keys[k].off) = eq + 1;
	}
	return 0;
}

static int need(struct ib_ctx *ctx, const char *val, const char *key)
{
	if (!val || !*val)
		return ib_error(ctx, IB_E_USAGE, "__assemble: missing %s=", key);
	return 0;
}

/* The log lines the parent shows again: info and above, as "<level> <message>". */
struct logbuf {
	struct strv lines;
	int verbosity;
};

static void on_log(struct ib_ctx *ctx, enum ib_log_level lvl, const char *msg, void *data)
{
	struct logbuf *lb = data;
	if (lvl <= IB_LOG_INFO) {
		strv_push_take(&lb->lines, xasprintf("%d %s", (int)lvl, msg));
		return;
	}
	if (lb->verbosity >= 3)
		fprintf(stderr, "%s\n", msg);
}

/* Remove a work directory, nothing else: it must sit in an .imgbuild-work directory. */
static int remove_work(struct ib_ctx *ctx, const char *path)
{
	_cleanup_free_ char *copy = xstrdup(path);
	char *slash = strrchr(copy, '/');
	if (path[0] != '/' || !slash || slash == copy || !slash[1] || streq(slash + 1, "..") ||
	    streq(slash + 1, "."))
		return ib_error(ctx, IB_E_USAGE, "__assemble: will not remove '%s'", path);
	*slash = '\0';
	const char *parent = strrchr(copy, '/') + 1;
	if (!streq(parent, ".imgbuild-work"))
		return ib_error(
		        ctx, IB_E_USAGE,
		        "__assemble: will not remove '%s': not in an .imgbuild-work directory",
		        path);
	return ib_rm_rf(ctx, path);
}

static int parse_num(struct ib_ctx *ctx, const char *key, const char *val, unsigned long long *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(val ? val : "", &end, 10);
	if (!val || !*val || errno || *end || val[0] == '-')
		return ib_error(ctx, IB_E_USAGE, "__assemble: bad %s='%s'", key, val ? val : "");
	*ret = v;
	return 0;
}

static int run_steps(struct ib_ctx *ctx, const struct args *a, struct ib_assemble_result *res)
{
	unsigned steps = 0;
	int r;
	if ((r = need(ctx, a->steps, "steps")) < 0)
		return r;
	_cleanup_free_ char *list = xstrdup(a->steps);
	char *save = NULL;
	for (char *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		unsigned st = ib_assemble_step_parse(s);
		if (!st)
			return ib_error(ctx, IB_E_USAGE, "__assemble: unknown step '%s'", s);
		steps |= st;
	}
	if ((r = need(ctx, a->work, "work")) < 0 || (r = need(ctx, a->tree, "tree")) < 0)
		return r;
	if ((steps & IB_ASSEMBLE_ROOTFS) && (r = need(ctx, a->rootfs, "rootfs")) < 0)
		return r;
	if ((steps & IB_ASSEMBLE_LAYER) && (r = need(ctx, a->layer, "layer")) < 0)
		return r;
	if ((steps & IB_ASSEMBLE_DISK) &&
	    ((r = need(ctx, a->raw, "raw")) < 0 || (r = need(ctx, a->seed, "seed")) < 0))
		return r;
	unsigned long long size, epoch;
	if ((r = parse_num(ctx, "size", a->size, &size)) < 0 ||
	    (r = parse_num(ctx, "epoch", a->epoch, &epoch)) < 0)
		return r;

	struct ib_assemble_opts o = {
	        .rootfs_tar = a->rootfs,
	        .layer_tar = a->layer,
	        .work = a->work,
	        .tree = a->tree,
	        .out_raw = a->raw,
	        .disk_size = size,
	        .seed = a->seed,
	        .epoch = (time_t)epoch,
	        .manifest = a->manifest,
	        .userns = 1,
	};
	/* On SIGINT/SIGTERM main() removes the tree: only this side of the namespace can.
	 * After a failure, so does this; after success the next step needs it. */
	ib_tmp_register(a->tree);
	r = ib_assemble_here(ctx, &o, steps, res);
	if (!(r < 0 && ib_interrupted))
		ib_tmp_unregister(a->tree);
	if (r < 0 && !ib_interrupted && !getenv("IMGBUILD_KEEP_WORK")) {
		struct ib_ctx quiet;
		ib_ctx_init(&quiet);
		ib_rm_rf(&quiet, a->tree);
	}
	return r;
}

int cmd_assemble(struct cli *cli, int argc, char **argv)
{
	struct ib_ctx *ctx = &cli->ctx;
	struct args a;
	memset(&a, 0, sizeof(a));
	int r = parse_args(ctx, argc, argv, &a);
	if (r < 0)
		return r;
	struct logbuf lb = {.verbosity = a.verbosity ? atoi(a.verbosity) : 1};
	ctx->log = on_log;
	ctx->progress = NULL;
	ctx->stage = NULL;
	ctx->cb_data = &lb;
	ctx->verbosity = lb.verbosity;

	if (a.remove) {
		r = remove_work(ctx, a.remove);
		strv_release(&lb.lines);
		return r;
	}
	if ((r = need(ctx, a.result, "result")) < 0)
		return r;
	struct ib_assemble_result res;
	memset(&res, 0, sizeof(res));
	r = run_steps(ctx, &a, &res);
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	int w = ib_assemble_result_write(&quiet, a.result, r, ctx->err, &res, &lb.lines);
	ib_assemble_result_release(&res);
	strv_release(&lb.lines);
	if (r == 0 && w < 0) {
		ib_error_propagate(ctx, &quiet);
		r = w;
	}
	return r;
}
