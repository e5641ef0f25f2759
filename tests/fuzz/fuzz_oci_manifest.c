/* fuzz_oci_manifest.c: a registry's manifest or index answer, as the pull reads it: the
 * bounded JSON reader, the document's kind, then the platform selection of an index or the
 * config and layers of a manifest (and the docker config's credentials lookup, which reads
 * the same kind of hostile JSON). */
#include <stdint.h>

#include "oci/oci_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	if (size > OCI_MANIFEST_MAX)
		return 0;
	_cleanup_jsonr_ struct jsonr *doc = NULL;
	if (jsonr_parse(&ctx, IB_E_NETWORK, "manifest", (const char *)data, size, &doc) < 0)
		return 0;

	enum oci_kind kind;
	(void)oci_manifest_media_type(doc);
	if (oci_doc_kind(&ctx, doc, "manifest", &kind) == 0) {
		/* Both readers, whatever the kind: each must refuse the other's shape cleanly. */
		struct oci_desc d;
		struct ib_ctx c1;
		ib_ctx_init(&c1);
		oci_index_select(&c1, doc, "index", &d);

		struct ib_oci_image img = {0};
		uint64_t *sizes = NULL;
		struct ib_ctx c2;
		ib_ctx_init(&c2);
		oci_manifest_parse(&c2, doc, "manifest", &img, &sizes);
		free(sizes);
		ib_oci_image_release(&img);
	}

	struct ib_ctx c3;
	ib_ctx_init(&c3);
	char *token = NULL;
	oci_token_from_json(&c3, (const char *)data, size, "token", &token);
	free(token);

	struct oci_creds creds = {0};
	struct ib_ctx c4;
	ib_ctx_init(&c4);
	oci_creds_from_config(&c4, (const char *)data, size, "config.json", "registry.example",
	                      &creds);
	oci_creds_release(&creds);
	return 0;
}
