/* entries.h: the in-memory list of layer entries shared by the tar writer and the unit enabler. */
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include "layer/layer.h"

/* One tar entry before it is written. Strings are owned by the entry. */
struct lentry {
	char *path;  /* relative to the image root, no leading '/', never empty */
	mode_t type; /* S_IFREG, S_IFDIR or S_IFLNK */
	mode_t perm; /* permission bits */
	uid_t uid;
	gid_t gid;
	char *source; /* S_IFREG: host file copied at write time; NULL when data holds it */
	char *data;   /* S_IFREG: contents made by imgbuild */
	size_t len;
	char *link; /* S_IFLNK: target */
	/* Where the entry came from, for conflict messages: a files: entry (spec set, and a
	 * later one replaces an earlier one at the same path) or imgbuild itself (why set). */
	const struct ib_file_spec *spec;
	char *why;
	size_t seq; /* order of addition */
};

struct lentries {
	struct lentry *v;
	size_t n, alloc;
	size_t next_seq;
};

/* Append e (by value); the list takes its strings and sets e->seq. */
void lentries_add(struct lentries *l, struct lentry *e);
void lentries_release(struct lentries *l);
/* Sort by path (bytewise) and fold duplicates: identical entries merge, a later files:
 * entry replaces an earlier one, anything else is an IB_E_SPEC error naming both. */
int lentries_sort_merge(struct ib_ctx *ctx, struct lentries *l);
/* Binary search in a sorted, merged list; NULL when absent. */
const struct lentry *lentries_find(const struct lentries *l, const char *path);

/* Append the symlinks `systemctl enable` makes for every unit of the role to out.
 * es is the layer so far (sorted, merged), where unit files are looked up first. */
int layer_enable_units(struct ib_ctx *ctx, const struct ib_layer_opts *opts,
                       const struct lentries *es, struct lentries *out);
