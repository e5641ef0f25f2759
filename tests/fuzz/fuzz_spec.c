/* fuzz_spec.c: the spec loader on one file's text: YAML reading (anchors, tags, depth and
 * duplicate keys refused), then the project and role parsers over the same tree. Paths in
 * the spec resolve against a small scratch project, so the path checks run too. */
#include <stdint.h>
#include <stdlib.h>

#include "spec/spec_internal.h"
#include "util/fs.h"

static char root[] = "/tmp/imgbuild-fuzz-spec.XXXXXX";

static void remove_root(void)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ib_rm_rf(&ctx, root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	if (!mkdtemp(root))
		abort();
	atexit(remove_root);
	/* What the seeds name: a file, a directory, a script and a role directory. */
	static const char *const dirs[] = {"files", "scripts", "images"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
		_cleanup_free_ char *d = ib_path_join(root, dirs[i]);
		if (ib_mkdir_p(&ctx, d, 0755) < 0)
			abort();
	}
	static const char *const files[] = {"files/motd", "scripts/setup.sh", "firstboot.sh"};
	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
		_cleanup_free_ char *f = ib_path_join(root, files[i]);
		if (ib_write_file_atomic(&ctx, f, "x\n", 2, 0755) < 0)
			abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	if (size > IB_SPEC_MAX_FILE)
		return 0;
	_cleanup_ynode_ struct ynode *tree = NULL;
	if (spec_yaml_load(&ctx, "fuzz.yaml", (const char *)data, size, &tree) < 0)
		return 0;

	struct spec_src src = {.ctx = &ctx, .display = "fuzz.yaml", .root = root, .root_abs = root};
	struct ib_project *p = xcalloc(1, sizeof(*p));
	p->root = xstrdup(root);
	spec_parse_project(&src, tree, p);
	ib_project_free(p);

	struct ib_ctx rctx;
	ib_ctx_init(&rctx);
	src.ctx = &rctx;
	struct ib_role role = {0};
	spec_parse_role(&src, tree, "fuzz", &role);
	spec_role_release(&role);
	return 0;
}
