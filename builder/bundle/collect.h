/* collect.h: choosing a bundle's members for a project and some of its roles. */
#pragma once

#include <time.h>

#include "bundle.h"
#include "fetch/fetch.h"
#include "spec/spec.h"

struct ib_bundle_collect_opts {
	const struct ib_project *project;
	const struct strv *roles; /* names, resolved here */
	const struct ib_fetch_opts *fetch;
	time_t epoch; /* the root filesystems' SOURCE_DATE_EPOCH (it is in their key) */
	int with_images;
	const char *key_file; /* never bundled, even inside the project */
	const char *output;   /* the bundle: an older one in the project is not bundled */
};

/* For each role: its root filesystem's kept .debs with their index and ref (bootstrapping
 * again first when the cached one predates kept packages), and every cache entry and ref
 * an offline build of it reads; then the project directory's regular files (less dot files,
 * the output directory, the key file and the bundle itself) and, with with_images, each role's
 * outputs. Fetches what is missing unless offline. *ret sorted by path, unique; free with
 * ib_bundle_srcs_free. */
int ib_bundle_collect(struct ib_ctx *ctx, const struct ib_bundle_collect_opts *o,
                      struct ib_bundle_src **ret, size_t *ret_n);
void ib_bundle_srcs_free(struct ib_bundle_src *v, size_t n);
