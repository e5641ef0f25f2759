/* fuzz_archive.c: a layer tarball (any compression libarchive detects) extracted into a
 * scratch tree the way the assembly does it (IB_EXTRACT_CONFINE: parents resolved inside the
 * tree, existing entries replaced; no device nodes). Each input gets a fresh tree, removed
 * afterwards; anything written outside it is a bug. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "rootfs/rootfs.h"
#include "util/fs.h"

/* Under $TMPDIR: run.sh points it into build-fuzz/, so a crash (which skips atexit)
 * leaves nothing in /tmp. */
static char *scratch;

static void remove_scratch(void)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ib_rm_rf(&ctx, scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	scratch = xasprintf("%s/imgbuild-fuzz-archive.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(scratch))
		abort();
	atexit(remove_scratch);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	_cleanup_free_ char *tar = ib_path_join(scratch, "layer.tar");
	_cleanup_free_ char *tree = ib_path_join(scratch, "tree");
	if (ib_write_file_atomic(&ctx, tar, data, size, 0600) < 0 ||
	    ib_mkdir_p(&ctx, tree, 0755) < 0)
		abort();
	struct ib_ctx x;
	ib_ctx_init(&x);
	ib_tree_extract(&x, tar, tree, IB_EXTRACT_CONFINE | IB_EXTRACT_NO_DEVICES);
	if (ib_rm_rf(&ctx, tree) < 0)
		abort();
	return 0;
}
