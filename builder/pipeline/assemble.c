/* assemble.c: unpack, layer, seal and write the disk, as root or in a user namespace. */
#include "assemble.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "util/proc.h"
#include "util/strbuf.h"

#define RESULT_MAGIC "imgbuild-assemble-1"
#define RESULT_MAX   (16u << 20)
/* Every id a Debian tree uses fits below 65536 (nobody and nogroup are 65534). */
#define SUBID_NEEDED 65536UL

/* unshare's own options: its --map-auto takes the user's first subordinate ranges. */
static const char *const unshare_argv[] = {"unshare", "--user", "--map-root-user", "--map-auto",
                                           "--"};

static const char *const step_names[] = {"rootfs", "layer", "disk"};

const char *ib_assemble_step_name(unsigned step)
{
	for (unsigned i = 0; i < ARRAY_SIZE(step_names); i++)
		if (step == 1u << i)
			return step_names[i];
	return NULL;
}

unsigned ib_assemble_step_parse(const char *name)
{
	for (unsigned i = 0; i < ARRAY_SIZE(step_names); i++)
		if (streq(name, step_names[i]))
			return 1u << i;
	return 0;
}

void ib_assemble_result_release(struct ib_assemble_result *res)
{
	ib_packages_free(res->pkgs, res->n_pkgs);
	res->pkgs = NULL;
	res->n_pkgs = 0;
}

/* ---- in this process ---- */

/* The image's own manifest, rendered by the pipeline once the packages are known; written
 * here so that, as a normal user, the namespace's root owns it like every other file. */
static int install_manifest(struct ib_ctx *ctx, const struct ib_assemble_opts *o)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = ib_read_file(ctx, o->manifest, 16u << 20, &data, &len);
	if (r < 0)
		return r;
	_cleanup_free_ char *dir = ib_path_join(o->tree, "etc/imgbuild");
	_cleanup_free_ char *path = ib_path_join(dir, "manifest.json");
	if ((r = ib_mkdir_p(ctx, dir, 0755)) < 0)
		return r;
	return ib_write_file_atomic(ctx, path, data, len, 0644);
}

int ib_assemble_here(struct ib_ctx *ctx, const struct ib_assemble_opts *o, unsigned steps,
                     struct ib_assemble_result *ret)
{
	int r;
	/* Directories that no tar names (parents of the layer's files, /boot/grub, mount
	 * points) are made here: the caller's umask must not reach the image (a build under
	 * umask 027 made them 0750). Every build of this process wants the same value. */
	umask(022);
	/* A user namespace cannot create device nodes: root's tree has them, ours not. */
	unsigned xflags = o->userns ? IB_EXTRACT_NO_DEVICES : 0;

	if (steps & IB_ASSEMBLE_ROOTFS) {
		r = ib_mkdir_p(ctx, o->tree, 0755);
		if (r < 0)
			return r;
		r = ib_tree_extract(ctx, o->rootfs_tar, o->tree, xflags);
		if (r < 0)
			return r;
	}
	if (steps & IB_ASSEMBLE_LAYER) {
		r = ib_tree_extract(ctx, o->layer_tar, o->tree, IB_EXTRACT_CONFINE | xflags);
		if (r < 0)
			return r;
		r = ib_tree_seal(ctx, o->tree);
		if (r < 0)
			return r;
		ib_assemble_result_release(ret);
		r = ib_tree_packages(ctx, o->tree, &ret->pkgs, &ret->n_pkgs);
		if (r < 0)
			return r;
	}
	if (steps & IB_ASSEMBLE_DISK) {
		if (o->manifest && (r = install_manifest(ctx, o)) < 0)
			return r;
		struct ib_disk_opts d = {
		        .tree = o->tree,
		        .out_raw = o->out_raw,
		        .workdir = o->work,
		        .size = o->disk_size,
		        .seed = o->seed,
		        .mtime = o->epoch,
		};
		r = ib_disk_assemble(ctx, &d, &ret->layout);
		if (r < 0)
			return r;
		/* The staging tree is no longer needed: free the space before converting. */
		r = ib_rm_rf(ctx, o->tree);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- the user namespace: what it needs ---- */

struct subid_range {
	unsigned long start, count;
};

/* The first range of user (by name or number) in /etc/subuid or /etc/subgid, as
 * unshare --map-auto picks it. Returns 1 when found, 0 when not, -errno when unreadable.
 * *ret_next is past the highest range of any user, to suggest a free one. */
static int subid_lookup(const char *file, const char *user, uid_t uid, struct subid_range *ret,
                        unsigned long *ret_next)
{
	_cleanup_fclose_ FILE *f = fopen(file, "re");
	if (!f)
		return -errno;
	char line[512], num[32];
	int found = 0;
	snprintf(num, sizeof(num), "%lu", (unsigned long)uid);
	*ret_next = 100000;
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL;
		char *name = strtok_r(line, ":\n", &save);
		char *start = strtok_r(NULL, ":\n", &save);
		char *count = strtok_r(NULL, ":\n", &save);
		if (!name || !start || !count || name[0] == '#')
			continue;
		char *e1, *e2;
		unsigned long s = strtoul(start, &e1, 10), c = strtoul(count, &e2, 10);
		if (*e1 || *e2)
			continue;
		if (s + c > *ret_next)
			*ret_next = s + c;
		if (!found && (streq(name, user) || streq(name, num))) {
			ret->start = s;
			ret->count = c;
			found = 1;
		}
	}
	return found;
}

/* What is wrong with one kind of range (NULL: nothing), and the usermod options fixing it. */
static char *subid_problem(const char *file, const char *kind, const char *user, int found,
                           const struct subid_range *range, unsigned long next, struct strbuf *fix)
{
	const char *k = streq(kind, "uid") ? "uids" : "gids";
	if (found && range->count >= SUBID_NEEDED)
		return NULL;
	if (found)
		sb_addf(fix, " --del-sub%s %lu-%lu", k, range->start,
		        range->start + range->count - 1);
	sb_addf(fix, " --add-sub%s %lu-%lu", k, next, next + SUBID_NEEDED - 1);
	if (!found)
		return xasprintf("no subordinate %s range for user '%s' in %s", kind, user, file);
	return xasprintf("the subordinate %s range of user '%s' in %s has %lu ids, not %lu", kind,
	                 user, file, range->count, SUBID_NEEDED);
}

static int check_subids(struct ib_ctx *ctx, const char *user, uid_t uid)
{
	struct subid_range u = {0, 0}, g = {0, 0};
	unsigned long nu, ng;
	int ru = subid_lookup("/etc/subuid", user, uid, &u, &nu);
	if (ru < 0 && ru != -ENOENT)
		return ib_error_errno(ctx, IB_E_IO, -ru, "cannot read '/etc/subuid'");
	int rg = subid_lookup("/etc/subgid", user, uid, &g, &ng);
	if (rg < 0 && rg != -ENOENT)
		return ib_error_errno(ctx, IB_E_IO, -rg, "cannot read '/etc/subgid'");
	unsigned long next = nu > ng ? nu : ng;
	struct strbuf fix = STRBUF_INIT;
	_cleanup_free_ char *pu = subid_problem("/etc/subuid", "uid", user, ru > 0, &u, next, &fix);
	_cleanup_free_ char *pg = subid_problem("/etc/subgid", "gid", user, rg > 0, &g, next, &fix);
	int r = 0;
	if (pu || pg)
		r = ib_error(
		        ctx, IB_E_TOOL,
		        "%s%s%s: a build as a normal user needs them to give the image's files "
		        "their owners; as root, run usermod%s %s",
		        pu ? pu : "", pu && pg ? "; " : "", pg ? pg : "", sb_str(&fix), user);
	sb_release(&fix);
	return r;
}

/* A sysctl as a number, or -1 when absent or unreadable. */
static long read_sysctl(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int check_sysctls(struct ib_ctx *ctx)
{
	if (read_sysctl("/proc/sys/user/max_user_namespaces") == 0)
		return ib_error(ctx, IB_E_TOOL,
		                "user namespaces are disabled (user.max_user_namespaces is 0): "
		                "building as a normal user needs them; enable them with sysctl -w "
		                "user.max_user_namespaces=10000, or build as root");
	if (read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") == 0)
		return ib_error(
		        ctx, IB_E_TOOL,
		        "unprivileged user namespaces are disabled "
		        "(kernel.unprivileged_userns_clone is 0): building as a normal user "
		        "needs them; enable them with sysctl -w "
		        "kernel.unprivileged_userns_clone=1, or build as root");
	return 0;
}

static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;
static int check_done;
static ib_code check_code;
static char check_err[sizeof(((struct ib_ctx *)0)->err)];
static char self_exe[PATH_MAX];

static int check_once(struct ib_ctx *ctx)
{
	struct passwd pw, *pwp = NULL;
	char buf[4096];
	uid_t uid = geteuid();
	int r;

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp)
		return ib_error(ctx, IB_E_TOOL,
		                "user %lu has no name in the user database: building as a normal "
		                "user needs a named user with subordinate ids in /etc/subuid",
		                (unsigned long)uid);
	if (!ib_have_program("unshare"))
		return ib_error(ctx, IB_E_TOOL,
		                "unshare is not installed: building as a normal user needs it "
		                "(apt-get install util-linux, or run 'make deps')");
	if (!ib_have_program("newuidmap") || !ib_have_program("newgidmap"))
		return ib_error(ctx, IB_E_TOOL,
		                "newuidmap is not installed: building as a normal user needs it "
		                "(apt-get install uidmap, or run 'make deps')");
	if ((r = check_subids(ctx, pw.pw_name, uid)) < 0 || (r = check_sysctls(ctx)) < 0)
		return r;

	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot find the imgbuild program");
	self_exe[n] = '\0';
	if (endswith(self_exe, " (deleted)"))
		return ib_error(ctx, IB_E_IO,
		                "the imgbuild program '%.*s' was replaced while running: run again",
		                (int)(n - 10), self_exe);

	/* The last word: can this user really make one? (AppArmor or seccomp may say no.) */
	struct strv argv = {0};
	for (size_t i = 0; i < ARRAY_SIZE(unshare_argv); i++)
		strv_push(&argv, unshare_argv[i]);
	strv_push(&argv, "true");
	struct ib_ctx probe;
	ib_ctx_init_child(&probe, ctx, ctx->label);
	r = ib_run(&probe, (const char *const *)argv.v, NULL, 0, NULL);
	strv_release(&argv);
	if (r < 0) {
		int apparmor =
		        read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == 1;
		return ib_error(ctx, IB_E_TOOL,
		                "cannot create a user namespace with the subordinate ids of user "
		                "'%s' (unshare --user --map-root-user --map-auto): %s; a build as "
		                "a normal user needs one: %s, or build as root",
		                pw.pw_name, probe.err,
		                apparmor ? "AppArmor restricts them "
		                           "(kernel.apparmor_restrict_unprivileged_userns is 1)"
		                         : "check that unprivileged user namespaces are allowed");
	}
	return 0;
}

int ib_assemble_check(struct ib_ctx *ctx)
{
	if (geteuid() == 0)
		return 0;
	pthread_mutex_lock(&check_lock);
	if (!check_done) {
		struct ib_ctx c;
		ib_ctx_init_child(&c, ctx, ctx->label);
		check_once(&c);
		check_code = c.err_code;
		memcpy(check_err, c.err, sizeof(check_err));
		check_done = !ib_interrupted;
	}
	ib_code code = check_code;
	pthread_mutex_unlock(&check_lock);
	if (code != IB_OK)
		return ib_error(ctx, code, "%s", check_err);
	return 0;
}

/* ---- the user namespace: running the child ---- */

/* unshare ... -- /path/to/imgbuild __assemble ARGS... */
static void child_argv(struct strv *argv, const struct ib_ctx *ctx)
{
	for (size_t i = 0; i < ARRAY_SIZE(unshare_argv); i++)
		strv_push(argv, unshare_argv[i]);
	strv_push(argv, self_exe);
	strv_push(argv, "__assemble");
	strv_push_take(argv, xasprintf("verbosity=%d", ctx->verbosity));
}

static void relog(struct ib_ctx *ctx, const struct strv *logs)
{
	for (size_t i = 0; i < logs->n; i++) {
		const char *l = logs->v[i];
		if (l[0] >= '0' && l[0] <= '3' && l[1] == ' ')
			ib_log(ctx, (enum ib_log_level)(l[0] - '0'), "%s", l + 2);
	}
}

int ib_assemble(struct ib_ctx *ctx, const struct ib_assemble_opts *o, unsigned steps,
                struct ib_assemble_result *ret)
{
	if (geteuid() == 0)
		return ib_assemble_here(ctx, o, steps, ret);
	int r = ib_assemble_check(ctx);
	if (r < 0)
		return r;

	_cleanup_free_ char *result = ib_path_join(o->work, "assemble.result");
	unlink(result);
	struct strbuf names = STRBUF_INIT;
	for (unsigned i = 0; i < ARRAY_SIZE(step_names); i++)
		if (steps & (1u << i))
			sb_addf(&names, "%s%s", names.len ? "," : "", step_names[i]);

	struct strv argv = {0};
	child_argv(&argv, ctx);
	strv_push_take(&argv, xasprintf("steps=%s", sb_str(&names)));
	if (o->rootfs_tar)
		strv_push_take(&argv, xasprintf("rootfs=%s", o->rootfs_tar));
	if (o->layer_tar)
		strv_push_take(&argv, xasprintf("layer=%s", o->layer_tar));
	strv_push_take(&argv, xasprintf("work=%s", o->work));
	strv_push_take(&argv, xasprintf("tree=%s", o->tree));
	if (o->out_raw)
		strv_push_take(&argv, xasprintf("raw=%s", o->out_raw));
	strv_push_take(&argv, xasprintf("size=%" PRIu64, o->disk_size));
	if (o->seed)
		strv_push_take(&argv, xasprintf("seed=%s", o->seed));
	strv_push_take(&argv, xasprintf("epoch=%lld", (long long)o->epoch));
	if (o->manifest)
		strv_push_take(&argv, xasprintf("manifest=%s", o->manifest));
	strv_push_take(&argv, xasprintf("result=%s", result));
	sb_release(&names);

	/* The child's stderr goes to the debug log; its own error comes back in the result
	 * file, with its code (a spec error stays a spec error). */
	struct ib_ctx run;
	ib_ctx_init_child(&run, ctx, ctx->label);
	r = ib_run(&run, (const char *const *)argv.v, NULL, 0, NULL);
	strv_release(&argv);

	int child_rc = 0;
	char err[sizeof(ctx->err)] = "";
	struct strv logs = {0};
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	int have = ib_exists(result) && ib_assemble_result_read(&quiet, result, &child_rc, err,
	                                                        sizeof(err), ret, &logs) == 0;
	unlink(result);
	relog(ctx, &logs);
	strv_release(&logs);

	if (ib_interrupted)
		return ib_error(ctx, IB_E_INTERRUPTED, "interrupted");
	if (have && child_rc < 0)
		return ib_error(ctx, -child_rc < IB_E__MAX ? (ib_code)-child_rc : IB_E_TOOL, "%s",
		                err);
	if (r < 0) {
		ib_error_prefix(&run, "assembling in a user namespace");
		ib_error_propagate(ctx, &run);
		return r;
	}
	if (!have)
		return ib_error(ctx, IB_E_IO,
		                "the assembly in the user namespace left no result: %s",
		                quiet.err[0] ? quiet.err : "no file");
	return 0;
}

int ib_assemble_remove(struct ib_ctx *ctx, const char *path)
{
	struct ib_ctx first;
	ib_ctx_init(&first);
	int r = ib_rm_rf(&first, path);
	if (r == 0)
		return 0;
	/* As a normal user, the tree's files belong to subordinate ids: remove them as the
	 * namespace's root, which owns them. */
	if (geteuid() == 0 || !ib_exists(path) || ib_assemble_check(&first) < 0) {
		ib_error_propagate(ctx, &first);
		return r;
	}
	struct strv argv = {0};
	child_argv(&argv, ctx);
	strv_push_take(&argv, xasprintf("remove=%s", path));
	struct ib_ctx run;
	ib_ctx_init_child(&run, ctx, ctx->label);
	r = ib_run(&run, (const char *const *)argv.v, NULL, 0, NULL);
	strv_release(&argv);
	if (!ib_exists(path))
		return 0;
	if (r < 0) {
		ib_error_propagate(ctx, &run);
		return r;
	}
	return ib_error(ctx, IB_E_IO, "cannot remove '%s' in the user namespace", path);
}

/* ---- the result file ---- */

/* One line, with newlines (from a tool's output) turned into "; ". */
static void add_line(struct strbuf *sb, const char *key, const char *val)
{
	sb_addf(sb, "%s ", key);
	for (const char *p = val; *p; p++) {
		if (*p == '\n')
			sb_adds(sb, "; ");
		else
			sb_addc(sb, *p);
	}
	sb_addc(sb, '\n');
}

int ib_assemble_result_write(struct ib_ctx *ctx, const char *path, int rc, const char *err,
                             const struct ib_assemble_result *res, const struct strv *logs)
{
	struct strbuf sb = STRBUF_INIT;
	const struct ib_disk_layout *l = &res->layout;
	sb_addf(&sb, "%s\nrc %d\n", RESULT_MAGIC, rc);
	if (rc < 0)
		add_line(&sb, "error", err ? err : "");
	for (size_t i = 0; logs && i < logs->n; i++)
		add_line(&sb, "log", logs->v[i]);
	sb_addf(&sb,
	        "bios %" PRIu64 " %" PRIu64 "\nesp %" PRIu64 " %" PRIu64 "\nroot %" PRIu64
	        " %" PRIu64 "\n",
	        l->bios_start, l->bios_sectors, l->esp_start, l->esp_sectors, l->root_start,
	        l->root_sectors);
	add_line(&sb, "disk_guid", l->disk_guid);
	add_line(&sb, "root_part_guid", l->root_part_guid);
	add_line(&sb, "root_fs_uuid", l->root_fs_uuid);
	add_line(&sb, "esp_vol_id", l->esp_vol_id);
	add_line(&sb, "kernel", l->kernel);
	add_line(&sb, "initrd", l->initrd);
	for (size_t i = 0; i < res->n_pkgs; i++)
		sb_addf(&sb, "package %s %s\n", res->pkgs[i].name, res->pkgs[i].version);
	sb_adds(&sb, "end\n");
	int r = ib_write_file_atomic(ctx, path, sb.buf, sb.len, 0600);
	sb_release(&sb);
	return r;
}

static int copy_field(char *dst, size_t size, const char *val)
{
	if (strlen(val) >= size)
		return -1;
	memcpy(dst, val, strlen(val) + 1);
	return 0;
}

static int parse_pair(const char *val, uint64_t *a, uint64_t *b)
{
	char *end;
	errno = 0;
	*a = strtoull(val, &end, 10);
	if (*end != ' ')
		return -1;
	*b = strtoull(end + 1, &end, 10);
	return errno || *end ? -1 : 0;
}

int ib_assemble_result_read(struct ib_ctx *ctx, const char *path, int *ret_rc, char *err,
                            size_t err_size, struct ib_assemble_result *res, struct strv *logs)
{
	_cleanup_free_ char *data = NULL;
	int r = ib_read_file(ctx, path, RESULT_MAX, &data, NULL);
	if (r < 0)
		return r;
	struct ib_disk_layout l;
	memset(&l, 0, sizeof(l));
	struct ib_package *pkgs = NULL;
	size_t n = 0, alloc = 0;
	int rc = 0, bad = 0, lineno = 0, ended = 0;
	if (err_size)
		err[0] = '\0';

	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line && !bad && !ended;
	     line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (lineno == 1) {
			bad = !streq(line, RESULT_MAGIC);
			continue;
		}
		if (streq(line, "end")) {
			ended = 1;
			continue;
		}
		char *val = strchr(line, ' ');
		if (!val) {
			bad = 1;
			continue;
		}
		*val++ = '\0';
		if (streq(line, "rc")) {
			rc = atoi(val);
		} else if (streq(line, "error")) {
			snprintf(err, err_size, "%s", val);
		} else if (streq(line, "log")) {
			if (logs)
				strv_push(logs, val);
		} else if (streq(line, "bios")) {
			bad = parse_pair(val, &l.bios_start, &l.bios_sectors);
		} else if (streq(line, "esp")) {
			bad = parse_pair(val, &l.esp_start, &l.esp_sectors);
		} else if (streq(line, "root")) {
			bad = parse_pair(val, &l.root_start, &l.root_sectors);
		} else if (streq(line, "disk_guid")) {
			bad = copy_field(l.disk_guid, sizeof(l.disk_guid), val);
		} else if (streq(line, "root_part_guid")) {
			bad = copy_field(l.root_part_guid, sizeof(l.root_part_guid), val);
		} else if (streq(line, "root_fs_uuid")) {
			bad = copy_field(l.root_fs_uuid, sizeof(l.root_fs_uuid), val);
		} else if (streq(line, "esp_vol_id")) {
			bad = copy_field(l.esp_vol_id, sizeof(l.esp_vol_id), val);
		} else if (streq(line, "kernel")) {
			bad = copy_field(l.kernel, sizeof(l.kernel), val);
		} else if (streq(line, "initrd")) {
			bad = copy_field(l.initrd, sizeof(l.initrd), val);
		} else if (streq(line, "package")) {
			char *ver = strchr(val, ' ');
			if (!ver) {
				bad = 1;
				continue;
			}
			*ver++ = '\0';
			if (n == alloc) {
				alloc = alloc ? alloc * 2 : 256;
				pkgs = xrealloc(pkgs, alloc * sizeof(*pkgs));
			}
			pkgs[n].name = xstrdup(val);
			pkgs[n].version = xstrdup(ver);
			n++;
		}
		/* Unknown keys: a newer child; ignored. */
	}
	if (bad || !ended) {
		ib_packages_free(pkgs, n);
		return ib_error(ctx, IB_E_IO, "'%s' is not a complete assembly result (line %d)",
		                path, lineno);
	}
	*ret_rc = rc;
	res->layout = l;
	if (n > 0) {
		ib_assemble_result_release(res);
		res->pkgs = pkgs;
		res->n_pkgs = n;
	}
	return 0;
}
