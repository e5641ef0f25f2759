/* spec_internal.h: the YAML tree and helpers shared by the spec loader's files. */
#pragma once

#include <sys/stat.h>
#include <yaml.h>

#include "spec.h"

#define SPEC_MAX_DEPTH 64 /* deeper nesting is refused */

enum ynode_type { YN_SCALAR, YN_SEQ, YN_MAP };

/* One YAML node. The loader builds these from libyaml events rather than using its
 * document API so that anchors, aliases, tags, depth and duplicate keys can be refused
 * where they appear. */
struct ynode {
	enum ynode_type type;
	int line, col; /* 1-based */
	char *tag;     /* explicit tag as libyaml resolved it ("tag:yaml.org,2002:str"), or NULL */
	char *value;   /* scalars: NUL-terminated, may hold NULs before len */
	size_t len;
	yaml_scalar_style_t style;
	struct ynode **items; /* sequences: the items; mappings: key, value, key, value, ... */
	size_t n;             /* entries in items (twice the pairs for a mapping) */
	size_t alloc;
};

/* What a scalar means once its style and tag are taken into account. */
enum yscalar_kind { YK_NULL, YK_BOOL, YK_NUMBER, YK_STRING };

/* Parse data (a whole file) into a tree. *ret_root is NULL for a stream without any
 * document. Errors are IB_E_SPEC "display:line:col: ..." messages. Caller frees the
 * tree with ynode_free(). */
int spec_yaml_load(struct ib_ctx *ctx, const char *display, const char *data, size_t len,
                   struct ynode **ret_root);
void ynode_free(struct ynode *n);
static inline void ynode_freep(struct ynode **n)
{
	ynode_free(*n);
}
#define _cleanup_ynode_ _cleanup_(ynode_freep)

enum yscalar_kind ynode_kind(const struct ynode *n);
/* "a mapping", "a sequence", "null", "a boolean", "a number" or "a string". */
const char *ynode_describe(const struct ynode *n);

/* Emit the single pair key: value as a block-style YAML document ("key: value\n").
 * Scalar styles and explicit tags are kept so that the text reads back to the same data.
 * Caller frees *ret. */
int spec_yaml_emit_pair(struct ib_ctx *ctx, const struct ynode *key, const struct ynode *value,
                        char **ret);

/* Record "display:line:col: message" as an IB_E_SPEC error; returns -IB_E_SPEC. */
int spec_err(struct ib_ctx *ctx, const char *display, int line, int col, const char *fmt, ...)
        _printf_(5, 6);
#define spec_err_at(ctx, display, node, ...)                                                       \
	spec_err((ctx), (display), (node)->line, (node)->col, __VA_ARGS__)

/* Check extends targets and cycles over roles sorted by name. */
int spec_check_extends(struct ib_ctx *ctx, const struct ib_project *p);

/* Range allowed for a disk size anywhere in a spec. */
#define SPEC_DISK_MIN (UINT64_C(1) << 30)
#define SPEC_DISK_MAX (UINT64_C(2) << 40)

/* One spec file being parsed. */
struct spec_src {
	struct ib_ctx *ctx;
	const char *display;  /* the file as errors name it; owned by the project */
	const char *root;     /* project root after realpath() */
	const char *root_abs; /* project root as given, made absolute */
};

/* Collapse "//" and "." components and a trailing "/". With resolve_dotdot, ".." drops
 * the previous component (never above "/"); otherwise it is kept and *ret_dotdot set.
 * A relative path that cleans to nothing becomes ".". Caller frees. */
char *spec_path_clean(const char *path, int resolve_dotdot, int *ret_dotdot);
/* path equals dir or lies beneath it (both clean and absolute). */
int spec_path_inside(const char *path, const char *dir);
/* Resolve the scalar n naming a file or directory in the project: relative to the root,
 * or absolute inside it, existing, and inside the root with symlinks resolved. what
 * names it in messages ("source", "firstboot script"). Caller frees *ret_path. */
int spec_project_path(const struct spec_src *src, const struct ynode *n, const char *what,
                      char **ret_path, struct stat *ret_st);

int spec_parse_project(const struct spec_src *src, const struct ynode *root, struct ib_project *p);
/* Fill r (zeroed by the caller) from a role file; base is the file name without .yaml.
 * On error r may hold partial data: release it with spec_role_release(). */
int spec_parse_role(const struct spec_src *src, const struct ynode *root, const char *base,
                    struct ib_role *r);
void spec_role_release(struct ib_role *r);
