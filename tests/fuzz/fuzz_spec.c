/* fuzz_spec.c: the spec loader on one file's text: YAML reading (anchors, tags, depth and
 * duplicate keys refused), then the project and role parsers over the same tree. Paths in
 * the spec resolve against the project checkout, so the path checks run too. */
#include <stdint.h>
#include <stdlib.h>

#include "spec/spec_internal.h"

/* The project checkout (FUZZ_PROJECT, else the working directory): the seeds' paths exist
 * there, so the path checks get past "does not exist". Only read. */
static char *root;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("FUZZ_PROJECT");
	root = realpath(dir && *dir ? dir : ".", NULL);
	if (!root)
		abort();
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
