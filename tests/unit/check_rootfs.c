/* check_rootfs.c: cache keys, dpkg status parsing, confined extraction and sealing. */
#include <archive.h>
#include <archive_entry.h>

#include "rootfs/rootfs.h"
#include "testutil.h"

static struct ib_project proj;
static struct ib_resolved res;
static struct ib_role role;

static void fixture(void)
{
	memset(&proj, 0, sizeof(proj));
	memset(&res, 0, sizeof(res));
	memset(&role, 0, sizeof(role));
	proj.suite = (char *)"bookworm";
	proj.mirror = (char *)"http://deb.debian.org/debian";
	proj.arch = (char *)"amd64";
	proj.variant = (char *)"minbase";
	role.name = (char *)"base";
	res.role = &role;
}

static void key_of(char out[65])
{
	struct ib_rootfs_opts o = {.project = &proj, .role = &res, .cache_dir = ".", .epoch = 1704067200};
	ib_rootfs_key(&o, out);
}

START_TEST(test_key_changes_with_every_input)
{
	char base[65], k[65];
	fixture();
	key_of(base);
	key_of(k);
	ck_assert_str_eq(base, k); /* stable */
	ck_assert_int_eq(strlen(base), 64);

	proj.suite = (char *)"trixie";
	key_of(k);
	ck_assert_str_ne(base, k);
	fixture();
	proj.mirror = (char *)"http://mirror.example/debian";
	key_of(k);
	ck_assert_str_ne(base, k);
	fixture();
	proj.arch = (char *)"arm64";
	key_of(k);
	ck_assert_str_ne(base, k);
	fixture();
	proj.variant = (char *)"apt";
	key_of(k);
	ck_assert_str_ne(base, k);
	fixture();
	strv_push(&res.packages, "curl");
	key_of(k);
	ck_assert_str_ne(base, k);
	strv_release(&res.packages);
	fixture();
	struct ib_rootfs_opts o = {.project = &proj, .role = &res, .cache_dir = ".", .epoch = 1};
	ib_rootfs_key(&o, k);
	ck_assert_str_ne(base, k);
}
END_TEST

START_TEST(test_key_ignores_package_order_and_duplicates)
{
	char a[65], b[65];
	fixture();
	strv_push(&res.packages, "curl");
	strv_push(&res.packages, "jq");
	key_of(a);
	strv_release(&res.packages);
	strv_push(&res.packages, "jq");
	strv_push(&res.packages, "curl");
	strv_push(&res.packages, "curl");
	key_of(b);
	strv_release(&res.packages);
	ck_assert_str_eq(a, b);
	/* A package that is in the base set anyway changes nothing either. */
	key_of(a);
	strv_push(&res.packages, "systemd-sysv");
	key_of(b);
	strv_release(&res.packages);
	ck_assert_str_eq(a, b);
}
END_TEST

START_TEST(test_packages_from_dpkg_status)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	tu_write("t/var/lib/dpkg/status", "Package: zlib1g\n"
					  "Status: install ok installed\n"
					  "Version: 1:1.2.13.dfsg-1\n"
					  "\n"
					  "Package: removed\n"
					  "Status: deinstall ok config-files\n"
					  "Version: 1.0\n"
					  "\n"
					  "Package: bash\n"
					  "Status: install ok installed\n"
					  "Description: a shell\n"
					  " with continuation lines\n"
					  "Version: 5.2.15-2+b2\n");
	struct ib_package *p = NULL;
	size_t n = 0;
	ck_assert_int_eq(ib_tree_packages(&ctx, "t", &p, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(p[0].name, "bash");
	ck_assert_str_eq(p[0].version, "5.2.15-2+b2");
	ck_assert_str_eq(p[1].name, "zlib1g");
	ck_assert_str_eq(p[1].version, "1:1.2.13.dfsg-1");
	ib_packages_free(p, n);
	ck_assert_int_lt(ib_tree_packages(&ctx, "nonexistent", &p, &n), 0);
}
END_TEST

/* A layer tar with one file, written with libarchive. */
static void write_tar(const char *path, const char *name, const char *data)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0640);
	archive_entry_set_size(e, (la_int64_t)strlen(data));
	archive_entry_set_mtime(e, 1704067200, 0);
	ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
	archive_write_data(a, data, strlen(data));
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);
}

START_TEST(test_extract_confined_follows_symlinks_inside_the_tree)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	/* The tree's /var/run is an absolute symlink to /run, as in Debian: a layer file under
	 * /var/run must land in tree/run, never in the host's /run. */
	ck_assert_int_eq(ib_mkdir_p(&ctx, "tree/var", 0755), 0);
	ck_assert_int_eq(ib_mkdir_p(&ctx, "tree/run", 0755), 0);
	ck_assert_int_eq(symlink("/run", "tree/var/run"), 0);
	ck_assert_int_eq(symlink("../../../../../outside", "tree/escape"), 0);
	/* An existing symlink at the entry's own path is replaced, not written through. */
	ck_assert_int_eq(ib_mkdir_p(&ctx, "tree/etc", 0755), 0);
	ck_assert_int_eq(symlink("/etc/hostname", "tree/etc/resolv.conf"), 0);

	write_tar("a.tar", "var/run/imgbuild-test.conf", "confined\n");
	ck_assert_int_eq(ib_tree_extract(&ctx, "a.tar", "tree", IB_EXTRACT_CONFINE), 0);
	ck_assert(ib_exists("tree/run/imgbuild-test.conf"));
	ck_assert(!ib_exists("/run/imgbuild-test.conf"));

	write_tar("b.tar", "escape/x.conf", "stays\n");
	ck_assert_int_eq(ib_tree_extract(&ctx, "b.tar", "tree", IB_EXTRACT_CONFINE), 0);
	/* ".." stops at the tree's root: the link resolves to the tree's /outside. */
	ck_assert(ib_exists("tree/outside/x.conf"));
	ck_assert(!ib_exists("/outside"));

	write_tar("c.tar", "etc/resolv.conf", "nameserver 192.0.2.1\n");
	ck_assert_int_eq(ib_tree_extract(&ctx, "c.tar", "tree", IB_EXTRACT_CONFINE), 0);
	struct stat st;
	ck_assert_int_eq(lstat("tree/etc/resolv.conf", &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
}
END_TEST

/* A layer tar with one hard link, written with libarchive. */
static void write_link_tar(const char *path, const char *name, const char *target)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0640);
	archive_entry_set_hardlink(e, target);
	ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);
}

START_TEST(test_extract_confined_hard_link_targets)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	/* A hard link's target resolves in the tree as the image sees it: through the tree's
	 * /var/run -> /run, which stays (libarchive, left to itself, would unlink the symlink
	 * in the way and then not find the target). */
	ck_assert_int_eq(ib_mkdir_p(&ctx, "tree/var", 0755), 0);
	ck_assert_int_eq(ib_mkdir_p(&ctx, "tree/run", 0755), 0);
	ck_assert_int_eq(symlink("/run", "tree/var/run"), 0);
	tu_write("tree/run/a", "data\n");
	write_link_tar("l.tar", "var/run/b", "var/run/a");
	ck_assert_int_eq(ib_tree_extract(&ctx, "l.tar", "tree", IB_EXTRACT_CONFINE), 0);
	struct stat sa, sb;
	ck_assert_int_eq(stat("tree/run/a", &sa), 0);
	ck_assert_int_eq(stat("tree/run/b", &sb), 0);
	ck_assert_uint_eq(sa.st_ino, sb.st_ino);
	ck_assert_int_eq(lstat("tree/var/run", &sa), 0);
	ck_assert(S_ISLNK(sa.st_mode));

	/* Through a symlink out of the tree, the target resolves inside it, where it does not
	 * exist: an error, and the host file is not linked into the image. */
	ck_assert_int_eq(ib_mkdir_p(&ctx, "host", 0755), 0);
	tu_write("host/secret", "host file\n");
	_cleanup_free_ char *host = realpath("host", NULL);
	ck_assert_int_eq(symlink(host, "tree/out"), 0);
	write_link_tar("h.tar", "etc/shadow", "out/secret");
	ck_assert_int_lt(ib_tree_extract(&ctx, "h.tar", "tree", IB_EXTRACT_CONFINE), 0);
	ck_assert_int_eq(stat("host/secret", &sa), 0);
	ck_assert_uint_eq(sa.st_nlink, 1);
	ck_assert(!ib_exists("tree/etc/shadow"));
}
END_TEST

START_TEST(test_extract_bad_tar_is_an_error)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	tu_write("bad.tar", "this is not a tar archive at all, not even close");
	ck_assert_int_eq(ib_mkdir_p(&ctx, "tree", 0755), 0);
	ck_assert_int_lt(ib_tree_extract(&ctx, "bad.tar", "tree", 0), 0);
	ck_assert_ptr_nonnull(strstr(ctx.err, "bad.tar"));
}
END_TEST

START_TEST(test_seal)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	tu_write("t/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
	tu_write("t/etc/ssh/ssh_host_ed25519_key", "PRIVATE");
	tu_write("t/etc/ssh/ssh_host_ed25519_key.pub", "public");
	tu_write("t/etc/ssh/sshd_config", "keep me");
	tu_write("t/var/lib/cloud/instance/x", "state");
	tu_write("t/var/lib/apt/lists/deb.debian.org_Packages", "list");
	tu_write("t/tmp/junk", "junk");
	tu_write("t/var/lib/dbus/machine-id", "id");
	ck_assert_int_eq(ib_tree_seal(&ctx, "t"), 0);
	ck_assert_int_eq(ib_tree_seal(&ctx, "t"), 0); /* idempotent */
	ck_assert_int_eq(ib_file_size("t/etc/machine-id"), 0);
	ck_assert(!ib_exists("t/etc/ssh/ssh_host_ed25519_key"));
	ck_assert(!ib_exists("t/etc/ssh/ssh_host_ed25519_key.pub"));
	ck_assert(ib_exists("t/etc/ssh/sshd_config"));
	ck_assert(!ib_exists("t/var/lib/cloud"));
	ck_assert(ib_exists("t/var/lib/apt/lists"));
	ck_assert(!ib_exists("t/var/lib/apt/lists/deb.debian.org_Packages"));
	ck_assert(!ib_exists("t/tmp/junk"));
	ck_assert(!ib_exists("t/var/lib/dbus/machine-id"));
}
END_TEST

static Suite *rootfs_suite(void)
{
	Suite *s = suite_create("rootfs");
	TU_CASE(s, "key", test_key_changes_with_every_input);
	TU_CASE(s, "key-order", test_key_ignores_package_order_and_duplicates);
	TU_CASE(s, "packages", test_packages_from_dpkg_status);
	TU_CASE(s, "extract-confined", test_extract_confined_follows_symlinks_inside_the_tree);
	TU_CASE(s, "extract-hardlink", test_extract_confined_hard_link_targets);
	TU_CASE(s, "extract-bad", test_extract_bad_tar_is_an_error);
	TU_CASE(s, "seal", test_seal);
	return s;
}

TU_MAIN(rootfs_suite)
