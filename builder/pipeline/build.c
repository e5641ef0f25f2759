/* build.c: run the pipeline for each role, several roles at once, and commit outputs. */
#include "build.h"

#include <errno.h>
#include <stdatomic.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "assemble.h"
#include "disk/disk.h"
#include "imagebase.h"
#include "layer/layer.h"
#include "manifest.h"
#include "supply.h"
#include "rootfs/rootfs.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/strbuf.h"
#include "util/tmpreg.h"
#include "verify/verify.h"

static const char *const stage_names[IB_STAGE__MAX] = {
        [IB_STAGE_FETCH] = "fetch",   [IB_STAGE_ROOTFS] = "rootfs",
        [IB_STAGE_LAYER] = "layer",   [IB_STAGE_DISK] = "disk",
        [IB_STAGE_QCOW2] = "qcow2",   [IB_STAGE_MANIFEST] = "manifest",
        [IB_STAGE_VERIFY] = "verify",
};

const char *ib_stage_name(enum ib_stage s)
{
	return (unsigned)s < IB_STAGE__MAX ? stage_names[s] : "?";
}

/* One role's job: its paths and what it produced. */
struct job {
	const struct ib_build_opts *opts;
	struct ib_ctx ctx;
	struct ib_role_result *res;
	struct ib_resolved *role;
	char rootfs_key[65];
	char *work;       /* <out>/.imgbuild-work/<role>.<pid> */
	char *rootfs_tar; /* in the cache */
	char *tree, *layer_tar;
	char *shm;                    /* a tmpfs directory holding the tree, or NULL */
	char *rootfs_tar_hint;        /* the cached tarball's expected path, for sizing */
	char *raw, *qcow2, *manifest; /* in the work dir */
	char *image_manifest;         /* the copy that goes inside the image, in the work dir */
	struct ib_disk_layout layout;
	struct ib_package *pkgs;
	size_t n_pkgs;
	struct ib_supply supply; /* fetched artifacts and images, staged in work/supply */
	char raw_sha256[65];     /* hashed on a thread while qemu-img converts */
	int raw_hash_rc;
	char raw_hash_err[sizeof(((struct ib_ctx *)0)->err)];
	double stage_t0;
	char checks_digest[65]; /* what the image is verified against */
	int verified;
};

static void stage_begin(struct job *j, enum ib_stage s)
{
	j->stage_t0 = ib_now();
	ib_stage(&j->ctx, stage_names[s], 0, 0);
}

static void stage_end(struct job *j, enum ib_stage s)
{
	double d = ib_now() - j->stage_t0;
	j->res->seconds[s] = d;
	ib_stage(&j->ctx, stage_names[s], 1, d);
}

static char *out_path(const struct job *j, const char *suffix)
{
	return xasprintf("%s/%s%s", j->opts->out_dir, j->role->role->name, suffix);
}

static int wanted(const struct job *j, unsigned fmt)
{
	return (j->opts->project->formats & fmt) != 0;
}

/* The stamp records the input digest and the size and mtime of each output, so a no-op
 * run needs only stat() calls, not hashing gigabytes. */
static char *stamp_text(const struct job *j, const char *digest, const char *dir)
{
	struct strbuf sb = STRBUF_INIT;
	static const char *const suffixes[] = {".raw", ".qcow2", ".manifest.json"};
	const int want[] = {wanted(j, IB_FMT_RAW), wanted(j, IB_FMT_QCOW2), 1};
	sb_addf(&sb, "imgbuild-stamp-1\n%s\n", digest);
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		if (!want[i])
			continue; /* the work directory has a raw image either way */
		_cleanup_free_ char *p =
		        xasprintf("%s/%s%s", dir, j->role->role->name, suffixes[i]);
		struct stat st;
		if (stat(p, &st) < 0)
			continue;
		sb_addf(&sb, "%s %lld %lld.%09ld\n", suffixes[i], (long long)st.st_size,
		        (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	}
	return sb_take(&sb);
}

static int up_to_date(struct job *j)
{
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	_cleanup_free_ char *stamp = out_path(j, ".stamp");
	_cleanup_free_ char *old = NULL;
	if (ib_read_file(&quiet, stamp, 1 << 16, &old, NULL) < 0)
		return 0;
	_cleanup_free_ char *raw = out_path(j, ".raw"), *q = out_path(j, ".qcow2"),
	                    *m = out_path(j, ".manifest.json");
	if (!ib_exists(m) || ib_exists(raw) != wanted(j, IB_FMT_RAW) ||
	    ib_exists(q) != wanted(j, IB_FMT_QCOW2))
		return 0;
	_cleanup_free_ char *now = stamp_text(j, j->res->digest, j->opts->out_dir);
	if (!startswith(old, now))
		return 0;
	/* Outputs built with --no-verify, or verified against other checks, are verified
	 * (rebuilt) by a build that verifies. */
	const char *rest = old + strlen(now);
	_cleanup_free_ char *verified = xasprintf("verified %s\n", j->checks_digest);
	return !j->opts->verify || streq(rest, verified);
}

/* Assembly steps run as root in this process, else in a user namespace (assemble.h). */
static int assemble(struct job *j, unsigned step)
{
	_cleanup_free_ char *seed = xasprintf("%s:%s", j->role->role->name, j->rootfs_key);
	struct ib_assemble_opts a = {
	        .rootfs_tar = j->rootfs_tar,
	        .layer_tar = j->layer_tar,
	        .work = j->work,
	        .tree = j->tree,
	        .out_raw = j->raw,
	        .disk_size = j->role->disk_size,
	        .seed = seed,
	        .epoch = j->opts->epoch,
	        .manifest = (step & IB_ASSEMBLE_DISK) ? j->image_manifest : NULL,
	};
	struct ib_assemble_result res = {.pkgs = NULL};
	int r = ib_assemble(&j->ctx, &a, step, &res);
	if (r == 0 && (step & IB_ASSEMBLE_LAYER)) {
		ib_packages_free(j->pkgs, j->n_pkgs);
		j->pkgs = TAKE_PTR(res.pkgs);
		j->n_pkgs = res.n_pkgs;
		res.n_pkgs = 0;
	}
	if (r == 0 && (step & IB_ASSEMBLE_DISK))
		j->layout = res.layout;
	ib_assemble_result_release(&res);
	return r;
}

static int do_rootfs(struct job *j)
{
	struct ib_rootfs_opts ro = {
	        .project = j->opts->project,
	        .role = j->role,
	        .cache_dir = j->opts->cache_dir,
	        .epoch = j->opts->epoch,
	        .offline = j->opts->fetch && j->opts->fetch->offline,
	};
	/* Outside the user namespace: mmdebstrap's unshare mode makes its own. */
	int r = ib_rootfs_get(&j->ctx, &ro, &j->rootfs_tar, &j->res->rootfs_reused);
	if (r < 0)
		return r;
	return assemble(j, IB_ASSEMBLE_ROOTFS);
}

/* A role on a base image (imagebase.h): the image stands in for the root filesystem and
 * the disk, and the layer goes in through the appliance. */
static struct ib_imagebase_opts image_opts(const struct job *j)
{
	return (struct ib_imagebase_opts){
	        .project = j->opts->project,
	        .role = j->role,
	        .cache_dir = j->opts->cache_dir,
	        .fetch = j->opts->fetch,
	        .work = j->work,
	        .layer_tar = j->layer_tar,
	        .out_raw = j->raw,
	};
}

static void manifest_init(const struct job *j, struct ib_manifest *m);

/* The copy inside an image on a base image: the packages are known only in the
 * appliance, and it goes in there. */
static char *image_manifest(const void *arg, const struct ib_package *pkgs, size_t n)
{
	struct ib_manifest m;
	manifest_init(arg, &m);
	m.packages = pkgs;
	m.n_packages = n;
	m.in_image = 1;
	return ib_manifest_render(&m);
}

static int do_layer(struct job *j)
{
	/* The layer tar is built here, outside any namespace, from the role as resolved: it
	 * only reads the project's files and, for units shipped by packages, the unpacked
	 * tree (unit directories are world-readable whoever owns them). */
	struct ib_resolved *with_supply = ib_supply_merge(j->role, &j->supply);
	struct ib_layer_opts lo = {
	        .project = j->opts->project,
	        .role = with_supply,
	        .rootfs_tree = j->role->base_image ? NULL : j->tree,
	        .mtime = j->opts->epoch,
	        .no_units = j->role->base_image != NULL,
	};
	int r = ib_layer_build(&j->ctx, &lo, j->layer_tar);
	free(with_supply->files);
	free(with_supply);
	if (r < 0)
		return r;
	if (j->role->base_image) {
		struct ib_imagebase_opts io = image_opts(j);
		io.render_manifest = image_manifest;
		io.manifest_arg = j;
		ib_packages_free(j->pkgs, j->n_pkgs);
		j->pkgs = NULL;
		j->n_pkgs = 0;
		return ib_imagebase_customize(&j->ctx, &io, &j->pkgs, &j->n_pkgs);
	}
	return assemble(j, IB_ASSEMBLE_LAYER);
}

/* The staging tree is written once, read once by mkfs.ext4 and thrown away: on a tmpfs it
 * never waits for the disk (on these machines writeback of the tree made its unpacking
 * vary from 1 to 10 s). As root only (a namespace child cleans up under the work dir), and
 * only with room for it to spare. IMGBUILD_STAGING=disk keeps it in the work directory. */
static const char *staging_base(void)
{
	const char *env = getenv("IMGBUILD_STAGING");
	if (geteuid() != 0 || (env && streq(env, "disk")))
		return NULL;
	const char *base = env && env[0] == '/' ? env : "/dev/shm";
	struct statfs fs;
	if (statfs(base, &fs) < 0 || fs.f_type != TMPFS_MAGIC)
		return NULL;
	return base;
}

static char *staging_dir(struct job *j)
{
	const char *base = staging_base();
	struct statfs fs;
	if (!base || statfs(base, &fs) < 0)
		return NULL;
	long long need = 3 * ib_file_size(j->rootfs_tar_hint) + (256ll << 20);
	if ((long long)fs.f_bavail * (long long)fs.f_bsize < need)
		return NULL;
	char *dir = xasprintf("%s/imgbuild-%d-%s", base, (int)getpid(), j->role->role->name);
	ib_tmp_register(dir);
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	if (ib_rm_rf(&quiet, dir) < 0 || ib_mkdir_p(&quiet, dir, 0700) < 0) {
		ib_tmp_unregister(dir);
		free(dir);
		return NULL;
	}
	return dir;
}

static int do_fetch(struct job *j)
{
	struct ib_fetch_opts defaults;
	const struct ib_fetch_opts *fo = j->opts->fetch;
	if (!fo) {
		ib_fetch_opts_init(&defaults);
		fo = &defaults;
	}
	struct ib_cas cas = {0};
	int r = ib_cas_open(&j->ctx, j->opts->cache_dir, &cas);
	if (r < 0)
		return r;
	_cleanup_free_ char *stage = ib_path_join(j->work, "supply");
	r = ib_mkdir_p(&j->ctx, stage, 0755);
	if (r == 0)
		r = ib_supply_get(&j->ctx, &cas, fo, j->role, stage, &j->supply);
	ib_cas_release(&cas);
	return r;
}

static void manifest_init(const struct job *j, struct ib_manifest *m)
{
	*m = (struct ib_manifest){
	        .project = j->opts->project,
	        .role = j->role,
	        .digest = j->res->digest,
	        .rootfs_key = j->rootfs_key,
	        .epoch = (long long)j->opts->epoch,
	        .layout = j->role->base_image ? NULL : &j->layout,
	        .packages = j->pkgs,
	        .n_packages = j->n_pkgs,
	        .supply = &j->supply,
	};
}

static int same_ids(const struct ib_disk_layout *a, const struct ib_disk_layout *b)
{
	return streq(a->disk_guid, b->disk_guid) && streq(a->root_part_guid, b->root_part_guid) &&
	       streq(a->root_fs_uuid, b->root_fs_uuid) && streq(a->esp_vol_id, b->esp_vol_id) &&
	       streq(a->kernel, b->kernel) && streq(a->initrd, b->initrd);
}

/* The image carries its own manifest (manifest.h), and that names the disk's ids: they are
 * planned first (they follow from the seed), written into the tree, and must come out of
 * the assembly the same. */
static int do_disk(struct job *j)
{
	_cleanup_free_ char *seed = xasprintf("%s:%s", j->role->role->name, j->rootfs_key);
	struct ib_disk_opts d = {.tree = j->tree, .size = j->role->disk_size, .seed = seed};
	struct ib_disk_layout planned;
	int r = ib_disk_plan(&j->ctx, &d, &planned);
	if (r < 0)
		return r;
	j->layout = planned;
	struct ib_manifest m;
	manifest_init(j, &m);
	m.in_image = 1;
	_cleanup_free_ char *json = ib_manifest_render(&m);
	r = ib_write_file_atomic(&j->ctx, j->image_manifest, json, strlen(json), 0644);
	if (r == 0)
		r = assemble(j, IB_ASSEMBLE_DISK);
	if (r == 0 && !same_ids(&planned, &j->layout))
		r = ib_error(&j->ctx, IB_E_TOOL,
		             "the disk came out with other ids (root filesystem %s) than its "
		             "manifest names (%s)",
		             j->layout.root_fs_uuid, planned.root_fs_uuid);
	return r;
}

static int do_manifest(struct job *j)
{
	struct ib_manifest m;
	manifest_init(j, &m);
	_cleanup_free_ char *raw_name = xasprintf("%s.raw", j->role->role->name);
	_cleanup_free_ char *q_name = xasprintf("%s.qcow2", j->role->role->name);
	int r;
	if (wanted(j, IB_FMT_RAW)) {
		struct ib_manifest_output *o = &m.outputs[m.n_outputs++];
		o->format = "raw";
		o->file = raw_name;
		o->size = ib_file_size(j->raw);
		if (j->raw_hash_rc < 0)
			return ib_error(&j->ctx, IB_E_IO, "%s", j->raw_hash_err);
		memcpy(o->sha256, j->raw_sha256, sizeof(o->sha256));
	}
	if (wanted(j, IB_FMT_QCOW2)) {
		struct ib_manifest_output *o = &m.outputs[m.n_outputs++];
		o->format = "qcow2";
		o->file = q_name;
		o->size = ib_file_size(j->qcow2);
		r = ib_sha256_file_hex(&j->ctx, j->qcow2, o->sha256);
		if (r < 0)
			return r;
	}
	_cleanup_free_ char *json = ib_manifest_render(&m);
	return ib_write_file_atomic(&j->ctx, j->manifest, json, strlen(json), 0644);
}

/* Move the finished outputs into place, all under the commit lock. A build killed in the
 * middle must leave no stamp or manifest describing images it did not write: the old ones
 * go first, the new manifest after the images, the stamp last. Only renames happen under
 * the lock, so that window is short: the stamp is written beforehand (a rename keeps the
 * mtimes it records), and the old images are renamed into the work directory, to be freed
 * with it, rather than freed by the rename over them. */
static int commit(struct job *j)
{
	struct {
		const char *from;
		const char *suffix;
		int want;
	} moves[] = {
	        {j->raw, ".raw", wanted(j, IB_FMT_RAW)},
	        {j->qcow2, ".qcow2", wanted(j, IB_FMT_QCOW2)},
	        {j->manifest, ".manifest.json", 1},
	};
	_cleanup_free_ char *stamp = out_path(j, ".stamp");
	_cleanup_free_ char *manifest = out_path(j, ".manifest.json");
	_cleanup_free_ char *text = stamp_text(j, j->res->digest, j->work);
	if (j->verified) {
		char *t = xasprintf("%sverified %s\n", text, j->checks_digest);
		free(text);
		text = t;
	}
	_cleanup_free_ char *new_stamp = xasprintf("%s/%s.stamp", j->work, j->role->role->name);
	int r = ib_write_file_atomic(&j->ctx, new_stamp, text, strlen(text), 0644);
	if (r < 0)
		return r;
	ib_commit_lock();
	if ((unlink(stamp) < 0 && errno != ENOENT) || (unlink(manifest) < 0 && errno != ENOENT))
		r = ib_error_errno(&j->ctx, IB_E_IO, errno, "cannot replace the outputs of '%s'",
		                   j->role->role->name);
	for (size_t i = 0; i < ARRAY_SIZE(moves) && r == 0; i++) {
		_cleanup_free_ char *to = out_path(j, moves[i].suffix);
		_cleanup_free_ char *old = xasprintf("%s/replaced%s", j->work, moves[i].suffix);
		if (!moves[i].want) {
			unlink(to); /* a format dropped from the spec must not leave a stale file */
			continue;
		}
		if (rename(to, old) < 0 && errno != ENOENT)
			r = ib_error_errno(&j->ctx, IB_E_IO, errno, "cannot replace '%s'", to);
		else if (rename(moves[i].from, to) < 0)
			r = ib_error_errno(&j->ctx, IB_E_IO, errno, "cannot move '%s' into place",
			                   to);
	}
	if (r == 0 && rename(new_stamp, stamp) < 0)
		r = ib_error_errno(&j->ctx, IB_E_IO, errno, "cannot move '%s' into place", stamp);
	ib_commit_unlock();
	return r;
}

/* Every check of `imgbuild verify --role`, on the raw image in the work directory: a
 * failure leaves the earlier outputs where they are. */
static int do_verify(struct job *j)
{
	struct ib_verify_opts vo = {.expect_digest = j->res->digest};
	struct ib_verify_report rep;
	int r = ib_verify_image(&j->ctx, j->raw, j->role, &vo, &rep);
	for (size_t i = 0; i < rep.n; i++)
		if (!rep.results[i].ok)
			ib_log(&j->ctx, IB_LOG_WARN, "verify: %s failed: %s", rep.results[i].name,
			       rep.results[i].detail);
	j->res->seconds[IB_STAGE_VERIFY] = rep.seconds;
	j->verified = r == 0;
	if (r < 0 && r != -IB_E_VERIFY && r != -IB_E_INTERRUPTED)
		ib_error_prefix(&j->ctx, "reading the image back (--no-verify skips it)");
	ib_verify_report_release(&rep);
	return r;
}

static void *hash_raw(void *arg)
{
	struct job *j = arg;
	struct ib_ctx c;
	ib_ctx_init(&c);
	j->raw_hash_rc = ib_sha256_file_hex(&c, j->raw, j->raw_sha256);
	if (j->raw_hash_rc < 0)
		snprintf(j->raw_hash_err, sizeof(j->raw_hash_err), "%s", c.err);
	return NULL;
}

static int run_stages(struct job *j)
{
	int r;
	stage_begin(j, IB_STAGE_FETCH);
	r = do_fetch(j);
	if (r < 0)
		return r;
	stage_end(j, IB_STAGE_FETCH);

	stage_begin(j, IB_STAGE_ROOTFS);
	struct ib_imagebase_opts io = image_opts(j);
	r = j->role->base_image ? ib_imagebase_get(&j->ctx, &io) : do_rootfs(j);
	if (r < 0)
		return r;
	stage_end(j, IB_STAGE_ROOTFS);

	stage_begin(j, IB_STAGE_LAYER);
	r = do_layer(j);
	if (r < 0)
		return r;
	stage_end(j, IB_STAGE_LAYER);

	stage_begin(j, IB_STAGE_DISK);
	r = j->role->base_image ? 0 : do_disk(j); /* the base image brought its disk */
	if (r < 0)
		return r;
	stage_end(j, IB_STAGE_DISK);

	/* Hashing gigabytes of (mostly hole) raw image is the longest step left: do it on a
	 * thread while qemu-img reads the same file. */
	pthread_t hasher;
	int hashing = pthread_create(&hasher, NULL, hash_raw, j) == 0;
	if (!hashing)
		hash_raw(j);
	if (wanted(j, IB_FMT_QCOW2)) {
		stage_begin(j, IB_STAGE_QCOW2);
		r = ib_qcow2_convert(&j->ctx, j->raw, j->qcow2);
		if (r == 0)
			stage_end(j, IB_STAGE_QCOW2);
	}
	if (hashing)
		pthread_join(hasher, NULL);
	if (r < 0)
		return r;

	if (j->opts->verify && (r = do_verify(j)) < 0)
		return r;

	stage_begin(j, IB_STAGE_MANIFEST);
	r = do_manifest(j);
	if (r < 0)
		return r;
	r = commit(j);
	if (r < 0)
		return r;
	stage_end(j, IB_STAGE_MANIFEST);
	return 0;
}

static int build_one(struct job *j)
{
	const struct ib_build_opts *o = j->opts;
	int r;

	r = ib_role_resolve(&j->ctx, o->project, j->res->role, &j->role);
	if (r < 0)
		return r;
	struct ib_rootfs_opts ro = {.project = o->project, .role = j->role, .epoch = o->epoch};
	ib_rootfs_key(&ro, j->rootfs_key);
	j->rootfs_tar_hint = xasprintf("%s/rootfs/%s.tar", o->cache_dir, j->rootfs_key);
	r = ib_role_digest(&j->ctx, o->project, j->role, j->rootfs_key, o->epoch, j->res->digest);
	if (r < 0)
		return r;
	ib_checks_digest(j->role, j->checks_digest);

	/* One build of a role at a time per output directory; a second run waits, then
	 * usually finds the outputs up to date. */
	_cleanup_free_ char *lockp = xasprintf("%s/.%s.lock", o->out_dir, j->role->role->name);
	_cleanup_close_ int lock = ib_lock_file(&j->ctx, lockp);
	if (lock < 0)
		return lock;
	/* Work directories of builds of this role killed outright (SIGKILL, a power cut):
	 * the lock says none of them is running. */
	_cleanup_free_ char *workroot = ib_path_join(o->out_dir, ".imgbuild-work");
	_cleanup_free_ char *prefix = xasprintf("%s.", j->role->role->name);
	int stale = ib_remove_dead_pid_entries(workroot, prefix, "", ib_assemble_remove);
	/* Their staging trees too, which would hold memory until a reboot. */
	_cleanup_free_ char *suffix = xasprintf("-%s", j->role->role->name);
	if (staging_base())
		stale += ib_remove_dead_pid_entries(staging_base(), "imgbuild-", suffix, ib_rm_rf);
	if (stale > 0)
		ib_log(&j->ctx, IB_LOG_INFO, "removed %d work director%s of interrupted builds",
		       stale, stale == 1 ? "y" : "ies");
	if (!o->force && up_to_date(j)) {
		j->res->reused = 1;
		j->res->rootfs_reused = 1;
		ib_log(&j->ctx, IB_LOG_INFO, "up to date");
		return 0;
	}

	/* As a normal user, assembly needs a user namespace: say what is missing first. */
	r = j->role->base_image ? 0 : ib_assemble_check(&j->ctx);
	if (r < 0)
		return r;

	r = ib_mkdir_p(&j->ctx, workroot, 0700);
	if (r < 0)
		return r;
	j->work = xasprintf("%s/%s.%d", workroot, j->role->role->name, (int)getpid());
	ib_tmp_register(j->work);
	r = ib_assemble_remove(&j->ctx, j->work);
	if (r == 0)
		r = ib_mkdir_p(&j->ctx, j->work, 0700);
	if (r < 0)
		goto out;
	j->shm = j->role->base_image ? NULL : staging_dir(j);
	j->tree = ib_path_join(j->shm ? j->shm : j->work, "tree");
	j->layer_tar = ib_path_join(j->work, "layer.tar");
	j->raw = xasprintf("%s/%s.raw", j->work, j->role->role->name);
	j->qcow2 = xasprintf("%s/%s.qcow2", j->work, j->role->role->name);
	j->manifest = xasprintf("%s/%s.manifest.json", j->work, j->role->role->name);
	j->image_manifest = ib_path_join(j->work, "image-manifest.json");

	r = run_stages(j);
out:;
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	if (!getenv("IMGBUILD_KEEP_WORK") || r == 0) {
		ib_assemble_remove(&quiet, j->work);
		if (j->shm)
			ib_rm_rf(&quiet, j->shm);
	}
	ib_tmp_unregister(j->work);
	if (j->shm)
		ib_tmp_unregister(j->shm);
	return r;
}

static void record_sizes(struct job *j)
{
	_cleanup_free_ char *raw = out_path(j, ".raw"), *q = out_path(j, ".qcow2");
	j->res->raw_size = ib_file_size(raw);
	j->res->raw_alloc = ib_file_allocated(raw);
	j->res->qcow2_size = ib_file_size(q);
}

static void job_release(struct job *j)
{
	ib_resolved_free(j->role);
	ib_packages_free(j->pkgs, j->n_pkgs);
	ib_supply_release(&j->supply);
	free(j->rootfs_tar);
	free(j->work);
	free(j->tree);
	free(j->shm);
	free(j->rootfs_tar_hint);
	free(j->layer_tar);
	free(j->raw);
	free(j->qcow2);
	free(j->manifest);
	free(j->image_manifest);
}

struct pool {
	const struct ib_build_opts *opts;
	const struct ib_ctx *parent;
	struct ib_role_result *results;
	size_t n;
	atomic_size_t next;
};

static void *worker(void *arg)
{
	struct pool *p = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&p->next, 1);
		if (i >= p->n || ib_interrupted)
			break;
		struct job j = {.opts = p->opts, .res = &p->results[i]};
		ib_ctx_init_child(&j.ctx, p->parent, p->results[i].role);
		double t0 = ib_now();
		int r = build_one(&j);
		j.res->total = ib_now() - t0;
		j.res->rc = r;
		if (r < 0)
			snprintf(j.res->err, sizeof(j.res->err), "%s", j.ctx.err);
		else
			record_sizes(&j);
		job_release(&j);
	}
	return NULL;
}

int ib_build_roles(struct ib_ctx *ctx, const struct ib_build_opts *opts, const char *const *roles,
                   size_t n, struct ib_role_result *results)
{
	int r = ib_mkdir_p(ctx, opts->out_dir, 0755);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		memset(&results[i], 0, sizeof(results[i]));
		results[i].role = roles[i];
	}
	struct pool p = {.opts = opts, .parent = ctx, .results = results, .n = n};
	atomic_init(&p.next, 0);
	size_t nthreads = opts->jobs < 1 ? 1 : (size_t)opts->jobs;
	if (nthreads > n)
		nthreads = n;
	if (nthreads <= 1) {
		worker(&p);
	} else {
		pthread_t *t = xcalloc(nthreads, sizeof(*t));
		size_t started = 0;
		for (; started < nthreads; started++)
			if (pthread_create(&t[started], NULL, worker, &p) != 0)
				break;
		if (started == 0)
			worker(&p);
		for (size_t i = 0; i < started; i++)
			pthread_join(t[i], NULL);
		free(t);
	}
	for (size_t i = 0; i < n; i++) {
		if (results[i].rc < 0) {
			ib_error(ctx, (ib_code)-results[i].rc, "building '%s': %s", results[i].role,
			         results[i].err);
			return results[i].rc;
		}
	}
	if (ib_interrupted)
		return ib_error(ctx, IB_E_INTERRUPTED, "interrupted");
	return 0;
}
