/* checks.c: what `cluster status` makes of the answers its role checks get over SSH. */
#include "cluster/cluster.h"

#include "util/jsonr.h"
#include "util/strbuf.h"

/* The status of condition "Ready" of a node object: "True", "False", "Unknown"; or NULL. */
static const char *ready_condition(const struct jsonr *node)
{
	const struct jsonr *status = jsonr_get_type(node, "status", JSONR_OBJECT);
	const struct jsonr *conds =
	        status ? jsonr_get_type(status, "conditions", JSONR_ARRAY) : NULL;
	for (size_t i = 0; conds && i < conds->n; i++) {
		const struct jsonr *c = &conds->items[i];
		const char *type = c->type == JSONR_OBJECT ? jsonr_get_str(c, "type") : NULL;
		if (type && streq(type, "Ready"))
			return jsonr_get_str(c, "status");
	}
	return NULL;
}

const char *ib_node_state(const char *nodes_json, const char *name)
{
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	_cleanup_jsonr_ struct jsonr *j = NULL;
	if (!nodes_json ||
	    jsonr_parse(&quiet, IB_E_TOOL, "kubectl", nodes_json, strlen(nodes_json), &j) < 0)
		return NULL;
	const char *kind = j->type == JSONR_OBJECT ? jsonr_get_str(j, "kind") : NULL;
	const struct jsonr *items = jsonr_get_type(j, "items", JSONR_ARRAY);
	/* kubectl says NodeList or List, as the API server answered. */
	if (!kind || (!streq(kind, "NodeList") && !streq(kind, "List")) || !items)
		return NULL;
	for (size_t i = 0; i < items->n; i++) {
		const struct jsonr *n = &items->items[i];
		const struct jsonr *meta = n->type == JSONR_OBJECT
		                                   ? jsonr_get_type(n, "metadata", JSONR_OBJECT)
		                                   : NULL;
		const char *nm = meta ? jsonr_get_str(meta, "name") : NULL;
		if (!nm || !streq(nm, name))
			continue;
		const char *ready = ready_condition(n);
		return ready && streq(ready, "True") ? "Ready" : "NotReady";
	}
	return "not joined";
}

char *ib_tooling_state(const char *out)
{
	_cleanup_free_ char *copy = xstrdup(out ? out : "");
	char *save = NULL;
	const char *unit = NULL;
	int total = 0, running = 0;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!unit) {
			unit = l;
			continue;
		}
		total++;
		running += streq(l, "running");
	}
	if (!unit || !*unit)
		return xstrdup("unknown");
	return xasprintf("%s, %d/%d containers running", unit, running, total);
}
