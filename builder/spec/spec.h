/* spec.h: the declarative spec: a project file (imgbuild.yaml) and one file per role.
 *
 * Loading is strict: unknown keys, wrong types, missing fields, duplicate or cyclic roles
 * and paths escaping the project are errors naming file:line:column (IB_E_SPEC).
 * All paths stored here are absolute, resolved against the project root.
 */
#pragma once

#include <sys/types.h>

#include "util/ctx.h"
#include "util/template.h"

#define IB_SPEC_MAX_FILE (1u << 20) /* a spec file larger than 1 MiB is refused */

enum ib_format {
	IB_FMT_RAW = 1 << 0,
	IB_FMT_QCOW2 = 1 << 1,
};

struct ib_pos {
	const char *file; /* owned by the project (points into its file list) */
	int line, col;    /* 1-based */
};

/* One entry of a role's `files:` list. */
struct ib_file_spec {
	char *source; /* absolute path on the build host, inside the project */
	char *dest;   /* absolute path in the image, normalised, never ".." */
	mode_t mode;  /* permission bits; default 0644 for files, 0755 for directories */
	int has_mode;
	uid_t uid; /* numeric owner; names root:root map to 0:0 */
	gid_t gid;
	char *owner;  /* as written, "user:group" ("root:root" by default) */
	int template; /* `template: true`: "{{ var }}" placeholders filled from the role's vars */
	struct ib_pos pos;
};

/* One entry of a role's `vars:` mapping: values for templated files. */
struct ib_var {
	char *name;
	char *value;
	struct ib_pos pos;
};

/* One top-level key of a role's `cloud_init:` mapping, re-emitted as YAML text. */
struct ib_kv {
	char *key;
	/* A block-style YAML mapping holding just this key, ending in a newline, ready to be
	 * concatenated into a cloud.cfg.d file: "ssh_pwauth: false\n" or
	 * "growpart:\n  mode: auto\n  devices:\n  - /\n". */
	char *yaml;
};

/* One member taken out of a downloaded archive (tar, tar.gz, tgz, tar.xz, zip). */
struct ib_extract_spec {
	char *member; /* path inside the archive, normalised without "./" */
	char *dest;   /* absolute path in the image */
	mode_t mode;  /* default: the member's own mode */
	int has_mode;
	struct ib_pos pos;
};

/* A pinned download: url plus sha256 (or a published checksum file), placed in the image
 * as one file or as members extracted from it. */
struct ib_artifact {
	char *name; /* unique in a role's chain; a descendant's artifact replaces its ancestor's */
	char *url;
	char *sha256;       /* 64 lowercase hex digits, or NULL when checksum_url is set */
	char *checksum_url; /* a file holding "<hex>" or "<hex>  <name>" lines */
	char *dest;         /* the whole file's destination, or NULL with extract */
	mode_t mode;        /* for dest; default 0644 */
	int has_mode;
	struct ib_extract_spec *extract;
	size_t n_extract;
	struct ib_pos pos;
};

/* `checks:` a file must exist with this mode, owner and (optionally) content digest. */
struct ib_check_file {
	char *path;
	mode_t mode;
	int has_mode;
	uid_t uid;
	gid_t gid;
	int has_owner;
	char *sha256; /* NULL: content not checked */
	struct ib_pos pos;
};

/* `checks:` name = value pairs: sysctls, and packages with a version ("*": installed). */
struct ib_check_kv {
	char *name;
	char *value;
	struct ib_pos pos;
};

/* What `imgbuild verify` checks in a role's image besides the built-in checks. */
struct ib_checks {
	struct ib_check_file *files;
	size_t n_files;
	struct strv units; /* must be enabled */
	struct ib_check_kv *sysctls;
	size_t n_sysctls;
	struct ib_check_kv *packages;
	size_t n_packages;
};

/* `base: image:`: a role that starts from a disk image (a vendor cloud image, or one
 * imgbuild built) instead of an mmdebstrap bootstrap. */
struct ib_base_image {
	char *url;
	char *sha256;      /* 64 lowercase hex digits */
	unsigned format;   /* IB_FMT_RAW or IB_FMT_QCOW2 */
	struct ib_pos pos; /* the `image:` key */
};

struct ib_role {
	char *name;        /* `name:` or the file's base name without .yaml */
	char *path;        /* the spec file */
	struct ib_pos pos; /* where the role is defined */
	char *description;
	char *extends; /* NULL for a root role */
	struct ib_pos extends_pos;
	struct strv packages;
	struct ib_file_spec *files;
	size_t n_files;
	struct strv units;     /* `units: enable: [...]`: systemd units to enable */
	struct strv firstboot; /* absolute paths of first-boot scripts, in order */
	struct ib_kv *cloud_init;
	size_t n_cloud_init;
	uint64_t disk_size; /* bytes; 0 when not set */
	int abstract;       /* `abstract: true`: only a base for others, `all` skips it */
	struct ib_artifact *artifacts;
	size_t n_artifacts;
	struct strv images;   /* container image references, "name:tag@sha256:..." */
	size_t n_unpinned;    /* of those, pinned by tag only */
	char *first_unpinned; /* "file:line:col reference" of the first, or NULL */
	struct ib_checks checks;
	struct ib_var *vars;
	size_t n_vars;
	struct ib_base_image *base_image; /* NULL: bootstrapped with mmdebstrap */
	struct ib_pos base_pos;           /* the `base:` key */
	struct strv scripts; /* `scripts:` absolute paths, run in the image at build time */
	struct ib_pos scripts_pos;
	struct ib_pos disk_pos; /* the `disk:` key, when set */
};

struct ib_project {
	char *root; /* absolute directory holding imgbuild.yaml */
	char *path; /* absolute path of imgbuild.yaml */
	char *name;
	char *suite;           /* debian.suite, e.g. bookworm */
	char *mirror;          /* debian.mirror URL */
	char *arch;            /* debian.architecture, e.g. amd64 */
	char *variant;         /* mmdebstrap variant, default minbase */
	char *output_dir;      /* absolute */
	uint64_t disk_size;    /* default disk size in bytes */
	unsigned formats;      /* enum ib_format bits */
	struct ib_role *roles; /* sorted by name */
	size_t n_roles;
	struct strv files;      /* every spec file read, absolute; owned */
	struct strv file_names; /* the same files relative to root ("images/base.yaml") as
	                         * errors name them; ib_pos.file points into this list */
};

/* Load path (a directory holding imgbuild.yaml, or the file itself) and every role file
 * under <root>/images/. Checks extends targets and cycles. */
int ib_project_load(struct ib_ctx *ctx, const char *path, struct ib_project **ret_project);
void ib_project_free(struct ib_project *p);
const struct ib_role *ib_project_find_role(const struct ib_project *p, const char *name);

/* A role with its `extends:` chain flattened, root first. */
struct ib_resolved {
	const struct ib_role *role;
	const struct ib_role **chain; /* chain[0] is the root ancestor, chain[n_chain-1] the role */
	size_t n_chain;
	struct strv packages;        /* union, sorted, unique */
	struct ib_file_spec **files; /* ancestors first; a later entry for one dest replaces it */
	size_t n_files;
	struct strv units;         /* union, sorted, unique */
	struct strv firstboot;     /* ancestors' scripts first, duplicates dropped */
	struct ib_kv **cloud_init; /* merged by top-level key, descendant wins; sorted by key */
	size_t n_cloud_init;
	uint64_t disk_size;             /* nearest one set in the chain, else the project's */
	struct ib_artifact **artifacts; /* by name, descendant wins, ancestors' order first */
	size_t n_artifacts;
	struct strv images; /* union, sorted, unique */
	/* vars of the chain by name, descendant wins, sorted by name; plus "role". Point into
	 * the roles. */
	struct ib_tvar *vars;
	size_t n_vars;
	/* Every check of the chain, ancestors first (pointers into the roles). */
	const struct ib_checks **checks;
	size_t n_checks;
	/* The nearest `base: image:` in the chain, or NULL for a bootstrapped role. */
	const struct ib_base_image *base_image;
	struct strv scripts; /* ancestors' scripts first, duplicates dropped */
};

int ib_role_resolve(struct ib_ctx *ctx, const struct ib_project *p, const char *name,
                    struct ib_resolved **ret);
void ib_resolved_free(struct ib_resolved *r);

/* Parse "4G", "512M", "2GiB", "1073741824" into bytes. Returns 0 or -1. */
int ib_parse_size(const char *s, uint64_t *ret);
