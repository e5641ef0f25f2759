/* state.c: DIR/state.json: a local cluster's machines, their processes and ports. */
#include "cluster/cluster.h"

#include "util/fs.h"
#include "util/json.h"
#include "util/jsonr.h"
#include "util/strbuf.h"

#define STATE_MAX (1u << 20)

char *ib_cluster_state_json(const struct ib_cluster_state *s)
{
	struct strbuf sb = STRBUF_INIT;
	struct json j;
	json_init(&j, &sb, 1);
	json_obj_begin(&j, NULL);
	json_int(&j, "version", 1);
	json_str(&j, "accel", s->accel);
	json_str(&j, "firmware", s->firmware);
	json_int(&j, "hub_pid", s->hub_pid);
	json_int(&j, "hub_port", s->hub_port);
	json_arr_begin(&j, "hosts");
	for (size_t i = 0; i < s->n_vms; i++) {
		const struct ib_vm *v = &s->vms[i];
		json_obj_begin(&j, NULL);
		json_str(&j, "name", v->name);
		json_str(&j, "role", v->role);
		json_str(&j, "address", v->address);
		json_str(&j, "mac", v->mac);
		json_str(&j, "uplink_mac", v->uplink_mac);
		json_int(&j, "pid", v->pid);
		json_int(&j, "link_port", v->link_port);
		json_int(&j, "ssh_port", v->ssh_port);
		json_int(&j, "memory", v->memory);
		json_int(&j, "cpus", v->cpus);
		json_arr_begin(&j, "forwards");
		for (size_t k = 0; k < v->n_fwd; k++) {
			json_obj_begin(&j, NULL);
			json_int(&j, "host_port", v->fwd[k].host_port);
			json_int(&j, "guest_port", v->fwd[k].guest_port);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	sb_addc(&sb, '\n');
	return sb_take(&sb);
}

/* An integer member in [lo, hi]; -1 when absent, not an integer or out of range. */
static int get_int(const struct jsonr *o, const char *key, int lo, int hi, int *ret)
{
	const struct jsonr *v = jsonr_get_type(o, key, JSONR_NUMBER);
	if (!v || !v->is_int || v->integer < lo || v->integer > hi)
		return -1;
	*ret = (int)v->integer;
	return 0;
}

static int get_str(const struct jsonr *o, const char *key, char *out, size_t size)
{
	const char *v = jsonr_get_str(o, key);
	if (!v || strlen(v) >= size)
		return -1;
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

static int parse_vm(const struct jsonr *o, struct ib_vm *v)
{
	if (o->type != JSONR_OBJECT || get_str(o, "name", v->name, sizeof(v->name)) < 0 ||
	    get_str(o, "role", v->role, sizeof(v->role)) < 0 ||
	    get_str(o, "address", v->address, sizeof(v->address)) < 0 ||
	    get_str(o, "mac", v->mac, sizeof(v->mac)) < 0 ||
	    get_str(o, "uplink_mac", v->uplink_mac, sizeof(v->uplink_mac)) < 0 ||
	    get_int(o, "pid", 0, 1 << 30, &v->pid) < 0 ||
	    get_int(o, "link_port", 0, 65535, &v->link_port) < 0 ||
	    get_int(o, "ssh_port", 0, 65535, &v->ssh_port) < 0 ||
	    get_int(o, "memory", 0, 1 << 22, &v->memory) < 0 ||
	    get_int(o, "cpus", 0, 1024, &v->cpus) < 0)
		return -1;
	const struct jsonr *f = jsonr_get_type(o, "forwards", JSONR_ARRAY);
	if (!f || f->n > IB_VM_MAX_FWD)
		return -1;
	for (size_t k = 0; k < f->n; k++)
		if (get_int(&f->items[k], "host_port", 1, 65535, &v->fwd[k].host_port) < 0 ||
		    get_int(&f->items[k], "guest_port", 1, 65535, &v->fwd[k].guest_port) < 0)
			return -1;
	v->n_fwd = f->n;
	return 0;
}

int ib_cluster_state_parse(struct ib_ctx *ctx, const char *what, const char *text,
                           struct ib_cluster_state *ret)
{
	_cleanup_jsonr_ struct jsonr *j = NULL;
	int r = jsonr_parse(ctx, IB_E_SPEC, what, text, strlen(text), &j);
	if (r < 0)
		return r;
	struct ib_cluster_state s;
	memset(&s, 0, sizeof(s));
	const struct jsonr *hosts = jsonr_get_type(j, "hosts", JSONR_ARRAY);
	/* A state written before firmware was recorded booted by BIOS. */
	snprintf(s.firmware, sizeof(s.firmware), "bios");
	if (j->type == JSONR_OBJECT && jsonr_get_str(j, "firmware") &&
	    get_str(j, "firmware", s.firmware, sizeof(s.firmware)) < 0)
		return ib_error(ctx, IB_E_SPEC, "%s: bad firmware", what);
	if (j->type != JSONR_OBJECT || get_str(j, "accel", s.accel, sizeof(s.accel)) < 0 ||
	    get_int(j, "hub_pid", 0, 1 << 30, &s.hub_pid) < 0 ||
	    get_int(j, "hub_port", 0, 65535, &s.hub_port) < 0 || !hosts || hosts->n > IB_VM_MAX)
		return ib_error(ctx, IB_E_SPEC, "%s: not a cluster state (accel, hub or hosts bad)",
		                what);
	for (size_t i = 0; i < hosts->n; i++)
		if (parse_vm(&hosts->items[i], &s.vms[i]) < 0)
			return ib_error(ctx, IB_E_SPEC, "%s: host %zu is missing a field or bad",
			                what, i + 1);
	s.n_vms = hosts->n;
	*ret = s;
	return 0;
}

int ib_cluster_state_write(struct ib_ctx *ctx, const char *dir, const struct ib_cluster_state *s)
{
	_cleanup_free_ char *path = ib_path_join(dir, "state.json");
	_cleanup_free_ char *text = ib_cluster_state_json(s);
	return ib_write_file_atomic(ctx, path, text, strlen(text), 0600);
}

int ib_cluster_state_read(struct ib_ctx *ctx, const char *dir, struct ib_cluster_state *ret)
{
	_cleanup_free_ char *path = ib_path_join(dir, "state.json");
	if (!ib_exists(path))
		return ib_error(
		        ctx, IB_E_USAGE,
		        "no cluster is up in '%s' (no state.json): run 'imgbuild cluster up' "
		        "first",
		        dir);
	_cleanup_free_ char *text = NULL;
	int r = ib_read_file(ctx, path, STATE_MAX, &text, NULL);
	if (r == 0)
		r = ib_cluster_state_parse(ctx, path, text, ret);
	return r;
}

const struct ib_vm *ib_cluster_state_find(const struct ib_cluster_state *s, const char *name)
{
	for (size_t i = 0; i < s->n_vms; i++)
		if (streq(s->vms[i].name, name))
			return &s->vms[i];
	return NULL;
}
