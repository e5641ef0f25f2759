/* check_rootfs_debs.c: keeping a bootstrap's .debs with the mirror's stanzas, and the flat
 * repository an offline bootstrap installs from. */
#include "rootfs/debs.h"
#include "testutil.h"
#include "util/hash.h"

#define KEY "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A work directory as mmdebstrap's hooks leave it: two .debs, a list holding their stanzas
 * among others (in another order), and sources.list. */
static void make_work(int with_b)
{
	tu_write("work/archives/a_1_amd64.deb", "package a\n");
	if (with_b)
		tu_write("work/archives/b_2_all.deb", "package b, bigger\n");
	tu_write("work/archives/lock", "");
	tu_write("work/sources.list", "deb http://deb.debian.org/debian bookworm main\n");
	char ha[65], hb[65];
	ib_sha256_hex("package a\n", 10, ha);
	ib_sha256_hex("package b, bigger\n", 18, hb);
	_cleanup_free_ char *list = xasprintf(
	        "Package: b\nVersion: 2\nArchitecture: all\nPriority: required\n"
	        "Filename: pool/main/b/b/b_2_all.deb\nSize: 18\nSHA256: %s\n\n"
	        "Package: other\nVersion: 9\nFilename: pool/main/o/other/other_9_all.deb\n"
	        "SHA256: %s\n\n"
	        "Package: a\nVersion: 1\nArchitecture: amd64\nPriority: important\n"
	        "Filename: pool/main/a/a/a_1_amd64.deb\nSize: 10\nSHA256: %s\n",
	        hb, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", ha);
	tu_write("work/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages", list);
	tu_write("work/lists/deb.debian.org_debian_dists_bookworm_InRelease", "signed\n");
}

START_TEST(test_keep_and_repo)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_cas cas = {0};
	ck_assert_int_eq(ib_cas_open(&ctx, "cache", &cas), 0);
	make_work(1);
	ck_assert_msg(ib_rootfs_debs_keep(&ctx, &cas, KEY, "work") == 0, "%s", ctx.err);
	/* The .debs moved into the cache. */
	_cleanup_free_ char *left = tu_sh("ls work/archives");
	ck_assert_str_eq(left, "lock\n");

	struct ib_rootfs_debs d = {0};
	ck_assert_int_eq(ib_rootfs_debs_get(&ctx, &cas, KEY, 1, &d), 1);
	ck_assert_uint_eq(d.debs.n, 2);
	ck_assert_str_eq(d.files.v[0], "pool/main/a/a/a_1_amd64.deb");
	ck_assert_str_eq(d.files.v[1], "pool/main/b/b/b_2_all.deb");

	ck_assert_msg(ib_rootfs_debs_repo(&ctx, &cas, &d, "bookworm", "repo") == 0, "%s", ctx.err);
	_cleanup_free_ char *a = tu_sh("cat repo/pool/main/a/a/a_1_amd64.deb repo/sources.list");
	ck_assert_str_eq(a, "package a\ndeb http://deb.debian.org/debian bookworm main\n");
	/* The mirror's own stanzas of exactly those files, by pool path; not the others. */
	_cleanup_free_ char *pk = tu_sh("grep -E '^(Package|Priority):' repo/Packages");
	ck_assert_str_eq(pk, "Package: a\nPriority: important\nPackage: b\nPriority: required\n");
	_cleanup_free_ char *blank = tu_sh("grep -c '^$' repo/Packages");
	ck_assert_str_eq(blank, "1\n");
	_cleanup_free_ char *rel = tu_sh("grep -E '^(Suite|Codename):' repo/Release; "
	                                 "grep -c \"$(sha256sum repo/Packages | cut -c1-64) "
	                                 "$(stat -c %s repo/Packages) Packages\" repo/Release");
	ck_assert_str_eq(rel, "Suite: bookworm\nCodename: bookworm\n1\n");
	ib_rootfs_debs_release(&d);

	/* A .deb gone from the cache: the index is no longer usable (verify), or still read
	 * without verify. */
	_cleanup_free_ char *gone = tu_sh("chmod u+w cache/blobs/sha256/* && "
	                                  "rm cache/blobs/sha256/$(sha256sum repo/pool/main/b/b/b_2_all.deb | cut -c1-64) && echo ok");
	ck_assert_str_eq(gone, "ok\n");
	ck_assert_int_eq(ib_rootfs_debs_get(&ctx, &cas, KEY, 1, &d), 0);
	ck_assert_int_eq(ib_rootfs_debs_get(&ctx, &cas, KEY, 0, &d), 1);
	ib_rootfs_debs_release(&d);
	ck_assert_int_eq(ib_rootfs_debs_get(&ctx, &cas, "other-key", 0, &d), 0);
	ib_cas_release(&cas);
}
END_TEST

START_TEST(test_keep_unknown_deb)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_cas cas = {0};
	ck_assert_int_eq(ib_cas_open(&ctx, "cache", &cas), 0);
	make_work(1);
	/* A .deb the mirror's lists do not name cannot be put in a repository. */
	tu_write("work/archives/c_3_all.deb", "not from the mirror\n");
	ck_assert_int_eq(ib_rootfs_debs_keep(&ctx, &cas, KEY, "work"), -IB_E_TOOL);
	ck_assert_msg(strstr(ctx.err, "c_3_all.deb") && strstr(ctx.err, "not in the mirror's index"),
	              "%s", ctx.err);
	struct ib_rootfs_debs d = {0};
	ck_assert_int_eq(ib_rootfs_debs_get(&ctx, &cas, KEY, 0, &d), 0);
	ib_cas_release(&cas);
}
END_TEST

static Suite *debs_suite(void)
{
	Suite *s = suite_create("rootfs-debs");
	TU_CASE(s, "keep-and-repo", test_keep_and_repo);
	TU_CASE(s, "keep-unknown-deb", test_keep_unknown_deb);
	return s;
}

TU_MAIN(debs_suite)
