/* check_bundle.c: Ed25519 keys and signatures, the bundle manifest, and bundles written and
 * read back (tampered ones rejected). */
#include "bundle/bundle.h"
#include "bundle/sign.h"
#include "testutil.h"
#include "util/hash.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEX_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

START_TEST(test_path_valid)
{
	static const char *const good[] = {
	        "cache/blobs/sha256/" HEX_A, "cache/refs/oci-tag/" HEX_B, "cache/refs/rootfs-debs/" HEX_A,
	        "project/imgbuild.yaml",     "project/images/files/base/x.conf", "images/base.qcow2",
	        "project/.hidden-is-a-name",
	};
	static const char *const bad[] = {
	        "",
	        "MANIFEST",
	        "cache/blobs/sha256/" HEX_A "0",
	        "cache/blobs/sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	        "cache/blobs/sha1/" HEX_A,
	        "cache/refs/Bad/" HEX_A,
	        "cache/refs/" HEX_A,
	        "cache/tmp/x",
	        "project/../etc/passwd",
	        "project/a/./b",
	        "project/a//b",
	        "project/a/",
	        "project/",
	        "project/a b",
	        "project/a\nb",
	        "/project/a",
	        "images/sub/base.qcow2",
	        "images/..",
	        "other/file",
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		ck_assert_msg(ib_bundle_path_valid(good[i]), "'%s' should be valid", good[i]);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		ck_assert_msg(!ib_bundle_path_valid(bad[i]), "'%s' should be refused", bad[i]);
}
END_TEST

static const char good_manifest[] = IB_BUNDLE_FORMAT "\n"
                                    "tool imgbuild 1.2.3\n"
                                    "created 1700000000\n"
                                    "signer " HEX_B "\n"
                                    "role app\n"
                                    "role base\n"
                                    "file " HEX_A " 12 cache/blobs/sha256/" HEX_A "\n"
                                    "file " HEX_B " 0 project/imgbuild.yaml\n"
                                    "xfile " HEX_C " 5 project/run.sh\n";

START_TEST(test_manifest_roundtrip)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_bundle_manifest m = {0};
	ck_assert_int_eq(ib_bundle_manifest_parse(&ctx, good_manifest, strlen(good_manifest), &m),
	                 0);
	ck_assert_str_eq(m.tool, "imgbuild 1.2.3");
	ck_assert_int_eq(m.created, 1700000000);
	ck_assert_str_eq(m.signer, HEX_B);
	ck_assert_uint_eq(m.roles.n, 2);
	ck_assert_uint_eq(m.n, 3);
	ck_assert_uint_eq(m.v[0].size, 12);
	ck_assert_int_eq(m.v[1].exec, 0);
	ck_assert_int_eq(m.v[2].exec, 1);
	ck_assert_ptr_eq(ib_bundle_manifest_find(&m, "project/imgbuild.yaml"), &m.v[1]);
	ck_assert_ptr_null(ib_bundle_manifest_find(&m, "project/other"));
	struct strbuf sb = STRBUF_INIT;
	ib_bundle_manifest_format(&m, &sb);
	ck_assert_str_eq(sb_str(&sb), good_manifest);
	sb_release(&sb);
	ib_bundle_manifest_release(&m);
}
END_TEST

/* Replace the first occurrence of from in good_manifest with to, parse, expect a failure
 * naming line. */
static void manifest_fails(const char *from, const char *to, const char *want)
{
	const char *at = strstr(good_manifest, from);
	ck_assert_ptr_nonnull(at);
	_cleanup_free_ char *text = xasprintf("%.*s%s%s", (int)(at - good_manifest), good_manifest,
	                                      to, at + strlen(from));
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_bundle_manifest m = {0};
	int r = ib_bundle_manifest_parse(&ctx, text, strlen(text), &m);
	ck_assert_msg(r == -IB_E_VERIFY, "'%s' -> '%s': parsed (%d)", from, to, r);
	ck_assert_msg(strstr(ctx.err, want), "'%s' -> '%s': error '%s' lacks '%s'", from, to,
	              ctx.err, want);
	ck_assert_ptr_null(m.v);
}

START_TEST(test_manifest_errors)
{
	manifest_fails(IB_BUNDLE_FORMAT, "imgbuild-bundle 2", "line 1: not an imgbuild bundle");
	manifest_fails("tool imgbuild 1.2.3\n", "", "line 2:");
	manifest_fails("created 1700000000", "created soon", "line 3: bad creation time");
	manifest_fails("signer " HEX_B, "signer xyz", "line 4:");
	/* A role after the first member, an unknown line, a bad member. */
	manifest_fails("role app\nrole base\n" "file " HEX_A " 12 cache/blobs/sha256/" HEX_A "\n",
	               "file " HEX_A " 12 cache/blobs/sha256/" HEX_A "\nrole app\n",
	               "line 6: unexpected line");
	manifest_fails("role app", "owner app", "line 5: unexpected line");
	manifest_fails(" 0 project/imgbuild.yaml", " 0 project/../imgbuild.yaml", "line 8: bad member");
	manifest_fails(" 0 project/imgbuild.yaml", " -1 project/imgbuild.yaml", "line 8: bad member");
	manifest_fails(" 0 project/imgbuild.yaml", " 00 project/imgbuild.yaml", "line 8: bad member");
	manifest_fails(" 0 project/imgbuild.yaml", " 99999999999999999999999 project/imgbuild.yaml",
	               "line 8: bad member");
	manifest_fails("xfile " HEX_C " 5 project/run.sh\n", "xfile " HEX_C " 5 project/run.sh",
	               "not a text ending in a newline");
	/* Order, duplicates, and a cache entry named other than its digest. */
	manifest_fails("project/imgbuild.yaml", "cache/blobs/sha256/" HEX_A, "line 8: members out of order");
	manifest_fails("project/imgbuild.yaml", "cache/blobs/sha256/" HEX_C,
	               "line 8: a cache entry whose name is not its digest");
	manifest_fails("file " HEX_A " 12 cache/blobs/sha256/" HEX_A "\n",
	               "file " HEX_A " 12 project/zz\n", "line 8: members out of order");
	/* Only project files carry an executable bit. */
	manifest_fails("file " HEX_A " 12 cache/blobs/sha256/" HEX_A "\n",
	               "xfile " HEX_A " 12 cache/blobs/sha256/" HEX_A "\n", "line 7: bad member line");
}
END_TEST

static EVP_PKEY *load(const char *path, int priv)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	EVP_PKEY *k = NULL;
	int r = priv ? ib_key_load_private(&ctx, path, &k) : ib_key_load_public(&ctx, path, &k);
	ck_assert_msg(r == 0, "%s: %s", path, ctx.err);
	return k;
}

START_TEST(test_keys)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_key_generate(&ctx, "site"), 0);
	struct stat st;
	ck_assert_int_eq(stat("site.key", &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(stat("site.pub", &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0644);
	_cleanup_free_ char *before = tu_sh("sha256sum site.key site.pub");
	/* Never over an existing key, either half. */
	ck_assert_int_eq(ib_key_generate(&ctx, "site"), -IB_E_USAGE);
	ck_assert_ptr_nonnull(strstr(ctx.err, "refusing to overwrite"));
	ck_assert_int_eq(unlink("site.key") == 0 && link("site.pub", "site.key") == 0, 1);
	_cleanup_free_ char *relinked = tu_sh("sha256sum site.pub");
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_key_generate(&ctx, "site"), -IB_E_USAGE);
	_cleanup_free_ char *after = tu_sh("sha256sum site.pub");
	ck_assert_str_eq(relinked, after);
	ck_assert_ptr_nonnull(before);
	_cleanup_free_ char *tmps = tu_sh("ls | grep -c tmp || true");
	ck_assert_str_eq(tmps, "0\n");

	/* OpenSSL's own tools read what we wrote. */
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_key_generate(&ctx, "k"), 0);
	_cleanup_free_ char *text = tu_sh("openssl pkey -in k.key -noout -text | head -1");
	ck_assert_msg(strstr(text, "ED25519"), "%s", text);

	/* A public key is no private key, and an RSA key is no Ed25519 key. */
	EVP_PKEY *k = NULL;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_key_load_private(&ctx, "k.pub", &k), -IB_E_SPEC);
	ck_assert_ptr_nonnull(strstr(ctx.err, "k.pub"));
	_cleanup_free_ char *rsa = tu_sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 "
	                                 "-out rsa.key 2>&1 && openssl pkey -in rsa.key -pubout "
	                                 "-out rsa.pub 2>&1");
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_key_load_public(&ctx, "rsa.pub", &k), -IB_E_SPEC);
	ck_assert_ptr_nonnull(strstr(ctx.err, "not an Ed25519 key"));
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_key_load_public(&ctx, "missing.pub", &k), -IB_E_IO);
}
END_TEST

START_TEST(test_sign)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_key_generate(&ctx, "a"), 0);
	ck_assert_int_eq(ib_key_generate(&ctx, "b"), 0);
	EVP_PKEY *apriv = load("a.key", 1), *apub = load("a.pub", 0), *bpub = load("b.pub", 0);
	unsigned char sig[IB_SIG_LEN];
	const char msg[] = "imgbuild-bundle 1\nfile ...\n";
	ck_assert_int_eq(ib_sign(&ctx, apriv, msg, strlen(msg), sig), 0);
	ck_assert_int_eq(ib_sign_check(&ctx, apub, msg, strlen(msg), sig), 1);
	ck_assert_int_eq(ib_sign_check(&ctx, bpub, msg, strlen(msg), sig), 0);
	ck_assert_int_eq(ib_sign_check(&ctx, apub, msg, strlen(msg) - 1, sig), 0);
	sig[10] ^= 1;
	ck_assert_int_eq(ib_sign_check(&ctx, apub, msg, strlen(msg), sig), 0);
	sig[10] ^= 1;

	/* The signature member's text, and back. */
	_cleanup_free_ char *text = ib_bundle_sig_format(sig);
	unsigned char back[IB_SIG_LEN];
	ck_assert_int_eq(ib_bundle_sig_parse(&ctx, text, strlen(text), back), 0);
	ck_assert_int_eq(memcmp(sig, back, IB_SIG_LEN), 0);
	ck_assert_int_eq(ib_bundle_sig_parse(&ctx, text, strlen(text) - 1, back), -IB_E_VERIFY);
	text[0] = 'E';
	ck_assert_int_eq(ib_bundle_sig_parse(&ctx, text, strlen(text), back), -IB_E_VERIFY);

	/* The fingerprint is the SHA-256 of the raw key, the same from either half. */
	char f1[65], f2[65];
	ck_assert_int_eq(ib_key_fingerprint(&ctx, apriv, f1), 0);
	ck_assert_int_eq(ib_key_fingerprint(&ctx, apub, f2), 0);
	ck_assert_str_eq(f1, f2);
	EVP_PKEY_free(apriv);
	EVP_PKEY_free(apub);
	EVP_PKEY_free(bpub);
}
END_TEST

/* Two cache entries and a project file, bundled with key a. */
static void make_bundle(const char *out, const char *key, long long created)
{
	tu_write("src/one", "first entry\n");
	tu_write("src/two", "second entry, a little longer\n");
	tu_write("src/imgbuild.yaml", "project: t\n");
	char h1[65], h2[65];
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_sha256_file_hex(&ctx, "src/one", h1), 0);
	ck_assert_int_eq(ib_sha256_file_hex(&ctx, "src/two", h2), 0);
	struct ib_bundle_src srcs[] = {
	        {xstrdup("project/imgbuild.yaml"), xstrdup("src/imgbuild.yaml")},
	        {xasprintf("cache/blobs/sha256/%s", h2), xstrdup("src/two")},
	        {xasprintf("cache/blobs/sha256/%s", h1), xstrdup("src/one")},
	};
	struct strv roles = {0};
	strv_push(&roles, "base");
	EVP_PKEY *k = load(key, 1);
	struct ib_bundle_create_opts o = {.output = out,
	                                  .key = k,
	                                  .created = created,
	                                  .roles = &roles,
	                                  .srcs = srcs,
	                                  .n_srcs = ARRAY_SIZE(srcs)};
	ck_assert_msg(ib_bundle_create(&ctx, &o, NULL) == 0, "%s", ctx.err);
	for (size_t i = 0; i < ARRAY_SIZE(srcs); i++) {
		free(srcs[i].path);
		free(srcs[i].file);
	}
	strv_release(&roles);
	EVP_PKEY_free(k);
}

static int read_bundle(const char *file, const char *pub, const char *cache_stage,
                       const char *files_stage, struct ib_ctx *ctx,
                       struct ib_bundle_manifest *m)
{
	ib_ctx_init(ctx);
	EVP_PKEY *k = load(pub, 0);
	int r = ib_bundle_read(ctx, file, k, cache_stage, files_stage, m);
	EVP_PKEY_free(k);
	return r;
}

START_TEST(test_bundle_roundtrip)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_key_generate(&ctx, "a"), 0);
	ck_assert_int_eq(ib_key_generate(&ctx, "b"), 0);
	make_bundle("one.bundle", "a.key", 1700000000);
	make_bundle("two.bundle", "a.key", 1700000000);
	_cleanup_free_ char *same = tu_sh("cmp one.bundle two.bundle && echo same");
	ck_assert_str_eq(same, "same\n");
	/* zstd, manifest and signature first, members sorted, fixed headers. */
	_cleanup_free_ char *list = tu_sh("zstd -dcq one.bundle | TZ=UTC tar -tv --numeric-owner | "
	                                  "awk '{print $1, $2, $4, $5}' | sort -u");
	ck_assert_str_eq(list, "-rw-r--r-- 0/0 2023-11-14 22:13\n");
	_cleanup_free_ char *names = tu_sh("zstd -dcq one.bundle | tar -t | sed 's/[0-9a-f]\\{64\\}/H/'");
	ck_assert_str_eq(names, "MANIFEST\nMANIFEST.sig\ncache/blobs/sha256/H\n"
	                        "cache/blobs/sha256/H\nproject/imgbuild.yaml\n");

	struct ib_bundle_manifest m = {0};
	ck_assert_int_eq(mkdir("cs", 0755) | mkdir("fs", 0755), 0);
	ck_assert_msg(read_bundle("one.bundle", "a.pub", "cs", "fs", &ctx, &m) == 0, "%s", ctx.err);
	ck_assert_uint_eq(m.n, 3);
	ck_assert_str_eq(m.roles.v[0], "base");
	ck_assert_int_eq(m.created, 1700000000);
	_cleanup_free_ char *staged = tu_sh("cat fs/project/imgbuild.yaml cs/cache/blobs/sha256/*");
	ck_assert_msg(strstr(staged, "project: t\n") == staged && strstr(staged, "first entry") &&
	                      strstr(staged, "second entry"),
	              "%s", staged);

	/* Into a cache: entries read-only, an existing one kept. */
	struct ib_cas cas = {0};
	ck_assert_int_eq(ib_cas_open(&ctx, "cache", &cas), 0);
	size_t fresh = 0;
	ck_assert_int_eq(ib_bundle_install(&ctx, &m, "cs", &cas, &fresh), 0);
	ck_assert_uint_eq(fresh, 2);
	_cleanup_free_ char *modes = tu_sh("stat -c %a cache/blobs/sha256/* | sort -u");
	ck_assert_str_eq(modes, "444\n");
	ib_bundle_manifest_release(&m);

	/* Another key: rejected before any member is read, nothing staged. */
	ck_assert_int_eq(mkdir("cs2", 0755), 0);
	ck_assert_int_eq(read_bundle("one.bundle", "b.pub", "cs2", NULL, &ctx, &m), -IB_E_VERIFY);
	ck_assert_msg(strstr(ctx.err, "signature does not match"), "%s", ctx.err);
	_cleanup_free_ char *empty = tu_sh("ls -A cs2");
	ck_assert_str_eq(empty, "");
	ib_cas_release(&cas);
}
END_TEST

/* Rewrite one.bundle through a shell pipeline on its tar, and expect a rejection. */
static void tampered(const char *how, const char *want)
{
	_cleanup_free_ char *cmd = xasprintf(
	        "rm -rf t && mkdir t && cd t && zstd -dcq ../one.bundle | tar -x && %s && "
	        "tar --format=pax -cf ../t.tar $(for f in $(zstd -dcq ../one.bundle | tar -t) extra; "
	        "do [ -e $f ] && echo $f; done) && cd .. && zstd -qf t.tar -o t.bundle && echo done",
	        how);
	_cleanup_free_ char *out = tu_sh(cmd);
	ck_assert_msg(streq(out, "done\n"), "%s: %s", how, out);
	struct ib_ctx ctx;
	struct ib_bundle_manifest m = {0};
	ck_assert_int_eq(read_bundle("t.bundle", "a.pub", NULL, NULL, &ctx, &m), -IB_E_VERIFY);
	ck_assert_msg(strstr(ctx.err, want), "%s: error '%s' lacks '%s'", how, ctx.err, want);
}

START_TEST(test_bundle_tampered)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_key_generate(&ctx, "a"), 0);
	make_bundle("one.bundle", "a.key", 1700000000);
	tampered("printf 'project: u\\n' > project/imgbuild.yaml",
	         "member 'project/imgbuild.yaml': sha256 mismatch");
	tampered("printf 'project: t\\n\\n' > project/imgbuild.yaml",
	         "member 'project/imgbuild.yaml' has 12 bytes, the manifest says 11");
	tampered("rm project/imgbuild.yaml", "member 'project/imgbuild.yaml' is missing");
	tampered("echo x > extra", "member 'extra' is not in the manifest");
	tampered("sed -i 's/role base/role evil/' MANIFEST", "signature does not match");
	tampered("printf 'ed25519 AAAA\\n' > MANIFEST.sig", "MANIFEST.sig is malformed");
	/* Not a bundle at all. */
	tu_write("junk.bundle", "not an archive\n");
	struct ib_bundle_manifest m = {0};
	ck_assert_int_eq(read_bundle("junk.bundle", "a.pub", NULL, NULL, &ctx, &m), -IB_E_VERIFY);
}
END_TEST

static Suite *bundle_suite(void)
{
	Suite *s = suite_create("bundle");
	TU_CASE(s, "path-valid", test_path_valid);
	TU_CASE(s, "manifest-roundtrip", test_manifest_roundtrip);
	TU_CASE(s, "manifest-errors", test_manifest_errors);
	TU_CASE(s, "keys", test_keys);
	TU_CASE(s, "sign", test_sign);
	TU_CASE(s, "bundle-roundtrip", test_bundle_roundtrip);
	TU_CASE(s, "bundle-tampered", test_bundle_tampered);
	return s;
}

TU_MAIN(bundle_suite)
