/* write.c: the plan directory, written aside and renamed into place as one group. */
#include "cluster/cluster.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "util/tmpreg.h"

struct out_file {
	char *name;
	mode_t mode;
};

struct outputs {
	struct out_file f[3 + 2 * (2 + IB_CLUSTER_MAX_WORKERS)];
	size_t n;
};

static void outputs_release(struct outputs *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->f[i].name);
	o->n = 0;
}

static int put(struct ib_ctx *ctx, struct outputs *o, const char *stage, char *name,
               const char *text, mode_t mode)
{
	o->f[o->n].name = name;
	o->f[o->n++].mode = mode;
	_cleanup_free_ char *path = ib_path_join(stage, name);
	return ib_write_file_atomic(ctx, path, text, strlen(text), mode);
}

static int put_seed(struct ib_ctx *ctx, struct outputs *o, const char *stage,
                    const struct ib_cluster_plan *p, const struct ib_cluster_host *h, time_t mtime)
{
	char *name = xasprintf("%s.seed.iso", h->name);
	o->f[o->n].name = name;
	o->f[o->n++].mode = 0600;
	_cleanup_free_ char *path = ib_path_join(stage, name);
	_cleanup_free_ char *meta = ib_cluster_meta_data(p, h);
	_cleanup_free_ char *net = ib_cluster_network_config(p, h);
	return ib_seed_write(ctx, path, h->user_data, meta, net, mtime);
}

static int write_stage(struct ib_ctx *ctx, const struct ib_cluster_plan *p, const char *stage,
                       time_t mtime, struct outputs *o)
{
	_cleanup_free_ char *json = ib_cluster_plan_json(p);
	int r;
	if ((r = put(ctx, o, stage, xstrdup("ca.crt"), p->ca.cert_pem, 0644)) < 0 ||
	    (r = put(ctx, o, stage, xstrdup("ca.key"), p->ca.key_pem, 0600)) < 0)
		return r;
	for (size_t i = 0; i <= p->n_hosts; i++) {
		const struct ib_cluster_host *h = i < p->n_hosts ? &p->hosts[i] : &p->tooling;
		if (i == p->n_hosts && !p->has_tooling)
			break;
		if (!h->user_data)
			return ib_error(ctx, IB_E_SPEC, "no user-data rendered for %s", h->name);
		if ((r = put(ctx, o, stage, xasprintf("%s.user-data", h->name), h->user_data,
		             0600)) < 0 ||
		    (r = put_seed(ctx, o, stage, p, h, mtime)) < 0)
			return r;
	}
	/* Last, so that a plan.json in place means the rest is too. */
	return put(ctx, o, stage, xstrdup("plan.json"), json, 0600);
}

/* worker-N.user-data or worker-N.seed.iso with N beyond the plan: a smaller plan's left
 * overs, holding secrets that may be rotated away; the tooling host's of a plan without. */
static int stale(const char *name, int workers, int tooling)
{
	if (!tooling && (streq(name, "tooling.user-data") || streq(name, "tooling.seed.iso")))
		return 1;
	if (!startswith(name, "worker-"))
		return 0;
	char *end;
	long n = strtol(name + 7, &end, 10);
	if (end == name + 7 || n <= workers)
		return 0;
	return streq(end, ".user-data") || streq(end, ".seed.iso");
}

static void remove_stale(int dirfd, int workers, int tooling)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (stale(de->d_name, workers, tooling))
			unlinkat(dirfd, de->d_name, 0);
	closedir(d);
}

static int commit(struct ib_ctx *ctx, const struct ib_cluster_plan *p, const char *stage,
                  const struct outputs *o)
{
	int r = 0;
	ib_commit_lock();
	for (size_t i = 0; i < o->n && r == 0; i++) {
		_cleanup_free_ char *from = ib_path_join(stage, o->f[i].name);
		_cleanup_free_ char *to = ib_path_join(p->dir, o->f[i].name);
		if (rename(from, to) < 0)
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot move '%s' into place", to);
	}
	if (r == 0) {
		remove_stale(p->lock_fd, p->workers, p->has_tooling);
		if (fsync(p->lock_fd) < 0)
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot write '%s'", p->dir);
	}
	ib_commit_unlock();
	return r;
}

/* A directory that did not exist when the plan was made: created private, then locked. */
static int make_dir(struct ib_ctx *ctx, struct ib_cluster_plan *p)
{
	_cleanup_free_ char *parent = xstrdup(p->dir);
	char *slash = strrchr(parent, '/');
	int r = 0;
	if (slash && slash != parent) {
		*slash = '\0';
		r = ib_mkdir_p(ctx, parent, 0755);
	}
	if (r < 0)
		return r;
	if (mkdir(p->dir, 0700) < 0)
		return ib_error_errno(ctx, IB_E_IO, errno,
		                      errno == EEXIST ? "'%s' appeared while planning: run again"
		                                      : "cannot create directory '%s'",
		                      p->dir);
	int fd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return ib_error_errno(ctx, IB_E_IO, e, "cannot lock '%s'", p->dir);
	}
	p->lock_fd = fd;
	return 0;
}

int ib_cluster_plan_write(struct ib_ctx *ctx, struct ib_cluster_plan *p, time_t mtime)
{
	int r = p->lock_fd < 0 ? make_dir(ctx, p) : 0;
	if (r < 0)
		return r;
	_cleanup_free_ char *stage = xasprintf("%s/.plan.tmp.%d", p->dir, (int)getpid());
	ib_rm_rf(ctx, stage);
	if (mkdir(stage, 0700) < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot create directory '%s'", stage);
	ib_tmp_register(stage);
	struct outputs o = {0};
	r = write_stage(ctx, p, stage, mtime, &o);
	if (r == 0)
		r = commit(ctx, p, stage, &o);
	outputs_release(&o);
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	ib_rm_rf(&quiet, stage);
	ib_tmp_unregister(stage);
	close(p->lock_fd);
	p->lock_fd = -1;
	return r;
}
