/* jenkins.h: Jenkins plugins baked into a layer, and the closure of their dependencies.
 *
 * A plugin (.jpi or .hpi) is a zip whose META-INF/MANIFEST.MF names it (Short-Name), its
 * version (Plugin-Version), the core it needs (Jenkins-Version) and the plugins it needs
 * (Plugin-Dependencies: "id:version[;resolution:=optional]", comma-separated). Jenkins
 * does not load a plugin whose required dependency is missing or older than declared, and
 * an air-gapped host cannot download it: so every directory of a layer that holds plugins
 * must hold their whole closure, checked when the layer is built, before anything is
 * written.
 */
#pragma once

#include "layer/entries.h"
#include "util/ctx.h"

/* A manifest larger than this is not a plugin's (real ones are a few KiB). */
#define IB_JENKINS_MAX_MANIFEST (1u << 20)

struct ib_jenkins_dep {
	char *id;
	char *version; /* the lowest version that satisfies it */
	int optional;  /* resolution:=optional: only the version is checked, when present */
};

struct ib_jenkins_plugin {
	char *id;              /* Short-Name */
	char *version;         /* Plugin-Version */
	char *jenkins_version; /* Jenkins-Version, NULL when the manifest has none */
	struct ib_jenkins_dep *deps;
	size_t n_deps;
};

/* Parse the text of a plugin's MANIFEST.MF (its main section; lines end in CRLF, LF or
 * CR, a line starting with one space continues the one before). what names the plugin in
 * the one error a bad manifest gets (IB_E_SPEC, with the line number). On success *ret is
 * filled; release it with ib_jenkins_plugin_release in every case. */
int ib_jenkins_manifest_parse(struct ib_ctx *ctx, const char *what, const char *text, size_t len,
                              struct ib_jenkins_plugin *ret);
void ib_jenkins_plugin_release(struct ib_jenkins_plugin *p);

/* Jenkins' version order: the parts between '.' and '-' compare numerically when both are
 * digits, a number is newer than a word, words compare as text except the pre-release
 * ones (alpha, beta, rc, snapshot...), which are older than nothing at all, and missing
 * parts count as 0 ("1.0" = "1.0.0"). <0, 0 or >0 like strcmp. */
int ib_jenkins_version_cmp(const char *a, const char *b);

/* Read the manifest of the plugin in the zip at path (or, path NULL, in data/len). */
int ib_jenkins_plugin_read(struct ib_ctx *ctx, const char *what, const char *path, const void *data,
                           size_t len, struct ib_jenkins_plugin *ret);

/* Every directory of the layer (sorted and merged) holding .jpi or .hpi files: each file
 * is a readable plugin named after its Short-Name, and every required dependency is
 * there at its version or later, as is every optional one that is there. One IB_E_SPEC
 * error names each problem found and where each plugin came from. */
int layer_check_jenkins_plugins(struct ib_ctx *ctx, const struct lentries *l);
