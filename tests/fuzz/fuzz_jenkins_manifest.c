/* fuzz_jenkins_manifest.c: a Jenkins plugin's META-INF/MANIFEST.MF as the layer's closure
 * check reads it (the plugin is a downloaded artifact), and the version order over what it
 * declares: every dependency's version against the plugin's own and the core's. */
#include <stdint.h>

#include "layer/jenkins.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_jenkins_plugin p;
	if (ib_jenkins_manifest_parse(&ctx, "'fuzz.jpi'", (const char *)data, size, &p) == 0) {
		for (size_t i = 0; i < p.n_deps; i++) {
			int c = ib_jenkins_version_cmp(p.deps[i].version, p.version);
			if (c != -ib_jenkins_version_cmp(p.version, p.deps[i].version))
				__builtin_trap(); /* the order must be antisymmetric */
			if (p.jenkins_version)
				(void)ib_jenkins_version_cmp(p.deps[i].version, p.jenkins_version);
		}
	}
	ib_jenkins_plugin_release(&p);
	return 0;
}
