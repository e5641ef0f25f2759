/* check_layer.c: the role layer tar, read back with GNU tar; unit enabling; SOURCE_DATE_EPOCH. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "layer/layer.h"
#include "testutil.h"
#include "util/strbuf.h"

/* ---- a role built by hand (the spec parser is tested on its own) ---- */

static struct ib_role fx_role;
static struct ib_resolved fx_res;
static struct ib_project fx_proj;

static void fx_begin(const char *name)
{
	memset(&fx_role, 0, sizeof(fx_role));
	memset(&fx_res, 0, sizeof(fx_res));
	memset(&fx_proj, 0, sizeof(fx_proj));
	fx_role.name = xstrdup(name);
	fx_res.role = &fx_role;
}

static void fx_end(void)
{
	for (size_t i = 0; i < fx_res.n_files; i++) {
		free(fx_res.files[i]->source);
		free(fx_res.files[i]->dest);
		free(fx_res.files[i]->owner);
		free(fx_res.files[i]);
	}
	free(fx_res.files);
	for (size_t i = 0; i < fx_res.n_cloud_init; i++) {
		free(fx_res.cloud_init[i]->key);
		free(fx_res.cloud_init[i]->yaml);
		free(fx_res.cloud_init[i]);
	}
	free(fx_res.cloud_init);
	strv_release(&fx_res.units);
	strv_release(&fx_res.firstboot);
	free(fx_role.name);
}

/* source relative to the test dir; mode < 0: not given. */
static void fx_file(const char *source, const char *dest, int mode, uid_t uid, gid_t gid)
{
	struct ib_file_spec *f = xcalloc(1, sizeof(*f));
	f->source = ib_path_join(tu_dir, source);
	f->dest = xstrdup(dest);
	f->has_mode = mode >= 0;
	f->mode = mode >= 0 ? (mode_t)mode : 0;
	f->uid = uid;
	f->gid = gid;
	f->owner = xasprintf("%u:%u", (unsigned)uid, (unsigned)gid);
	f->pos.file = "images/test.yaml";
	f->pos.line = (int)fx_res.n_files + 3;
	f->pos.col = 5;
	fx_res.files = xrealloc(fx_res.files, (fx_res.n_files + 1) * sizeof(*fx_res.files));
	fx_res.files[fx_res.n_files++] = f;
}

static void fx_unit(const char *u)
{
	strv_push(&fx_res.units, u);
}

static void fx_firstboot(const char *source)
{
	strv_push_take(&fx_res.firstboot, ib_path_join(tu_dir, source));
}

static void fx_cloud(const char *key, const char *yaml)
{
	struct ib_kv *kv = xcalloc(1, sizeof(*kv));
	kv->key = xstrdup(key);
	kv->yaml = xstrdup(yaml);
	fx_res.cloud_init =
	        xrealloc(fx_res.cloud_init, (fx_res.n_cloud_init + 1) * sizeof(*fx_res.cloud_init));
	fx_res.cloud_init[fx_res.n_cloud_init++] = kv;
}

static struct ib_ctx build_ctx;

/* Build into out with the given root tree (NULL for none); returns ib_layer_build's code,
 * the message stays in build_ctx.err. */
static int build(const char *rootfs, const char *out, time_t mtime)
{
	ib_ctx_init(&build_ctx);
	_cleanup_free_ char *tree = rootfs ? ib_path_join(tu_dir, rootfs) : NULL;
	struct ib_layer_opts o = {
	        .project = &fx_proj,
	        .role = &fx_res,
	        .rootfs_tree = tree,
	        .mtime = mtime,
	};
	return ib_layer_build(&build_ctx, &o, out);
}

static void build_ok(const char *rootfs, const char *out)
{
	int r = build(rootfs, out, IB_DEFAULT_EPOCH);
	ck_assert_msg(r == 0, "build failed (%d): %s", r, build_ctx.err);
}

static void build_fails(const char *rootfs, const char *out, const char *msg)
{
	int r = build(rootfs, out, IB_DEFAULT_EPOCH);
	ck_assert_int_eq(r, -IB_E_SPEC);
	ck_assert_str_eq(build_ctx.err, msg);
}

/* GNU tar's verbose listing, whitespace squeezed, in UTC. */
static char *listing(const char *tar)
{
	_cleanup_free_ char *cmd = xasprintf(
	        "TZ=UTC tar --numeric-owner --full-time -tvf '%s' | awk '{$1=$1; print}'", tar);
	return tu_sh(cmd);
}

/* Only the lines of the listing containing needle. */
static char *listing_grep(const char *tar, const char *needle)
{
	_cleanup_free_ char *cmd = xasprintf("TZ=UTC tar --numeric-owner --full-time -tvf '%s' | "
	                                     "awk '{$1=$1; print}' | grep -F -- '%s' || true",
	                                     tar, needle);
	return tu_sh(cmd);
}

static void assert_listing(const char *tar, const char *expected)
{
	_cleanup_free_ char *got = listing(tar);
	ck_assert_str_eq(got, expected);
}

static char *extract_one(const char *tar, const char *path)
{
	_cleanup_free_ char *cmd = xasprintf("tar -xOf '%s' '%s'", tar, path);
	return tu_sh(cmd);
}

static void make_exec(const char *path)
{
	ck_assert_int_eq(chmod(path, 0755), 0);
}

static int no_temp_files(void)
{
	_cleanup_free_ char *out = tu_sh("ls -a | grep -c '\\.tmp\\.' || true");
	return streq(out, "0\n");
}

/* ---- SOURCE_DATE_EPOCH ---- */

START_TEST(test_epoch_parse)
{
	unsetenv("SOURCE_DATE_EPOCH");
	ck_assert_int_eq(ib_source_date_epoch(), IB_DEFAULT_EPOCH);
	static const struct {
		const char *s;
		long long want;
	} cases[] = {
	        {"0", 0},
	        {"1700000000", 1700000000},
	        {"0001700000000", 1700000000},
	        {"253402300799", 253402300799LL},
	        {"253402300800", -1},
	        {"99999999999999999999999999", -1},
	        {"", -1},
	        {"-5", -1},
	        {"+5", -1},
	        {" 5", -1},
	        {"5 ", -1},
	        {"12a", -1},
	        {"1.5", -1},
	        {"0x10", -1},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		setenv("SOURCE_DATE_EPOCH", cases[i].s, 1);
		ck_assert_msg((long long)ib_source_date_epoch() == cases[i].want, "'%s' gave %lld",
		              cases[i].s, (long long)ib_source_date_epoch());
	}
	unsetenv("SOURCE_DATE_EPOCH");
}
END_TEST

/* ---- contents and format ---- */

START_TEST(test_basic_contents)
{
	tu_write("files/motd", "hello\n");
	tu_write("files/tool.sh", "#!/bin/sh\necho tool\n");
	make_exec("files/tool.sh");
	tu_write("files/secret", "s3cret\n");
	tu_write("files/plain-exec", "#!/bin/sh\n");
	make_exec("files/plain-exec");
	tu_write("scripts/resize.sh", "#!/bin/sh\n");
	tu_write("scripts/hello.sh", "#!/bin/sh\necho hi\n");

	fx_begin("web");
	fx_file("files/motd", "/etc/motd", -1, 0, 0);
	fx_file("files/tool.sh", "/usr/local/bin/tool", -1, 0, 0);
	fx_file("files/secret", "/etc/app/secret", 0600, 1000, 1001);
	fx_file("files/plain-exec", "/etc/app/not-exec", 0640, 0, 0);
	fx_firstboot("scripts/resize.sh");
	fx_firstboot("scripts/hello.sh");
	fx_cloud("growpart", "growpart:\n  mode: auto\n");
	fx_cloud("ssh_pwauth", "ssh_pwauth: false\n");
	build_ok(NULL, "layer.tar");
	ck_assert(no_temp_files());

	assert_listing(
	        "layer.tar",
	        "-rw-r----- 0/0 10 2024-01-01 00:00:00 etc/app/not-exec\n"
	        "-rw------- 1000/1001 7 2024-01-01 00:00:00 etc/app/secret\n"
	        "-rw-r--r-- 0/0 82 2024-01-01 00:00:00 etc/cloud/cloud.cfg.d/90-imgbuild.cfg\n"
	        "-rw-r--r-- 0/0 4 2024-01-01 00:00:00 etc/imgbuild/role\n"
	        "-rw-r--r-- 0/0 6 2024-01-01 00:00:00 etc/motd\n"
	        "-rwxr-xr-x 0/0 10 2024-01-01 00:00:00 usr/lib/imgbuild/firstboot.d/10-resize.sh\n"
	        "-rwxr-xr-x 0/0 18 2024-01-01 00:00:00 usr/lib/imgbuild/firstboot.d/20-hello.sh\n"
	        "-rwxr-xr-x 0/0 20 2024-01-01 00:00:00 usr/local/bin/tool\n");
	_cleanup_free_ char *role = extract_one("layer.tar", "etc/imgbuild/role");
	ck_assert_str_eq(role, "web\n");
	_cleanup_free_ char *cfg =
	        extract_one("layer.tar", "etc/cloud/cloud.cfg.d/90-imgbuild.cfg");
	ck_assert_str_eq(cfg, "# written by imgbuild from the role spec\n"
	                      "growpart:\n  mode: auto\n"
	                      "ssh_pwauth: false\n");
	_cleanup_free_ char *hello =
	        extract_one("layer.tar", "usr/lib/imgbuild/firstboot.d/20-hello.sh");
	ck_assert_str_eq(hello, "#!/bin/sh\necho hi\n");
	fx_end();
}
END_TEST

/* A templated file is its rendering in the layer, with the mode and owner given; an
 * unknown placeholder fails the build naming the template's line and column. */
START_TEST(test_template_rendered)
{
	tu_write("files/k.env", "V={{ version }}\nROLE={{role}}\n");
	tu_write("files/bad.conf", "ok\nx = {{ missing }}\n");
	struct ib_tvar vars[] = {{"role", "node"}, {"version", "v1.30.2"}};
	fx_begin("node");
	fx_file("files/k.env", "/etc/k.env", 0600, 0, 0);
	fx_res.files[0]->template = 1;
	fx_res.vars = vars;
	fx_res.n_vars = 2;
	build_ok(NULL, "layer.tar");
	_cleanup_free_ char *env = extract_one("layer.tar", "etc/k.env");
	ck_assert_str_eq(env, "V=v1.30.2\nROLE=node\n");
	_cleanup_free_ char *l = listing_grep("layer.tar", "etc/k.env");
	ck_assert_str_eq(l, "-rw------- 0/0 20 2024-01-01 00:00:00 etc/k.env\n");

	fx_file("files/bad.conf", "/etc/bad.conf", -1, 0, 0);
	fx_res.files[1]->template = 1;
	_cleanup_free_ char *src = ib_path_join(tu_dir, "files/bad.conf");
	_cleanup_free_ char *msg = xasprintf("%s:2:5: unknown template variable 'missing'", src);
	build_fails(NULL, "layer2.tar", msg);
	ck_assert_int_eq(access("layer2.tar", F_OK), -1);
	fx_res.vars = NULL;
	fx_res.n_vars = 0;
	fx_end();
}
END_TEST

START_TEST(test_no_cloud_init_no_cfg)
{
	fx_begin("bare");
	build_ok(NULL, "layer.tar");
	assert_listing("layer.tar", "-rw-r--r-- 0/0 5 2024-01-01 00:00:00 etc/imgbuild/role\n");
	fx_end();
}
END_TEST

/* ustar headers carry no user or group names and every mtime is the epoch given. */
START_TEST(test_header_fields)
{
	tu_write("files/a", "a\n");
	fx_begin("r");
	fx_file("files/a", "/a", -1, 0, 0);
	ck_assert_int_eq(build(NULL, "layer.tar", 1700000000), 0);
	_cleanup_free_ char *all = listing("layer.tar");
	ck_assert_str_eq(all, "-rw-r--r-- 0/0 2 2023-11-14 22:13:20 a\n"
	                      "-rw-r--r-- 0/0 2 2023-11-14 22:13:20 etc/imgbuild/role\n");
	/* Without --numeric-owner tar would print names stored in the header: none are. */
	_cleanup_free_ char *names = tu_sh("TZ=UTC tar -tvf layer.tar | awk '{print $2}'");
	ck_assert_str_eq(names, "0/0\n0/0\n");
	unsigned char hdr[512];
	int fd = open("layer.tar", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, hdr, sizeof(hdr)), 512);
	close(fd);
	ck_assert_int_eq(hdr[156], '0'); /* a plain file, no pax extended header before it */
	ck_assert_int_eq(hdr[265], 0);   /* uname */
	ck_assert_int_eq(hdr[297], 0);   /* gname */
	ck_assert(memcmp(hdr + 257, "ustar", 5) == 0);
	fx_end();
}
END_TEST

static void set_mtime(const char *path, time_t t)
{
	struct timeval tv[2] = {{t, 0}, {t, 0}};
	ck_assert_int_eq(utimes(path, tv), 0);
}

START_TEST(test_deterministic)
{
	tu_write("files/one", "1\n");
	tu_write("files/two", "22\n");
	tu_write("files/tree/x/y", "y\n");
	ck_assert_int_eq(symlink("y", "files/tree/x/link"), 0);
	tu_write("rootfs/lib/systemd/system/ssh.service",
	         "[Install]\nWantedBy=multi-user.target\n");

	fx_begin("det");
	fx_file("files/one", "/etc/one", -1, 0, 0);
	fx_file("files/two", "/etc/two", 0600, 0, 0);
	fx_file("files/tree", "/srv/tree", -1, 33, 33);
	fx_unit("ssh.service");
	build_ok("rootfs", "a.tar");
	/* Host times and another order of declaration change nothing. */
	set_mtime("files/one", 1000000000);
	set_mtime("files/tree/x/y", 1200000000);
	struct ib_file_spec *t = fx_res.files[0];
	fx_res.files[0] = fx_res.files[2];
	fx_res.files[2] = t;
	build_ok("rootfs", "b.tar");
	_cleanup_free_ char *cmp = tu_sh("cmp a.tar b.tar && echo same");
	ck_assert_str_eq(cmp, "same\n");
	_cleanup_free_ char *sum = tu_sh("sha256sum < a.tar");
	build_ok("rootfs", "c.tar");
	_cleanup_free_ char *sum2 = tu_sh("sha256sum < c.tar");
	ck_assert_str_eq(sum, sum2);
	/* Entries come sorted by path, bytewise. */
	_cleanup_free_ char *names = tu_sh("tar -tf a.tar");
	_cleanup_free_ char *sorted = tu_sh("tar -tf a.tar | LC_ALL=C sort");
	ck_assert_str_eq(names, sorted);
	fx_end();
}
END_TEST

START_TEST(test_dir_recursion)
{
	tu_write("site/index.html", "<h1>hi</h1>\n");
	tu_write("site/bin/run", "#!/bin/sh\n");
	make_exec("site/bin/run");
	tu_write("site/deep/er/file.txt", "deep\n");
	ck_assert_int_eq(mkdir("site/empty", 0700), 0);
	ck_assert_int_eq(symlink("../index.html", "site/deep/index-link"), 0);
	ck_assert_int_eq(symlink("/etc/hostname", "site/abs-link"), 0);

	fx_begin("dirs");
	fx_file("site", "/var/www/site", 0750, 33, 34);
	build_ok(NULL, "layer.tar");
	assert_listing(
	        "layer.tar",
	        "-rw-r--r-- 0/0 5 2024-01-01 00:00:00 etc/imgbuild/role\n"
	        "drwxr-x--- 33/34 0 2024-01-01 00:00:00 var/www/site/\n"
	        "lrwxrwxrwx 33/34 0 2024-01-01 00:00:00 var/www/site/abs-link -> /etc/hostname\n"
	        "drwxr-xr-x 33/34 0 2024-01-01 00:00:00 var/www/site/bin/\n"
	        "-rwxr-xr-x 33/34 10 2024-01-01 00:00:00 var/www/site/bin/run\n"
	        "drwxr-xr-x 33/34 0 2024-01-01 00:00:00 var/www/site/deep/\n"
	        "drwxr-xr-x 33/34 0 2024-01-01 00:00:00 var/www/site/deep/er/\n"
	        "-rw-r--r-- 33/34 5 2024-01-01 00:00:00 var/www/site/deep/er/file.txt\n"
	        "lrwxrwxrwx 33/34 0 2024-01-01 00:00:00 var/www/site/deep/index-link -> "
	        "../index.html\n"
	        "drwxr-xr-x 33/34 0 2024-01-01 00:00:00 var/www/site/empty/\n"
	        "-rw-r--r-- 33/34 12 2024-01-01 00:00:00 var/www/site/index.html\n");
	fx_end();
}
END_TEST

START_TEST(test_dir_default_mode_and_fifo)
{
	tu_write("d/f", "f\n");
	fx_begin("dirs");
	fx_file("d", "/opt/d", -1, 0, 0);
	build_ok(NULL, "layer.tar");
	_cleanup_free_ char *l = listing_grep("layer.tar", "opt/d/");
	ck_assert_str_eq(l, "drwxr-xr-x 0/0 0 2024-01-01 00:00:00 opt/d/\n"
	                    "-rw-r--r-- 0/0 2 2024-01-01 00:00:00 opt/d/f\n");

	ck_assert_int_eq(mkfifo("d/pipe", 0644), 0);
	_cleanup_free_ char *msg = xasprintf("'%s/d/pipe' is not a regular file, a directory or a "
	                                     "symlink: it cannot go into an image layer",
	                                     tu_dir);
	build_fails(NULL, "layer2.tar", msg);
	ck_assert(!ib_exists("layer2.tar"));
	fx_end();
}
END_TEST

START_TEST(test_later_entry_replaces_and_conflicts)
{
	tu_write("conf/app/a.conf", "from dir\n");
	tu_write("conf/app/b.conf", "b\n");
	tu_write("override", "override\n");
	fx_begin("r");
	fx_file("conf", "/etc", -1, 0, 0);
	fx_file("override", "/etc/app/a.conf", 0600, 0, 0);
	build_ok(NULL, "layer.tar");
	_cleanup_free_ char *a = extract_one("layer.tar", "etc/app/a.conf");
	ck_assert_str_eq(a, "override\n");
	_cleanup_free_ char *l = listing_grep("layer.tar", "a.conf");
	ck_assert_str_eq(l, "-rw------- 0/0 9 2024-01-01 00:00:00 etc/app/a.conf\n");
	fx_end();

	/* A path imgbuild writes itself cannot come from files: too. */
	fx_begin("r");
	fx_file("override", "/etc/imgbuild/role", -1, 0, 0);
	build_fails(NULL, "x.tar",
	            "'/etc/imgbuild/role' is written twice, by the files: entry at "
	            "images/test.yaml:3:5 and by imgbuild (the role name)");
	fx_end();

	/* A file where a directory is needed. */
	fx_begin("r");
	fx_file("override", "/etc/app", -1, 0, 0);
	fx_file("override", "/etc/app/x", -1, 0, 0);
	build_fails(
	        NULL, "x.tar",
	        "'/etc/app' (from the files: entry at images/test.yaml:3:5) is not a directory, "
	        "but '/etc/app/x' (from the files: entry at images/test.yaml:4:5) is below it");
	fx_end();
}
END_TEST

START_TEST(test_long_names_and_big_ids)
{
	char name[300];
	snprintf(name, sizeof(name), "/srv/%s/%s/file-with-a-rather-long-name.conf",
	         "a-directory-name-that-is-long-enough-to-need-more-than-ustar-offers",
	         "and-another-one-to-go-well-past-one-hundred-and-fifty-five-characters");
	tu_write("f", "x\n");
	fx_begin("long");
	fx_file("f", name, -1, 3000000, 3000001);
	build_ok(NULL, "layer.tar");
	_cleanup_free_ char *want =
	        xasprintf("-rw-r--r-- 3000000/3000001 2 2024-01-01 00:00:00 %s\n", name + 1);
	_cleanup_free_ char *got = listing_grep("layer.tar", "srv/");
	ck_assert_str_eq(got, want);
	fx_end();
}
END_TEST

START_TEST(test_firstboot_numbering_past_nine)
{
	fx_begin("many");
	for (int i = 0; i < 10; i++) {
		_cleanup_free_ char *p = xasprintf("scripts/s%d.sh", i);
		tu_write(p, "#!/bin/sh\n");
		fx_firstboot(p);
	}
	build_ok(NULL, "layer.tar");
	_cleanup_free_ char *names = tu_sh("tar -tf layer.tar | grep firstboot.d/ | head -2; tar "
	                                   "-tf layer.tar | grep firstboot.d/ | tail -1");
	ck_assert_str_eq(names, "usr/lib/imgbuild/firstboot.d/010-s0.sh\n"
	                        "usr/lib/imgbuild/firstboot.d/020-s1.sh\n"
	                        "usr/lib/imgbuild/firstboot.d/100-s9.sh\n");
	fx_end();
}
END_TEST

/* ---- units ---- */

START_TEST(test_unit_in_layer)
{
	tu_write("units/hello.service",
	         "[Unit]\nDescription=hello\n\n[Service]\nExecStart=/bin/true\n\n"
	         "[Install]\nWantedBy=multi-user.target\n");
	tu_write("units/other.service", "[Install]\nWantedBy=graphical.target\n");
	fx_begin("u");
	fx_file("units/hello.service", "/etc/systemd/system/hello.service", -1, 0, 0);
	fx_file("units/other.service", "/usr/lib/systemd/system/other.service", -1, 0, 0);
	fx_unit("hello.service");
	fx_unit("other"); /* as with systemctl, ".service" is implied */
	build_ok(NULL, "layer.tar");
	_cleanup_free_ char *l = listing_grep("layer.tar", " -> ");
	ck_assert_str_eq(l, "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 "
	                    "etc/systemd/system/graphical.target.wants/other.service -> "
	                    "/usr/lib/systemd/system/other.service\n"
	                    "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 "
	                    "etc/systemd/system/multi-user.target.wants/hello.service -> "
	                    "/etc/systemd/system/hello.service\n");
	fx_end();
}
END_TEST

START_TEST(test_unit_from_usrmerged_rootfs)
{
	/* Debian 12: /lib -> usr/lib, units shipped under /usr/lib, linked as /lib/... */
	tu_write("rootfs/usr/lib/systemd/system/ssh.service",
	         "[Unit]\nDescription=OpenBSD Secure Shell server\n\n"
	         "[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n");
	ck_assert_int_eq(symlink("usr/lib", "rootfs/lib"), 0);
	/* A unit from the role's files, shipped into /usr/lib, seen through /lib too. */
	tu_write("units/mine.service", "[Install]\nWantedBy=multi-user.target\n");
	fx_begin("u");
	fx_file("units/mine.service", "/usr/lib/systemd/system/mine.service", -1, 0, 0);
	fx_unit("ssh.service");
	fx_unit("mine.service");
	build_ok("rootfs", "layer.tar");
	_cleanup_free_ char *l = listing_grep("layer.tar", " -> ");
	ck_assert_str_eq(l, "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 "
	                    "etc/systemd/system/multi-user.target.wants/mine.service -> "
	                    "/lib/systemd/system/mine.service\n"
	                    "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 "
	                    "etc/systemd/system/multi-user.target.wants/ssh.service -> "
	                    "/lib/systemd/system/ssh.service\n"
	                    "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 etc/systemd/system/sshd.service "
	                    "-> /lib/systemd/system/ssh.service\n");
	fx_end();
}
END_TEST

START_TEST(test_unit_rootfs_absolute_symlinks)
{
	/* An absolute /lib symlink must resolve inside the tree, never on the host. */
	tu_write("rootfs/usr/lib/systemd/system/chrony.service",
	         "[Install]\nWantedBy=multi-user.target\nAlias=chronyd.service\n");
	ck_assert_int_eq(symlink("/usr/lib", "rootfs/lib"), 0);
	/* An /etc override wins over /lib. */
	tu_write("rootfs/etc/systemd/system/cron.service", "[Install]\nWantedBy=timers.target\n");
	tu_write("rootfs/usr/lib/systemd/system/cron.service",
	         "[Install]\nWantedBy=multi-user.target\n");
	fx_begin("u");
	fx_unit("chrony.service");
	fx_unit("cron.service");
	build_ok("rootfs", "layer.tar");
	_cleanup_free_ char *l = listing_grep("layer.tar", " -> ");
	ck_assert_str_eq(l,
	                 "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 etc/systemd/system/chronyd.service "
	                 "-> /lib/systemd/system/chrony.service\n"
	                 "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 "
	                 "etc/systemd/system/multi-user.target.wants/chrony.service -> "
	                 "/lib/systemd/system/chrony.service\n"
	                 "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 "
	                 "etc/systemd/system/timers.target.wants/cron.service -> "
	                 "/etc/systemd/system/cron.service\n");
	fx_end();
}
END_TEST

START_TEST(test_unit_install_syntax)
{
	tu_write("rootfs/lib/systemd/system/a.service",
	         "[Install]\n"
	         "# a comment\n"
	         "; another\n"
	         "WantedBy = multi-user.target  graphical.target\n"
	         "WantedBy=default.target\n"
	         "RequiredBy=b.target \\\n"
	         "   c.target\n"
	         "UpheldBy=d.target\n"
	         "[Service]\n"
	         "WantedBy=ignored.target\n");
	tu_write("rootfs/lib/systemd/system/reset.service",
	         "[Install]\nWantedBy=old.target\nWantedBy=\nWantedBy=new.target\n");
	fx_begin("u");
	fx_unit("a.service");
	fx_unit("reset.service");
	build_ok("rootfs", "layer.tar");
	_cleanup_free_ char *l = tu_sh("tar -tf layer.tar | grep systemd");
	ck_assert_str_eq(l, "etc/systemd/system/b.target.requires/a.service\n"
	                    "etc/systemd/system/c.target.requires/a.service\n"
	                    "etc/systemd/system/d.target.upholds/a.service\n"
	                    "etc/systemd/system/default.target.wants/a.service\n"
	                    "etc/systemd/system/graphical.target.wants/a.service\n"
	                    "etc/systemd/system/multi-user.target.wants/a.service\n"
	                    "etc/systemd/system/new.target.wants/reset.service\n");
	fx_end();
}
END_TEST

START_TEST(test_unit_also_and_loops)
{
	tu_write("rootfs/lib/systemd/system/x.socket",
	         "[Install]\nWantedBy=sockets.target\nAlso=x.service\n");
	tu_write("rootfs/lib/systemd/system/x.service",
	         "[Install]\nWantedBy=multi-user.target\nAlso=x.socket x-helper.service\n");
	tu_write("rootfs/lib/systemd/system/x-helper.service",
	         "[Install]\nAlso=x.service\nAlias=xh.service\n");
	fx_begin("u");
	fx_unit("x.socket");
	build_ok("rootfs", "layer.tar");
	_cleanup_free_ char *l = listing_grep("layer.tar", " -> ");
	ck_assert_str_eq(
	        l,
	        "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 "
	        "etc/systemd/system/multi-user.target.wants/x.service -> "
	        "/lib/systemd/system/x.service\n"
	        "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 "
	        "etc/systemd/system/sockets.target.wants/x.socket -> /lib/systemd/system/x.socket\n"
	        "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 etc/systemd/system/xh.service -> "
	        "/lib/systemd/system/x-helper.service\n");
	fx_end();
}
END_TEST

START_TEST(test_unit_templates)
{
	tu_write("rootfs/lib/systemd/system/getty@.service",
	         "[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n");
	tu_write("rootfs/lib/systemd/system/serial-getty@.service",
	         "[Install]\nWantedBy=getty.target\nAlias=console@.service\nAlso=%p-log@%i."
	         "service\n");
	tu_write("rootfs/lib/systemd/system/serial-getty-log@.service",
	         "[Install]\nWantedBy=%N-x.target\n");
	/* An instance with its own file is linked to that file, not to the template. */
	tu_write("rootfs/lib/systemd/system/special@one.service",
	         "[Install]\nWantedBy=multi-user.target\n");
	tu_write("rootfs/lib/systemd/system/special@.service",
	         "[Install]\nWantedBy=never.target\n");
	fx_begin("u");
	fx_unit("getty@.service");
	fx_unit("serial-getty@ttyS0.service");
	fx_unit("special@one.service");
	build_ok("rootfs", "layer.tar");
	_cleanup_free_ char *l = listing_grep("layer.tar", " -> ");
	ck_assert_str_eq(
	        l, "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 etc/systemd/system/console@ttyS0.service "
	           "-> /lib/systemd/system/serial-getty@.service\n"
	           "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 "
	           "etc/systemd/system/getty.target.wants/getty@tty1.service -> "
	           "/lib/systemd/system/getty@.service\n"
	           "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 "
	           "etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service -> "
	           "/lib/systemd/system/serial-getty@.service\n"
	           "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 "
	           "etc/systemd/system/multi-user.target.wants/special@one.service -> "
	           "/lib/systemd/system/special@one.service\n"
	           "lrwxrwxrwx 0/0 0 2024-01-01 00:00:00 "
	           "etc/systemd/system/serial-getty-log@ttyS0-x.target.wants/"
	           "serial-getty-log@ttyS0.service -> "
	           "/lib/systemd/system/serial-getty-log@.service\n");
	fx_end();
}
END_TEST

START_TEST(test_unit_errors)
{
	tu_write("rootfs/lib/systemd/system/static.service",
	         "[Unit]\nDescription=static\n[Service]\nExecStart=/bin/true\n");
	tu_write("rootfs/lib/systemd/system/empty.service", "[Install]\n# nothing\n");
	tu_write("rootfs/lib/systemd/system/tmpl@.service",
	         "[Install]\nWantedBy=multi-user.target\n");
	tu_write("rootfs/lib/systemd/system/host.service", "[Install]\nWantedBy=%H.target\n");
	tu_write("rootfs/lib/systemd/system/bad.service", "[Install]\nWantedBy=../../etc/passwd\n");
	tu_write("rootfs/lib/systemd/system/badalias.service", "[Install]\nAlias=foo.socket\n");
	tu_write("rootfs/lib/systemd/system/masked.service",
	         "[Install]\nWantedBy=multi-user.target\n");
	tu_write("rootfs/etc/systemd/system/.keep", "");
	ck_assert_int_eq(symlink("/dev/null", "rootfs/etc/systemd/system/masked.service"), 0);
	tu_write("existing.tar", "old contents");

	static const struct {
		const char *unit;
		const char *msg;
	} cases[] = {
	        {"nope.service",
	         "unit 'nope.service' not found in the role's files or the root filesystem"},
	        {"static.service",
	         "unit 'static.service' has no [Install] section, it cannot be enabled"},
	        {"empty.service", "unit 'empty.service' has nothing to enable in its [Install] "
	                          "section (no WantedBy=, RequiredBy=, Alias= or Also=)"},
	        {"tmpl@.service", "unit 'tmpl@.service' is a template without DefaultInstance=: "
	                          "enable an instance such as 'tmpl@name.service'"},
	        {"host.service", "unit 'host.service': specifier '%H' in its [Install] section has "
	                         "no value at build time"},
	        {"bad.service",
	         "unit 'bad.service': '../../etc/passwd' in WantedBy= is not a valid unit name"},
	        {"badalias.service",
	         "unit 'badalias.service': Alias=foo.socket is not of the same unit type"},
	        {"masked.service",
	         "unit 'masked.service' is masked (linked to /dev/null), it cannot be enabled"},
	        {"no/slash.service", "'no/slash.service' is not a valid systemd unit name"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		fx_begin("u");
		fx_unit(cases[i].unit);
		build_fails("rootfs", "existing.tar", cases[i].msg);
		fx_end();
		/* Nothing half-written, the old output untouched. */
		ck_assert(no_temp_files());
		_cleanup_free_ char *old = tu_sh("cat existing.tar");
		ck_assert_str_eq(old, "old contents");
	}

	/* Without a root tree only the layer is searched. */
	fx_begin("u");
	fx_unit("static.service");
	build_fails(NULL, "x.tar",
	            "unit 'static.service' not found in the role's files or the root filesystem");
	fx_end();
}
END_TEST

START_TEST(test_unit_conflicting_aliases)
{
	tu_write("rootfs/lib/systemd/system/one.service", "[Install]\nAlias=same.service\n");
	tu_write("rootfs/lib/systemd/system/two.service", "[Install]\nAlias=same.service\n");
	fx_begin("u");
	fx_unit("one.service");
	fx_unit("two.service");
	build_fails("rootfs", "x.tar",
	            "'/etc/systemd/system/same.service' is written twice, by enabling unit "
	            "'one.service' and by enabling unit 'two.service'");
	fx_end();
}
END_TEST

START_TEST(test_atomic_output)
{
	tu_write("f", "x\n");
	tu_write("layer.tar", "previous");
	fx_begin("r");
	fx_file("f", "/f", -1, 0, 0);
	/* An output directory that does not exist: the error names the temporary file. */
	int r = build(NULL, "missing-dir/layer.tar", IB_DEFAULT_EPOCH);
	ck_assert_int_eq(r, -IB_E_IO);
	ck_assert_msg(strstr(build_ctx.err, "cannot create '") != NULL, "%s", build_ctx.err);
	/* A source that vanished: IB_E_IO, previous output intact, no temporary left. */
	fx_file("gone", "/gone", -1, 0, 0);
	r = build(NULL, "layer.tar", IB_DEFAULT_EPOCH);
	ck_assert_int_eq(r, -IB_E_IO);
	_cleanup_free_ char *old = tu_sh("cat layer.tar");
	ck_assert_str_eq(old, "previous");
	ck_assert(no_temp_files());
	fx_end();

	/* Success replaces the file and leaves no temporary. */
	fx_begin("r");
	build_ok(NULL, "layer.tar");
	ck_assert(no_temp_files());
	_cleanup_free_ char *l = listing("layer.tar");
	ck_assert_str_eq(l, "-rw-r--r-- 0/0 2 2024-01-01 00:00:00 etc/imgbuild/role\n");
	fx_end();
}
END_TEST

static Suite *layer_suite(void)
{
	Suite *s = suite_create("layer");
	TU_CASE(s, "epoch", test_epoch_parse);
	TU_CASE(s, "basic", test_basic_contents);
	TU_CASE(s, "template", test_template_rendered);
	TU_CASE(s, "bare", test_no_cloud_init_no_cfg);
	TU_CASE(s, "headers", test_header_fields);
	TU_CASE(s, "deterministic", test_deterministic);
	TU_CASE(s, "dirs", test_dir_recursion);
	TU_CASE(s, "dir-mode-fifo", test_dir_default_mode_and_fifo);
	TU_CASE(s, "replace-conflict", test_later_entry_replaces_and_conflicts);
	TU_CASE(s, "long-names", test_long_names_and_big_ids);
	TU_CASE(s, "firstboot-numbers", test_firstboot_numbering_past_nine);
	TU_CASE(s, "unit-layer", test_unit_in_layer);
	TU_CASE(s, "unit-usrmerge", test_unit_from_usrmerged_rootfs);
	TU_CASE(s, "unit-abs-symlinks", test_unit_rootfs_absolute_symlinks);
	TU_CASE(s, "unit-syntax", test_unit_install_syntax);
	TU_CASE(s, "unit-also", test_unit_also_and_loops);
	TU_CASE(s, "unit-templates", test_unit_templates);
	TU_CASE(s, "unit-errors", test_unit_errors);
	TU_CASE(s, "unit-alias-conflict", test_unit_conflicting_aliases);
	TU_CASE(s, "atomic", test_atomic_output);
	return s;
}

TU_MAIN(layer_suite)
