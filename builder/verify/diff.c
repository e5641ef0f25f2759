/* diff.c: list, stat and checksum two images' trees in one appliance, and compare them. */
#include "diff.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "dmount.h"
#include "util/fs.h"

#define LIST_MAX  ((size_t)1 << 30) /* find0 and checksums_out files read back */
#define BATCH_MAX 1000              /* names per lstatnslist call: one protocol message */

static const char *const kind_names[IB_DIFF__KINDS] = {
        "added", "removed", "type", "content", "mode", "owner", "target",
};

const char *ib_diff_kind_name(unsigned bit)
{
	for (unsigned i = 0; i < IB_DIFF__KINDS; i++)
		if (bit == 1u << i)
			return kind_names[i];
	return "?";
}

/* One path of one tree. */
struct dent {
	char *path; /* relative: "etc/hostname" */
	struct ib_diff_side s;
};

struct tree {
	struct dent *v;
	size_t n;
};

static void tree_release(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].path);
		free(t->v[i].s.target);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

static int cmp_dent(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->path, ((const struct dent *)b)->path);
}

static char type_of(mode_t m)
{
	return S_ISREG(m)    ? 'f'
	       : S_ISDIR(m)  ? 'd'
	       : S_ISLNK(m)  ? 'l'
	       : S_ISCHR(m)  ? 'c'
	       : S_ISBLK(m)  ? 'b'
	       : S_ISFIFO(m) ? 'p'
	                     : 's';
}

/* A guestfs call that writes a list to a local file, read back whole. */
static char *tmp_name(void)
{
	const char *tmpdir = getenv("TMPDIR");
	return xasprintf("%s/imgbuild-diff-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
}

static int make_tmp(struct ib_ctx *ctx, char *name)
{
	int fd = mkostemp(name, O_CLOEXEC);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot create a temporary file");
	close(fd);
	return 0;
}

/* Every name under mnt (find0), sorted. */
static int list_names(struct vctx *v, const char *mnt, struct tree *t)
{
	_cleanup_free_ char *tmp = tmp_name();
	int r = make_tmp(v->ctx, tmp);
	if (r < 0)
		return r;
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	if (guestfs_find0(v->g, mnt, tmp) < 0)
		r = ib_error(v->ctx, IB_E_LIB, "cannot list %s: %s", mnt, v_err(v));
	else
		r = ib_read_file(v->ctx, tmp, LIST_MAX, &data, &len);
	unlink(tmp);
	if (r < 0)
		return r;
	size_t alloc = 0;
	for (size_t off = 0; off < len;) {
		const char *name = data + off;
		size_t n = strnlen(name, len - off);
		off += n + 1;
		while (*name == '/')
			name++;
		if (!*name)
			continue;
		if (t->n == alloc) {
			alloc = alloc ? alloc * 2 : 4096;
			t->v = xrealloc(t->v, alloc * sizeof(*t->v));
		}
		t->v[t->n++] = (struct dent){.path = xstrdup(name)};
	}
	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), cmp_dent);
	return 0;
}

/* The entries in one directory, for lstatnslist and readlinklist (which take base names). */
struct group {
	char *dir;          /* mnt/parent */
	size_t *idx;        /* indexes into the tree */
	const char **names; /* their base names, NULL-terminated */
	size_t n;
};

static int cmp_parent(const void *a, const void *b, void *arg)
{
	const struct tree *t = arg;
	const char *pa = t->v[*(const size_t *)a].path, *pb = t->v[*(const size_t *)b].path;
	const char *sa = strrchr(pa, '/'), *sb = strrchr(pb, '/');
	size_t la = sa ? (size_t)(sa - pa) : 0, lb = sb ? (size_t)(sb - pb) : 0;
	int c = memcmp(pa, pb, la < lb ? la : lb);
	if (c)
		return c;
	return la < lb ? -1 : la > lb;
}

static int stat_group(struct vctx *v, struct tree *t, struct group *gr)
{
	gr->names[gr->n] = NULL;
	struct guestfs_statns_list *sl =
	        guestfs_lstatnslist(v->g, gr->dir, (char *const *)gr->names);
	if (!sl)
		return ib_error(v->ctx, IB_E_LIB, "cannot stat the files of %s: %s", gr->dir,
		                v_err(v));
	int r = 0;
	if (sl->len != gr->n)
		r = ib_error(v->ctx, IB_E_LIB, "lstatnslist of %s answered %u of %zu names",
		             gr->dir, sl->len, gr->n);
	struct strv links = {0};
	size_t *link_idx = xcalloc(gr->n + 1, sizeof(*link_idx));
	for (size_t i = 0; r == 0 && i < gr->n; i++) {
		const struct guestfs_statns *st = &sl->val[i];
		struct ib_diff_side *s = &t->v[gr->idx[i]].s;
		if (st->st_ino < 0) /* vanished: lstatnslist's marker for a failed lstat */
			continue;
		s->present = 1;
		s->type = type_of((mode_t)st->st_mode);
		s->mode = (unsigned)st->st_mode & 07777;
		s->uid = st->st_uid;
		s->gid = st->st_gid;
		s->size = st->st_size;
		s->rdev = st->st_rdev;
		if (s->type == 'l') {
			link_idx[links.n] = gr->idx[i];
			strv_push(&links, gr->names[i]);
		}
	}
	guestfs_free_statns_list(sl);
	if (r == 0 && links.n) {
		_cleanup_gstrv_ char **targets =
		        guestfs_readlinklist(v->g, gr->dir, (char *const *)links.v);
		if (!targets)
			r = ib_error(v->ctx, IB_E_LIB, "cannot read the links of %s: %s", gr->dir,
			             v_err(v));
		for (size_t i = 0; r == 0 && i < links.n; i++) {
			if (!targets[i]) {
				r = ib_error(v->ctx, IB_E_LIB,
				             "readlinklist of %s: too few answers", gr->dir);
				break;
			}
			t->v[link_idx[i]].s.target = xstrdup(targets[i]);
		}
	}
	free(link_idx);
	strv_release(&links);
	return r;
}

/* lstat every entry, a directory (and at most BATCH_MAX names) per call. */
static int stat_all(struct vctx *v, const char *mnt, struct tree *t)
{
	size_t *order = xcalloc(t->n + 1, sizeof(*order));
	for (size_t i = 0; i < t->n; i++)
		order[i] = i;
	qsort_r(order, t->n, sizeof(*order), cmp_parent, t);
	struct group gr = {
	        .idx = xcalloc(BATCH_MAX, sizeof(size_t)),
	        .names = xcalloc(BATCH_MAX + 1, sizeof(char *)),
	};
	int r = 0;
	for (size_t i = 0; i < t->n && r == 0 && !ib_interrupted;) {
		const char *p = t->v[order[i]].path;
		const char *slash = strrchr(p, '/');
		gr.dir = slash ? xasprintf("%s/%.*s", mnt, (int)(slash - p), p) : xstrdup(mnt);
		gr.n = 0;
		size_t j = i;
		while (j < t->n && gr.n < BATCH_MAX && cmp_parent(&order[i], &order[j], t) == 0) {
			const char *q = t->v[order[j]].path;
			const char *qs = strrchr(q, '/');
			gr.idx[gr.n] = order[j];
			gr.names[gr.n++] = qs ? qs + 1 : q;
			j++;
		}
		r = stat_group(v, t, &gr);
		free(gr.dir);
		i = j;
	}
	free(gr.idx);
	free(gr.names);
	free(order);
	if (ib_interrupted)
		return ib_error(v->ctx, IB_E_INTERRUPTED, "interrupted");
	return r;
}

static struct dent *find(struct tree *t, const char *path)
{
	struct dent key = {.path = (char *)path};
	return bsearch(&key, t->v, t->n, sizeof(*t->v), cmp_dent);
}

/* sha256sum's escaping of names with a newline or a backslash: "\hash  name". */
static void unescape(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (*s == '\\' && s[1] == 'n') {
			*o++ = '\n';
			s++;
		} else if (*s == '\\' && s[1] == '\\') {
			*o++ = '\\';
			s++;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* sha256 of every regular file, computed in the appliance (checksums_out). */
static int checksum_all(struct vctx *v, const char *mnt, struct tree *t)
{
	_cleanup_free_ char *tmp = tmp_name();
	int r = make_tmp(v->ctx, tmp);
	if (r < 0)
		return r;
	_cleanup_free_ char *data = NULL;
	if (guestfs_checksums_out(v->g, "sha256", mnt, tmp) < 0)
		r = ib_error(v->ctx, IB_E_LIB, "cannot checksum the files of %s: %s", mnt,
		             v_err(v));
	else
		r = ib_read_file(v->ctx, tmp, LIST_MAX, &data, NULL);
	unlink(tmp);
	if (r < 0)
		return r;
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int escaped = line[0] == '\\';
		char *hash = line + escaped;
		if (strlen(hash) < 68 || hash[64] != ' ' || hash[65] != ' ')
			return ib_error(v->ctx, IB_E_LIB, "unexpected checksum line '%.80s'", line);
		char *name = hash + 66;
		if (escaped)
			unescape(name);
		while (*name == '.' && name[1] == '/')
			name += 2;
		struct dent *d = find(t, name);
		if (d && d->s.type == 'f') {
			memcpy(d->s.sha256, hash, 64);
			d->s.sha256[64] = '\0';
		}
	}
	return 0;
}

/* The root directory itself, which find0 does not name: it sorts first, as "" (after
 * stat_all, which takes names in directories). */
static int stat_root(struct vctx *v, const char *mnt, struct tree *t)
{
	struct guestfs_statns *st = guestfs_lstatns(v->g, mnt);
	if (!st)
		return ib_error(v->ctx, IB_E_LIB, "cannot stat %s: %s", mnt, v_err(v));
	t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
	memmove(t->v + 1, t->v, t->n * sizeof(*t->v));
	t->n++;
	t->v[0] = (struct dent){.path = xstrdup("")};
	struct ib_diff_side *s = &t->v[0].s;
	s->present = 1;
	s->type = type_of((mode_t)st->st_mode);
	s->mode = (unsigned)st->st_mode & 07777;
	s->uid = st->st_uid;
	s->gid = st->st_gid;
	guestfs_free_statns(st);
	return 0;
}

static int read_tree(struct vctx *v, const char *mnt, struct tree *t)
{
	int r = list_names(v, mnt, t);
	if (r == 0)
		r = stat_all(v, mnt, t);
	if (r == 0)
		r = stat_root(v, mnt, t);
	if (r == 0)
		r = checksum_all(v, mnt, t);
	return r;
}

static unsigned compare(const struct ib_diff_side *a, const struct ib_diff_side *b)
{
	if (a->type != b->type)
		return IB_DIFF_TYPE;
	unsigned k = 0;
	if (a->mode != b->mode)
		k |= IB_DIFF_MODE;
	if (a->uid != b->uid || a->gid != b->gid)
		k |= IB_DIFF_OWNER;
	if (a->type == 'f' && (a->size != b->size || !streq(a->sha256, b->sha256)))
		k |= IB_DIFF_CONTENT;
	if ((a->type == 'c' || a->type == 'b') && a->rdev != b->rdev)
		k |= IB_DIFF_CONTENT;
	if (a->type == 'l' && !streq(a->target ? a->target : "", b->target ? b->target : ""))
		k |= IB_DIFF_TARGET;
	return k;
}

static void take_side(struct ib_diff_side *dst, struct ib_diff_side *src)
{
	*dst = *src;
	src->target = NULL;
}

static void add(struct ib_diff_result *res, const char *path, unsigned kinds,
                struct ib_diff_side *a, struct ib_diff_side *b)
{
	if (res->n == res->alloc) {
		res->alloc = res->alloc ? res->alloc * 2 : 64;
		res->v = xrealloc(res->v, res->alloc * sizeof(*res->v));
	}
	struct ib_diff_entry *e = &res->v[res->n++];
	memset(e, 0, sizeof(*e));
	e->path = xasprintf("/%s", path);
	e->kinds = kinds;
	if (a)
		take_side(&e->a, a);
	if (b)
		take_side(&e->b, b);
}

/* Both trees sorted by path: one merge pass. A path that vanished between listing and
 * stat'ing (it cannot on a read-only image) counts as absent. */
static void merge(struct tree *ta, struct tree *tb, struct ib_diff_result *res)
{
	size_t i = 0, j = 0;
	while (i < ta->n || j < tb->n) {
		int c = i == ta->n ? 1 : j == tb->n ? -1 : strcmp(ta->v[i].path, tb->v[j].path);
		struct dent *a = c <= 0 ? &ta->v[i++] : NULL;
		struct dent *b = c >= 0 ? &tb->v[j++] : NULL;
		int pa = a && a->s.present, pb = b && b->s.present;
		if (pa && !pb)
			add(res, a->path, IB_DIFF_REMOVED, &a->s, NULL);
		else if (!pa && pb)
			add(res, b->path, IB_DIFF_ADDED, NULL, &b->s);
		else if (pa && pb) {
			unsigned k = compare(&a->s, &b->s);
			if (k)
				add(res, a->path, k, &a->s, &b->s);
		}
	}
}

static void vctx_release(struct vctx *v)
{
	v_close(v);
	sb_release(&v->launch_err);
}

int ib_diff_images(struct ib_ctx *ctx, const char *a, const char *b, struct ib_diff_result *ret)
{
	memset(ret, 0, sizeof(*ret));
	struct ib_verify_report rep = {0};
	struct vctx v = {.ctx = ctx, .rep = &rep, .image = a, .image2 = b};
	struct tree ta = {0}, tb = {0};
	double t0 = ib_now();
	ib_stage(ctx, "diff", 0, 0);
	int r = v_open(&v, NULL, 0, 0);
	if (r == -IB_E_IO)
		r = -IB_E_SPEC; /* an image that cannot be read is bad input here */
	if (r == 0) {
		ret->accel = rep.accel;
		ret->launch_seconds = rep.launch_seconds;
		if (guestfs_mkmountpoint(v.g, "/a") < 0 || guestfs_mkmountpoint(v.g, "/b") < 0)
			r = ib_error(ctx, IB_E_LIB, "cannot make mount points: %s", v_err(&v));
	}
	_cleanup_gstrv_ char **devs = r == 0 ? guestfs_list_devices(v.g) : NULL;
	if (r == 0 && (!devs || !devs[0] || !devs[1]))
		r = ib_error(ctx, IB_E_LIB, "the appliance does not show both images");
	if (r == 0)
		r = d_mount_image(&v, devs[0], "/a", a);
	if (r == 0)
		r = d_mount_image(&v, devs[1], "/b", b);
	double t1 = ib_now();
	if (r == 0)
		r = read_tree(&v, "/a", &ta);
	if (r == 0)
		r = read_tree(&v, "/b", &tb);
	if (r == 0) {
		ib_log(ctx, IB_LOG_INFO, "diff: %zu and %zu paths read in %.1fs", ta.n, tb.n,
		       ib_now() - t1);
		ret->entries_a = ta.n;
		ret->entries_b = tb.n;
		merge(&ta, &tb, ret);
	}
	tree_release(&ta);
	tree_release(&tb);
	vctx_release(&v);
	ret->seconds = ib_now() - t0;
	ib_stage(ctx, "diff", 1, ret->seconds);
	if (r == 0 && ib_interrupted)
		r = ib_error(ctx, IB_E_INTERRUPTED, "interrupted");
	return r;
}

void ib_diff_result_release(struct ib_diff_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].path);
		free(r->v[i].a.target);
		free(r->v[i].b.target);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}
