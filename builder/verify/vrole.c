/* vrole.c: the checks a role declares: files, enabled units, sysctl values, packages. */
#include <sys/stat.h>

#include "verify_int.h"

#define MAX_CONF        (1u << 20)
#define MAX_DPKG_STATUS (64u << 20)
#define UNIT_DIR        "/etc/systemd/system"

/* The chain's checks merged: a descendant's entry for the same path or name wins. */
struct merged {
	const struct ib_check_file **files;
	size_t n_files;
	struct strv units;
	const struct ib_check_kv **sysctls, **packages;
	size_t n_sysctls, n_packages;
};

static void merge_kv(const struct ib_check_kv ***list, size_t *n, const struct ib_check_kv *kv)
{
	for (size_t i = 0; i < *n; i++)
		if (streq((*list)[i]->name, kv->name)) {
			(*list)[i] = kv;
			return;
		}
	*list = xrealloc(*list, (*n + 1) * sizeof(**list));
	(*list)[(*n)++] = kv;
}

static void merge(const struct ib_resolved *role, struct merged *m)
{
	memset(m, 0, sizeof(*m));
	for (size_t c = 0; c < role->n_checks; c++) {
		const struct ib_checks *k = role->checks[c];
		for (size_t i = 0; i < k->n_files; i++) {
			size_t j = 0;
			while (j < m->n_files && !streq(m->files[j]->path, k->files[i].path))
				j++;
			if (j == m->n_files)
				m->files = xrealloc(m->files, ++m->n_files * sizeof(*m->files));
			m->files[j] = &k->files[i];
		}
		for (size_t i = 0; i < k->units.n; i++)
			if (!strv_contains(&m->units, k->units.v[i]))
				strv_push(&m->units, k->units.v[i]);
		for (size_t i = 0; i < k->n_sysctls; i++)
			merge_kv(&m->sysctls, &m->n_sysctls, &k->sysctls[i]);
		for (size_t i = 0; i < k->n_packages; i++)
			merge_kv(&m->packages, &m->n_packages, &k->packages[i]);
	}
}

static void merged_release(struct merged *m)
{
	free(m->files);
	strv_release(&m->units);
	free(m->sysctls);
	free(m->packages);
}

static void check_file(struct vctx *v, const struct ib_check_file *f)
{
	_cleanup_free_ char *name = xasprintf("file:%s", f->path);
	struct guestfs_statns *st = guestfs_statns(v->g, f->path);
	if (!st) {
		v_result(v, name, 0, "missing");
		return;
	}
	mode_t mode = (mode_t)st->st_mode & 07777;
	int reg = S_ISREG((mode_t)st->st_mode);
	long long uid = st->st_uid, gid = st->st_gid;
	guestfs_free_statns(st);
	struct strbuf bad = STRBUF_INIT;
	if (f->has_mode && mode != f->mode)
		sb_addf(&bad, "mode %04o, expected %04o; ", (unsigned)mode, (unsigned)f->mode);
	if (f->has_owner && (uid != (long long)f->uid || gid != (long long)f->gid))
		sb_addf(&bad, "owner %lld:%lld, expected %lld:%lld; ", uid, gid, (long long)f->uid,
		        (long long)f->gid);
	if (f->sha256) {
		_cleanup_free_ char *sum = reg ? guestfs_checksum(v->g, "sha256", f->path) : NULL;
		if (!reg)
			sb_adds(&bad, "not a regular file, so no sha256; ");
		else if (!sum)
			sb_addf(&bad, "cannot hash it: %s; ", v_err(v));
		else if (!streq(sum, f->sha256))
			sb_addf(&bad, "sha256 %s, expected %s; ", sum, f->sha256);
	}
	if (bad.len) {
		bad.buf[bad.len - 2] = '\0';
		v_result(v, name, 0, "%s", sb_str(&bad));
	} else {
		v_result(v, name, 1, "mode %04o, owner %lld:%lld%s", (unsigned)mode, uid, gid,
		         f->sha256 ? ", sha256 matches" : "");
	}
	sb_release(&bad);
}

/* Every symlink of /etc/systemd/system and of its .wants/.requires/.upholds dirs. */
struct links {
	struct strv dirs, names, targets; /* parallel */
	struct ib_unit_link *l;
	size_t n;
};

static void collect_links(struct vctx *v, const char *rel, struct links *k)
{
	_cleanup_free_ char *dir = *rel ? xasprintf(UNIT_DIR "/%s", rel) : xstrdup(UNIT_DIR);
	_cleanup_gstrv_ char **names = guestfs_ls(v->g, dir);
	if (!names)
		return;
	_cleanup_gstrv_ char **targets = guestfs_readlinklist(v->g, dir, names);
	for (size_t i = 0; names[i]; i++) {
		if (targets && targets[i] && *targets[i]) {
			strv_push(&k->dirs, rel);
			strv_push(&k->names, names[i]);
			strv_push(&k->targets, targets[i]);
		} else if (!*rel &&
		           (endswith(names[i], ".wants") || endswith(names[i], ".requires") ||
		            endswith(names[i], ".upholds"))) {
			collect_links(v, names[i], k);
		}
	}
}

static void links_release(struct links *k)
{
	strv_release(&k->dirs);
	strv_release(&k->names);
	strv_release(&k->targets);
	free(k->l);
}

static void check_units(struct vctx *v, const struct strv *units)
{
	if (!units->n)
		return;
	struct links k = {0};
	collect_links(v, "", &k);
	k.n = k.names.n;
	k.l = xcalloc(k.n + 1, sizeof(*k.l));
	for (size_t i = 0; i < k.n; i++)
		k.l[i] = (struct ib_unit_link){k.dirs.v[i], k.names.v[i], k.targets.v[i]};
	for (size_t i = 0; i < units->n; i++) {
		_cleanup_free_ char *name = xasprintf("unit:%s", units->v[i]);
		const struct ib_unit_link *by = NULL;
		enum ib_unit_state st = ib_unit_state(k.l, k.n, units->v[i], &by);
		if (st == IB_UNIT_MASKED) {
			v_result(v, name, 0, "masked (" UNIT_DIR "/%s -> /dev/null)", by->name);
			continue;
		}
		if (st != IB_UNIT_ENABLED) {
			v_result(v, name, 0,
			         "not enabled: no link to it in " UNIT_DIR "/*.wants, "
			         "*.requires or as an alias");
			continue;
		}
		/* A link to a unit file that is not there enables nothing. */
		_cleanup_free_ char *link_dir =
		        *by->dir ? xasprintf(UNIT_DIR "/%s", by->dir) : xstrdup(UNIT_DIR);
		_cleanup_free_ char *target = by->target[0] == '/'
		                                      ? xstrdup(by->target)
		                                      : xasprintf("%s/%s", link_dir, by->target);
		if (guestfs_exists(v->g, target) <= 0)
			v_result(v, name, 0, "%s/%s points to %s, which does not exist", link_dir,
			         by->name, by->target);
		else
			v_result(v, name, 1, "enabled: %s/%s -> %s", link_dir, by->name,
			         by->target);
	}
	links_release(&k);
}

/* systemd-sysctl's directories, highest precedence first. */
static const char *const sysctl_dirs[] = {"/etc/sysctl.d", "/run/sysctl.d",
                                          "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d",
                                          "/lib/sysctl.d"};

static void load_sysctl(struct vctx *v, struct ib_sysctl *s, struct strbuf *bad)
{
	struct strv names[ARRAY_SIZE(sysctl_dirs)];
	memset(names, 0, sizeof(names));
	for (size_t d = 0; d < ARRAY_SIZE(sysctl_dirs); d++) {
		if (guestfs_is_dir(v->g, sysctl_dirs[d]) <= 0)
			continue;
		_cleanup_gstrv_ char **l = guestfs_ls(v->g, sysctl_dirs[d]);
		for (size_t i = 0; l && l[i]; i++)
			strv_push(&names[d], l[i]);
	}
	struct strv files = {0};
	ib_sysctl_files(sysctl_dirs, names, ARRAY_SIZE(sysctl_dirs), &files);
	/* procps's `sysctl --system` reads /etc/sysctl.conf last; Debian links it in as
	 * /etc/sysctl.d/99-sysctl.conf for systemd. Read it once either way. */
	int have_conf = 0;
	for (size_t i = 0; i < files.n && !have_conf; i++) {
		_cleanup_free_ char *real = guestfs_realpath(v->g, files.v[i]);
		have_conf = real && streq(real, "/etc/sysctl.conf");
	}
	if (!have_conf && guestfs_is_file(v->g, "/etc/sysctl.conf") > 0)
		strv_push(&files, "/etc/sysctl.conf");
	for (size_t i = 0; i < files.n; i++) {
		char why[512];
		_cleanup_free_ char *text = NULL;
		size_t len = 0;
		if (v_read(v, files.v[i], MAX_CONF, &text, &len, why, sizeof(why)) < 0)
			sb_addf(bad, "%s%s", bad->len ? "; " : "", why);
		else
			ib_sysctl_apply(s, text, len);
	}
	strv_release(&files);
	for (size_t d = 0; d < ARRAY_SIZE(sysctl_dirs); d++)
		strv_release(&names[d]);
}

static void check_sysctls(struct vctx *v, const struct ib_check_kv *const *kv, size_t n)
{
	if (!n)
		return;
	struct ib_sysctl s = {0};
	struct strbuf bad = STRBUF_INIT;
	load_sysctl(v, &s, &bad);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *name = xasprintf("sysctl:%s", kv[i]->name);
		const char *val = ib_sysctl_get(&s, kv[i]->name);
		if (bad.len)
			v_result(v, name, 0, "%s", sb_str(&bad));
		else if (!val)
			v_result(v, name, 0, "not set in any sysctl.d file (expected %s)",
			         kv[i]->value);
		else if (!ib_sysctl_value_eq(val, kv[i]->value))
			v_result(v, name, 0, "%s, expected %s", val, kv[i]->value);
		else
			v_result(v, name, 1, "%s", val);
	}
	sb_release(&bad);
	ib_sysctl_release(&s);
}

static void check_packages(struct vctx *v, const struct ib_check_kv *const *kv, size_t n)
{
	if (!n)
		return;
	char why[512];
	_cleanup_free_ char *status = NULL;
	size_t len = 0;
	int r = v_read(v, "/var/lib/dpkg/status", MAX_DPKG_STATUS, &status, &len, why, sizeof(why));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *name = xasprintf("package:%s", kv[i]->name);
		_cleanup_free_ char *ver = NULL;
		if (r < 0)
			v_result(v, name, 0, "%s", why);
		else if (!ib_dpkg_version(status, len, kv[i]->name, &ver))
			v_result(v, name, 0, "not installed");
		else if (!streq(kv[i]->value, "*") && !streq(ver, kv[i]->value))
			v_result(v, name, 0, "version %s installed, expected %s", ver,
			         kv[i]->value);
		else
			v_result(v, name, 1, "%s installed", ver);
	}
}

void v_check_role(struct vctx *v, const struct ib_resolved *role)
{
	struct merged m;
	merge(role, &m);
	if (!v->mounted) {
		if (m.n_files || m.units.n || m.n_sysctls || m.n_packages)
			v_result(v, "role", 0, "not checked: the root filesystem did not mount");
		merged_release(&m);
		return;
	}
	for (size_t i = 0; i < m.n_files; i++)
		check_file(v, m.files[i]);
	check_units(v, &m.units);
	check_sysctls(v, m.sysctls, m.n_sysctls);
	check_packages(v, m.packages, m.n_packages);
	merged_release(&m);
}
