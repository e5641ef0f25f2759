/* imagebase.c: a base image fetched and copied, and the .deb files a role adds to it. */
#include "imagebase.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>

#include "util/fs.h"
#include "util/hash.h"
#include "util/proc.h"
#include "util/strbuf.h"

#define DEBIAN_KEYRING "/usr/share/keyrings/debian-archive-keyring.gpg"

static const struct ib_fetch_opts *fetch_opts(const struct ib_imagebase_opts *o,
                                              struct ib_fetch_opts *defaults)
{
	if (o->fetch)
		return o->fetch;
	ib_fetch_opts_init(defaults);
	return defaults;
}

/* The bytes must be what the spec says they are: qemu-img told "raw" copies a qcow2
 * file verbatim, and an image naming a backing file would read a file of the host. */
static int check_format(struct ib_ctx *ctx, const char *path, const struct ib_base_image *b)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot open '%s'", path);
	unsigned char magic[4] = {0};
	ssize_t n = read(fd, magic, sizeof(magic));
	int is_qcow2 = n == 4 && memcmp(magic, "QFI\xfb", 4) == 0;
	if (is_qcow2 != (b->format == IB_FMT_QCOW2))
		return ib_error(ctx, IB_E_VERIFY,
		                "%s:%d:%d: base image '%s' is %s, but its format says %s",
		                b->pos.file, b->pos.line, b->pos.col, b->url,
		                is_qcow2 ? "a qcow2 image" : "not a qcow2 image",
		                b->format == IB_FMT_QCOW2 ? "qcow2" : "raw");
	if (!is_qcow2)
		return 0;
	const char *const argv[] = {"qemu-img", "info", "--output=json", "-f", "qcow2", path, NULL};
	_cleanup_free_ char *info = NULL;
	int r = ib_run(ctx, argv, NULL, IB_RUN_CAPTURE_STDOUT, &info);
	if (r < 0)
		return r;
	if (strstr(info, "\"backing-filename\""))
		return ib_error(ctx, IB_E_VERIFY,
		                "%s:%d:%d: base image '%s' names a backing file: refused",
		                b->pos.file, b->pos.line, b->pos.col, b->url);
	return 0;
}

int ib_imagebase_fetch(struct ib_ctx *ctx, const struct ib_cas *cas, const struct ib_fetch_opts *fo,
                       const struct ib_resolved *role, char **ret_path)
{
	const struct ib_base_image *b = role->base_image;
	_cleanup_free_ char *what = xasprintf("base image of role '%s'", role->role->name);
	struct ib_fetch_item it = {.url = b->url, .sha256 = b->sha256, .what = what};
	int r = ib_fetch_all(ctx, cas, fo, &it, 1);
	if (r == 0) {
		ib_log(ctx, IB_LOG_INFO, "base image %s (%s)", b->sha256,
		       it.cached ? "in the cache" : "downloaded");
		r = check_format(ctx, it.path, b);
	}
	if (r == 0 && ret_path)
		*ret_path = TAKE_PTR(it.path);
	ib_fetch_item_release(&it);
	return r;
}

int ib_imagebase_get(struct ib_ctx *ctx, const struct ib_imagebase_opts *o)
{
	const struct ib_base_image *b = o->role->base_image;
	struct ib_fetch_opts defaults;
	struct ib_cas cas = {0};
	_cleanup_free_ char *path = NULL;
	int r = ib_cas_open(ctx, o->cache_dir, &cas);
	if (r == 0)
		r = ib_imagebase_fetch(ctx, &cas, fetch_opts(o, &defaults), o->role, &path);
	if (r == 0) {
		/* The copy is the image to customize: the cache entry stays read-only. */
		_cleanup_free_ char *tmp = xasprintf("%s.tmp", o->out_raw);
		const char *const argv[] = {
		        "qemu-img", "convert", "-f", b->format == IB_FMT_QCOW2 ? "qcow2" : "raw",
		        "-O",       "raw",     path, tmp,
		        NULL};
		r = ib_run(ctx, argv, NULL, 0, NULL);
		if (r == 0 && rename(tmp, o->out_raw) < 0)
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot rename '%s'", tmp);
		if (r < 0)
			unlink(tmp);
	}
	ib_cas_release(&cas);
	return r;
}

/* apt on the host, confined to a directory of its own: the image's status file, the
 * project's mirror, no host sources, preferences or state. */
static char *apt_conf(const char *dir, const char *lists, const char *status, const char *arch)
{
	return xasprintf("Dir \"/\";\n"
	                 "Dir::State \"%1$s/state\";\n"
	                 "Dir::State::Lists \"%2$s\";\n"
	                 "Dir::State::status \"%3$s\";\n"
	                 "Dir::Cache \"%1$s/cache\";\n"
	                 "Dir::Cache::pkgcache \"\";\n"
	                 "Dir::Cache::srcpkgcache \"\";\n"
	                 "Dir::Etc::SourceList \"%1$s/sources.list\";\n"
	                 "Dir::Etc::SourceParts \"%1$s/empty\";\n"
	                 "Dir::Etc::Preferences \"%1$s/empty/preferences\";\n"
	                 "Dir::Etc::PreferencesParts \"%1$s/empty\";\n"
	                 "APT::Architecture \"%4$s\";\n"
	                 "APT::Architectures { \"%4$s\"; };\n"
	                 "APT::Install-Recommends \"false\";\n"
	                 "APT::Sandbox::User \"root\";\n"
	                 "Acquire::Languages \"none\";\n"
	                 /* --print-uris names this hash: the cache keys on it */
	                 "Acquire::ForceHash \"SHA256\";\n"
	                 "Debug::NoLocking \"true\";\n",
	                 dir, lists, status, arch);
}

static int lists_present(const char *lists)
{
	DIR *d = opendir(lists);
	if (!d)
		return 0;
	struct dirent *de;
	int found = 0;
	while (!found && (de = readdir(d)))
		found = strstr(de->d_name, "_Packages") != NULL; /* maybe .lz4, .gz */
	closedir(d);
	return found;
}

/* One line of `apt-get --print-uris`: 'URL' FILE SIZE SHA256:HEX. */
static int parse_uri_line(struct ib_ctx *ctx, char *line, char **ret_url, char **ret_file,
                          char **ret_hex)
{
	char *end = line[0] == '\'' ? strchr(line + 1, '\'') : NULL;
	if (!end)
		goto bad;
	*end = '\0';
	char *save = NULL;
	char *file = strtok_r(end + 1, " ", &save);
	char *size = strtok_r(NULL, " ", &save);
	char *hash = strtok_r(NULL, " ", &save);
	if (!file || !size || !hash || !startswith(hash, "SHA256:") ||
	    !ib_cas_hex_valid(hash + 7) || strchr(file, '/'))
		goto bad;
	*ret_url = line + 1;
	*ret_file = file;
	*ret_hex = hash + 7;
	return 0;
bad:
	return ib_error(ctx, IB_E_TOOL, "apt-get printed an unexpected line: %s", line);
}

int ib_imagebase_debs(struct ib_ctx *ctx, const struct ib_imagebase_opts *o, const char *status,
                      struct strv *ret_debs, struct strv *ret_names)
{
	const struct ib_project *p = o->project;
	const struct ib_resolved *role = o->role;
	struct ib_fetch_opts defaults;
	const struct ib_fetch_opts *fo = fetch_opts(o, &defaults);
	if (role->packages.n == 0)
		return 0;

	/* Debian's packages come from debian.mirror, as for mmdebstrap: --mirror is for the
	 * pinned downloads of other servers, and a directory mirror holds no archive. */
	const char *mirror = p->mirror;
	struct ib_fetch_opts deb_fo = *fo;
	deb_fo.mirror = NULL;
	struct ib_sha256 h;
	char key[65];
	ib_sha256_init(&h);
	ib_sha256_field(&h, mirror);
	ib_sha256_field(&h, p->suite);
	ib_sha256_field(&h, p->arch);
	ib_sha256_final_hex(&h, key);
	_cleanup_free_ char *dir = ib_path_join(o->work, "apt");
	_cleanup_free_ char *empty = ib_path_join(dir, "empty");
	_cleanup_free_ char *partial = ib_path_join(dir, "cache/archives/partial");
	_cleanup_free_ char *state = ib_path_join(dir, "state");
	_cleanup_free_ char *lists = xasprintf("%s/apt/%s/lists", o->cache_dir, key);
	_cleanup_free_ char *lists_partial = ib_path_join(lists, "partial");
	_cleanup_free_ char *lockp = xasprintf("%s/apt/%s.lock", o->cache_dir, key);
	_cleanup_free_ char *conf_path = ib_path_join(dir, "apt.conf");
	_cleanup_free_ char *src_path = ib_path_join(dir, "sources.list");
	_cleanup_free_ char *conf = apt_conf(dir, lists, status, p->arch);
	_cleanup_free_ char *src =
	        xasprintf("deb [signed-by=%s] %s %s main\n", DEBIAN_KEYRING, mirror, p->suite);
	int r;
	if ((r = ib_mkdir_p(ctx, empty, 0755)) < 0 || (r = ib_mkdir_p(ctx, partial, 0755)) < 0 ||
	    (r = ib_mkdir_p(ctx, state, 0755)) < 0 ||
	    (r = ib_mkdir_p(ctx, lists_partial, 0755)) < 0 ||
	    (r = ib_write_file_atomic(ctx, conf_path, conf, strlen(conf), 0644)) < 0 ||
	    (r = ib_write_file_atomic(ctx, src_path, src, strlen(src), 0644)) < 0)
		return r;
	_cleanup_free_ char *env0 = xasprintf("APT_CONFIG=%s", conf_path);
	const char *const env[] = {env0, "LC_ALL=C", NULL};

	/* The index is shared by builds on this cache: one updates it at a time. */
	_cleanup_close_ int lock = ib_lock_file(ctx, lockp);
	if (lock < 0)
		return lock;
	if (fo->offline) {
		if (!lists_present(lists))
			return ib_error(ctx, IB_E_NETWORK,
			                "offline: no package index of %s %s in the cache for role "
			                "'%s' (build it once online)",
			                mirror, p->suite, role->role->name);
	} else {
		const char *const argv[] = {"apt-get", "-q", "update", NULL};
		r = ib_run(ctx, argv, env, IB_RUN_STDOUT_TO_LOG, NULL);
		if (r < 0)
			return r;
	}

	struct strv argv = {0};
	strv_push(&argv, "apt-get");
	strv_push(&argv, "-qq");
	strv_push(&argv, "--print-uris");
	strv_push(&argv, "--yes");
	strv_push(&argv, "install");
	for (size_t i = 0; i < role->packages.n; i++)
		strv_push(&argv, role->packages.v[i]);
	_cleanup_free_ char *out = NULL;
	r = ib_run(ctx, (const char *const *)argv.v, env, IB_RUN_CAPTURE_STDOUT, &out);
	strv_release(&argv);
	if (r < 0)
		return r;

	struct ib_fetch_item *items = NULL;
	struct strv whats = {0};
	size_t n = 0;
	char *save = NULL;
	for (char *line = strtok_r(out, "\n", &save); line && r == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		char *url = NULL, *file = NULL, *hex = NULL;
		if ((r = parse_uri_line(ctx, line, &url, &file, &hex)) < 0)
			break;
		items = xrealloc(items, (n + 1) * sizeof(*items));
		memset(&items[n], 0, sizeof(*items));
		strv_push(ret_names, file);
		strv_push_take(&whats, xasprintf("package %s", file));
		items[n].url = url;
		items[n].sha256 = hex;
		n++;
	}
	for (size_t i = 0; i < n; i++)
		items[i].what = whats.v[i];
	if (r == 0 && n) {
		struct ib_cas cas = {0};
		r = ib_cas_open(ctx, o->cache_dir, &cas);
		if (r == 0)
			r = ib_fetch_all(ctx, &cas, &deb_fo, items, n);
		ib_cas_release(&cas);
	}
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			strv_push(ret_debs, items[i].path);
		ib_fetch_item_release(&items[i]);
	}
	free(items);
	strv_release(&whats);
	if (r == 0)
		ib_log(ctx, IB_LOG_INFO, "%zu package file(s) to install", n);
	return r;
}
