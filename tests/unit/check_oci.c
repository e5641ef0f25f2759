/* check_oci.c: references, auth challenges, docker config, index selection, the JSON reader,
 * offline pulls from a seeded cache and the image archive read back with tar and python. */
#include "oci/oci_internal.h"
#include "testutil.h"
#include "util/hash.h"
#include "util/strbuf.h"

static struct ib_ctx C;

static void ctx_reset(void)
{
	ib_ctx_init(&C);
}

/* ---- references ---- */

struct ref_case {
	const char *in;
	const char *registry, *repository, *tag, *digest, *name;
};

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct ref_case good_refs[] = {
        {"nginx", "registry-1.docker.io", "library/nginx", "latest", NULL,
         "docker.io/library/nginx"},
        {"nginx:1.25", "registry-1.docker.io", "library/nginx", "1.25", NULL,
         "docker.io/library/nginx"},
        {"docker.io/nginx:1.25", "registry-1.docker.io", "library/nginx", "1.25", NULL,
         "docker.io/library/nginx"},
        {"index.docker.io/library/nginx", "registry-1.docker.io", "library/nginx", "latest", NULL,
         "docker.io/library/nginx"},
        {"bitnami/redis:7", "registry-1.docker.io", "bitnami/redis", "7", NULL,
         "docker.io/bitnami/redis"},
        {"registry.k8s.io/pause:3.9", "registry.k8s.io", "pause", "3.9", NULL,
         "registry.k8s.io/pause"},
        {"localhost:5000/test/tiny:1", "localhost:5000", "test/tiny", "1", NULL,
         "localhost:5000/test/tiny"},
        {"localhost/tiny", "localhost", "tiny", "latest", NULL, "localhost/tiny"},
        {"127.0.0.1:5000/a/b/c@sha256:" D64, "127.0.0.1:5000", "a/b/c", NULL, "sha256:" D64,
         "127.0.0.1:5000/a/b/c"},
        {"quay.io/x/y:v1.0-rc_1@sha256:" D64, "quay.io", "x/y", "v1.0-rc_1", "sha256:" D64,
         "quay.io/x/y"},
        {"Registry.Example.COM:443/ns/img", "registry.example.com:443", "ns/img", "latest", NULL,
         "registry.example.com:443/ns/img"},
        {"[::1]:5000/img:t", "[::1]:5000", "img", "t", NULL, "[::1]:5000/img"},
        {"a__b/c-d--e.f:_x", "registry-1.docker.io", "a__b/c-d--e.f", "_x", NULL,
         "docker.io/a__b/c-d--e.f"},
        {"localhost:5000", "registry-1.docker.io", "library/localhost", "5000", NULL,
         "docker.io/library/localhost"},
};

START_TEST(test_ref_good)
{
	for (size_t i = 0; i < ARRAY_SIZE(good_refs); i++) {
		const struct ref_case *c = &good_refs[i];
		struct ib_oci_ref r;
		ctx_reset();
		int rc = ib_oci_ref_parse(&C, c->in, &r);
		ck_assert_msg(rc == 0, "'%s': %s", c->in, C.err);
		ck_assert_str_eq(r.registry, c->registry);
		ck_assert_str_eq(r.repository, c->repository);
		ck_assert_pstr_eq(r.tag, c->tag);
		ck_assert_pstr_eq(r.digest, c->digest);
		ck_assert_str_eq(r.original, c->in);
		_cleanup_free_ char *name = ib_oci_ref_name(&r);
		ck_assert_str_eq(name, c->name);
		ib_oci_ref_release(&r);
	}
	struct ib_oci_ref r;
	ck_assert_int_eq(ib_oci_ref_parse(&C, "nginx:1.25@sha256:" D64, &r), 0);
	_cleanup_free_ char *s = ib_oci_ref_string(&r);
	ck_assert_str_eq(s, "docker.io/library/nginx:1.25@sha256:" D64);
	ib_oci_ref_release(&r);
	ib_oci_ref_release(&r); /* released twice: harmless */
}
END_TEST

static const struct {
	const char *in, *why;
} bad_refs[] = {
        {"", "empty"},
        {"Nginx", "lowercase"},
        {"nginx:", "bad tag"},
        {"nginx:.x", "bad tag"},
        {"nginx:-x", "bad tag"},
        {"nginx@sha256:abc", "64 lowercase hex"},
        {"nginx@sha256:" D64 "0", "64 lowercase hex"},
        {"nginx@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
         "64 lowercase hex"},
        {"nginx@sha512:" D64, "only sha256"},
        {"nginx@sha256:" D64 "@sha256:" D64, "more than one '@'"},
        {"a//b", "empty path component"},
        {"/a", "empty path component"},
        {"a/", "empty path component"},
        {"a/-b", "start and end"},
        {"a/b_", "start and end"},
        {"a/b..c", "'..'"},
        {"a/b___c", "more than two '_'"},
        {"a/b.-c", "bad separator"},
        {"a/b+c", "invalid character"},
        {"host:0/x", "port out of range"},
        {"host:99999/x", "port out of range"},
        {"host:/x", "bad port"},
        {"host:5x/x", "bad port"},
        {"-host.io/x", "registry host label"},
        {"host..io/x", "empty label"},
        {"ho_st.io/x", "invalid character in the registry host"},
        {"[zz]:5000/x", "IPv6"},
        {"nginx latest", "space"},
        {"ngïnx", "non-ASCII"},
        {"reg.io/", "no repository"},
        {"reg.io", "lowercase"}, /* no slash: a repository, and '.' cannot end it... */
};

START_TEST(test_ref_bad)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_refs); i++) {
		struct ib_oci_ref r = {0};
		ctx_reset();
		int rc = ib_oci_ref_parse(&C, bad_refs[i].in, &r);
		if (streq(bad_refs[i].in, "reg.io")) {
			/* "reg.io" is a valid one-component Docker Hub name. */
			ck_assert_int_eq(rc, 0);
			ib_oci_ref_release(&r);
			continue;
		}
		ck_assert_msg(rc == -IB_E_SPEC, "'%s' accepted", bad_refs[i].in);
		ck_assert_msg(strstr(C.err, bad_refs[i].why), "'%s': message '%s' lacks '%s'",
		              bad_refs[i].in, C.err, bad_refs[i].why);
		ck_assert_msg(startswith(C.err, "invalid image reference '"), "%s", C.err);
		ck_assert_ptr_null(r.registry);
	}
	/* Name length: 255 at most, registry included. */
	char longname[300];
	memset(longname, 'a', sizeof(longname));
	longname[256] = '\0';
	struct ib_oci_ref r;
	ctx_reset();
	ck_assert_int_eq(ib_oci_ref_parse(&C, longname, &r), -IB_E_SPEC);
	ck_assert_ptr_nonnull(strstr(C.err, "longer than 255"));
	longname[255 - strlen("docker.io/library/")] = '\0';
	ctx_reset();
	ck_assert_int_eq(ib_oci_ref_parse(&C, longname, &r), 0);
	ib_oci_ref_release(&r);
}
END_TEST

/* ---- challenges and tokens ---- */

START_TEST(test_challenge)
{
	struct oci_challenge c;
	ctx_reset();
	ck_assert_int_eq(oci_challenge_parse(&C,
	                                     "Bearer realm=\"https://auth.docker.io/token\","
	                                     "service=\"registry.docker.io\","
	                                     "scope=\"repository:library/nginx:pull\"",
	                                     &c),
	                 0);
	ck_assert_str_eq(c.scheme, "bearer");
	ck_assert_str_eq(c.realm, "https://auth.docker.io/token");
	ck_assert_str_eq(c.service, "registry.docker.io");
	ck_assert_str_eq(c.scope, "repository:library/nginx:pull");
	_cleanup_free_ char *u = oci_token_url(&c, "repository:other:pull");
	ck_assert_str_eq(u, "https://auth.docker.io/token?service=registry.docker.io&"
	                    "scope=repository%3Alibrary%2Fnginx%3Apull");
	oci_challenge_release(&c);

	/* Case, spaces, escapes, unknown params, unquoted values, a query in the realm. */
	ck_assert_int_eq(oci_challenge_parse(&C,
	                                     "  bEaReR  Realm = \"http://127.0.0.1:9/t?x=1\" , "
	                                     "error=\"invalid_token\", SERVICE=my-svc ,,",
	                                     &c),
	                 0);
	ck_assert_str_eq(c.realm, "http://127.0.0.1:9/t?x=1");
	ck_assert_str_eq(c.service, "my-svc"); /* unquoted: a token */
	oci_challenge_release(&c);
	ck_assert_int_eq(
	        oci_challenge_parse(&C, "Bearer realm=\"r\",service=\"a \\\"b\\\" c\"", &c), 0);
	ck_assert_str_eq(c.service, "a \"b\" c");
	ck_assert_ptr_null(c.scope);
	_cleanup_free_ char *u2 = oci_token_url(&c, "repository:x/y:pull");
	ck_assert_str_eq(u2, "r?service=a%20%22b%22%20c&scope=repository%3Ax%2Fy%3Apull");
	oci_challenge_release(&c);

	/* Only the first of several challenges in one value. */
	ck_assert_int_eq(oci_challenge_parse(&C, "Basic realm=\"reg\", Bearer realm=\"x\"", &c), 0);
	ck_assert_str_eq(c.scheme, "basic");
	ck_assert_str_eq(c.realm, "reg");
	oci_challenge_release(&c);

	static const struct {
		const char *in, *why;
	} bad[] = {
	        {"Negotiate abc", "unsupported registry authentication scheme 'negotiate'"},
	        {"Bearer service=\"x\"", "without a realm"},
	        {"Bearer realm=\"unterminated", "malformed"},
	        {"Bearer realm=", "malformed"},
	        {"", "malformed"},
	        {"Bearer realm=\"a\x01\"", "malformed"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ctx_reset();
		memset(&c, 0, sizeof(c));
		ck_assert_int_eq(oci_challenge_parse(&C, bad[i].in, &c), -IB_E_NETWORK);
		ck_assert_msg(strstr(C.err, bad[i].why), "'%s': %s", bad[i].in, C.err);
		ck_assert_ptr_null(c.scheme);
	}
}
END_TEST

START_TEST(test_challenge_headers)
{
	struct oci_challenge c;
	ctx_reset();
	ck_assert_int_eq(
	        oci_challenge_from_headers(&C, "HTTP/1.1 401 Unauthorized\nContent-Type: x\n", &c),
	        0);
	ck_assert_int_eq(
	        oci_challenge_from_headers(&C,
	                                   "HTTP/1.1 401 Unauthorized\r\n"
	                                   "WWW-Authenticate: Basic realm=\"r\"\r\n"
	                                   "www-authenticate: Bearer realm=\"https://t\"\r\n"
	                                   "Www-Authenticate: Basic realm=\"s\"\r\n",
	                                   &c),
	        1);
	ck_assert_str_eq(c.scheme, "bearer");
	ck_assert_str_eq(c.realm, "https://t");
	oci_challenge_release(&c);
	ck_assert_int_eq(oci_challenge_from_headers(&C, "WWW-Authenticate: Bogus x\n", &c),
	                 -IB_E_NETWORK);
}
END_TEST

START_TEST(test_token_json)
{
	char *t = NULL;
	ctx_reset();
	ck_assert_int_eq(
	        oci_token_from_json(&C, "{\"token\":\"abc.def\",\"expires_in\":300}", 36, "t", &t),
	        0);
	ck_assert_str_eq(t, "abc.def");
	free(t);
	const char *at = "{\"access_token\":\"xyz\"}";
	ck_assert_int_eq(oci_token_from_json(&C, at, strlen(at), "t", &t), 0);
	ck_assert_str_eq(t, "xyz");
	free(t);
	static const char *const bad[] = {
	        "{}", "{\"token\":\"\"}",   "{\"token\":\"a\\nb\"}", "{\"token\":1}",
	        "[",  "{\"token\":\"a b\"}"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ctx_reset();
		ck_assert_msg(oci_token_from_json(&C, bad[i], strlen(bad[i]), "token server 'x'",
		                                  &t) == -IB_E_NETWORK,
		              "accepted %s", bad[i]);
		ck_assert_msg(startswith(C.err, "token server 'x'"), "%s", C.err);
	}
}
END_TEST

START_TEST(test_loopback)
{
	ck_assert(oci_host_is_loopback("localhost:5000"));
	ck_assert(oci_host_is_loopback("localhost"));
	ck_assert(oci_host_is_loopback("127.0.0.1:5000"));
	ck_assert(oci_host_is_loopback("127.1.2.3"));
	ck_assert(oci_host_is_loopback("[::1]:5000"));
	ck_assert(!oci_host_is_loopback("localhost.example.com"));
	ck_assert(!oci_host_is_loopback("127.0.0.1.nip.io"));
	ck_assert(!oci_host_is_loopback("10.0.0.1:5000"));
	ck_assert(!oci_host_is_loopback("registry-1.docker.io"));
	ck_assert(oci_url_host_is_loopback("http://user@127.0.0.1:80/token"));
	ck_assert(!oci_url_host_is_loopback("http://auth.example/token?h=127.0.0.1"));
}
END_TEST

/* ---- docker config ---- */

START_TEST(test_base64)
{
	static const char *const plain[] = {"",     "f",     "fo",     "foo",
	                                    "foob", "fooba", "foobar", "user:pa:ss\xff"};
	for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
		_cleanup_free_ char *e = oci_base64_encode(plain[i], strlen(plain[i]));
		char *d = NULL;
		size_t n = 0;
		ck_assert_int_eq(oci_base64_decode(e, &d, &n), 0);
		ck_assert_uint_eq(n, strlen(plain[i]));
		ck_assert_mem_eq(d, plain[i], n);
		free(d);
	}
	_cleanup_free_ char *e = oci_base64_encode("foobar", 6);
	ck_assert_str_eq(e, "Zm9vYmFy");
	char *d = NULL;
	size_t n;
	ck_assert_int_eq(oci_base64_decode("Zm9vYg", &d, &n), 0); /* no padding */
	ck_assert_str_eq(d, "foob");
	free(d);
	static const char *const bad[] = {"Zm9vYg=",    "Zm9vY", "Zm9v YmFy",
	                                  "Zm9v\nYmFy", "Zg===", "Zh==",
	                                  "Zm9vYmF=a",  "****",  "Z"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		ck_assert_msg(oci_base64_decode(bad[i], &d, &n) == -1, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_docker_config)
{
	const char *cfg = "{\"auths\":{"
	                  "\"https://index.docker.io/v1/\":{\"auth\":\"dXNlcjpwYTpzcw==\"},"
	                  "\"http://localhost:5000/v2/\":{\"identitytoken\":\"tok-1\"},"
	                  "\"Reg.Example:443\":{\"username\":\"u2\",\"password\":\"p2\"},"
	                  "\"empty.example\":{},"
	                  "\"bad.example\":{\"auth\":\"bm9jb2xvbg==\"}"
	                  "},\"credsStore\":\"desktop\"}";
	struct oci_creds c = {0};
	ctx_reset();
	ck_assert_int_eq(
	        oci_creds_from_config(&C, cfg, strlen(cfg), "cfg", "registry-1.docker.io", &c), 1);
	ck_assert_str_eq(c.username, "user");
	ck_assert_str_eq(c.password, "pa:ss");
	ck_assert_ptr_null(c.identitytoken);
	ck_assert_str_eq(c.source, "cfg");
	oci_creds_release(&c);
	ck_assert_int_eq(oci_creds_from_config(&C, cfg, strlen(cfg), "cfg", "localhost:5000", &c),
	                 1);
	ck_assert_str_eq(c.identitytoken, "tok-1");
	ck_assert_ptr_null(c.username);
	oci_creds_release(&c);
	ck_assert_int_eq(oci_creds_from_config(&C, cfg, strlen(cfg), "cfg", "reg.example:443", &c),
	                 1);
	ck_assert_str_eq(c.username, "u2");
	ck_assert_str_eq(c.password, "p2");
	oci_creds_release(&c);
	ck_assert_int_eq(oci_creds_from_config(&C, cfg, strlen(cfg), "cfg", "empty.example", &c),
	                 0);
	ck_assert_int_eq(oci_creds_from_config(&C, cfg, strlen(cfg), "cfg", "other.example", &c),
	                 0);
	ck_assert_int_eq(oci_creds_from_config(&C, cfg, strlen(cfg), "cfg", "bad.example", &c),
	                 -IB_E_SPEC);
	ck_assert_str_eq(C.err, "cfg: auths entry 'bad.example': 'auth' is not base64 of "
	                        "user:password");
	ctx_reset();
	ck_assert_int_eq(oci_creds_from_config(&C, "{\"auths\":[]}", 12, "cfg", "x", &c),
	                 -IB_E_SPEC);
	ck_assert_str_eq(C.err, "cfg: 'auths' is an array, not an object");
	ctx_reset();
	ck_assert_int_eq(oci_creds_from_config(&C, "{\"auths\":{}", 11, "cfg", "x", &c),
	                 -IB_E_SPEC);
	ck_assert_str_eq(C.err, "cfg: invalid JSON at line 1, column 12: unexpected end of input "
	                        "in an object");
	ctx_reset();
	ck_assert_int_eq(oci_creds_from_config(&C, "{}", 2, "cfg", "x", &c), 0);

	/* From $DOCKER_CONFIG, and from $HOME/.docker. */
	tu_write("dc/config.json", "{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"YTpi\"}}}");
	_cleanup_free_ char *dc = ib_abspath("dc");
	setenv("DOCKER_CONFIG", dc, 1);
	ck_assert_int_eq(oci_creds_load(&C, "127.0.0.1:5000", &c), 1);
	ck_assert_str_eq(c.username, "a");
	ck_assert_str_eq(c.password, "b");
	ck_assert_ptr_nonnull(strstr(c.source, "dc/config.json"));
	oci_creds_release(&c);
	unsetenv("DOCKER_CONFIG");
	_cleanup_free_ char *oldhome = getenv("HOME") ? xstrdup(getenv("HOME")) : NULL;
	_cleanup_free_ char *home = ib_abspath("home");
	setenv("HOME", home, 1);
	ck_assert_int_eq(oci_creds_load(&C, "127.0.0.1:5000", &c), 0); /* no file */
	tu_write("home/.docker/config.json", "{\"auths\": nope}");
	ck_assert_int_eq(oci_creds_load(&C, "127.0.0.1:5000", &c), -IB_E_SPEC);
	ck_assert_ptr_nonnull(strstr(C.err, "home/.docker/config.json: invalid JSON at line 1, "
	                                    "column 11"));
	if (oldhome)
		setenv("HOME", oldhome, 1);
}
END_TEST

/* ---- indexes and manifests ---- */

#define DA "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DB "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DC "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

static struct jsonr *parse_ok(const char *s)
{
	struct jsonr *v = NULL;
	struct jsonr_error e;
	ck_assert_msg(jsonr_parse_ex(s, strlen(s), NULL, &v, &e) == 0, "%s at %u:%u: %s", s, e.line,
	              e.col, e.msg);
	return v;
}

static char *desc(const char *mt, const char *digest, int size, const char *platform)
{
	return xasprintf("{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%d%s%s}", mt, digest,
	                 size, platform ? ",\"platform\":" : "", platform ? platform : "");
}

START_TEST(test_index_select)
{
	_cleanup_free_ char *arm = desc(OCI_MT_MANIFEST, DA, 10,
	                                "{\"architecture\":\"arm64\",\"os\":\"linux\","
	                                "\"variant\":\"v8\"}");
	_cleanup_free_ char *v3 = desc(OCI_MT_MANIFEST, DC, 10,
	                               "{\"architecture\":\"amd64\",\"os\":\"linux\","
	                               "\"variant\":\"v3\"}");
	_cleanup_free_ char *amd =
	        desc(DOCKER_MT_MANIFEST, DB, 1234, "{\"architecture\":\"amd64\",\"os\":\"linux\"}");
	_cleanup_free_ char *att =
	        desc(OCI_MT_MANIFEST, DC, 10, "{\"architecture\":\"unknown\",\"os\":\"unknown\"}");
	_cleanup_free_ char *win =
	        desc(OCI_MT_MANIFEST, DC, 10, "{\"architecture\":\"amd64\",\"os\":\"windows\"}");
	_cleanup_free_ char *idx = xasprintf("{\"schemaVersion\":2,\"mediaType\":\"%s\","
	                                     "\"manifests\":[%s,%s,%s,%s,%s]}",
	                                     DOCKER_MT_LIST, arm, v3, win, amd, att);
	_cleanup_jsonr_ struct jsonr *doc = parse_ok(idx);
	enum oci_kind k;
	ctx_reset();
	ck_assert_int_eq(oci_doc_kind(&C, doc, "idx", &k), 0);
	ck_assert_int_eq(k, OCI_KIND_INDEX);
	struct oci_desc d;
	ck_assert_int_eq(oci_index_select(&C, doc, "idx", &d), 0);
	ck_assert_str_eq(d.digest, DB);
	ck_assert_int_eq(d.size, 1234);
	ck_assert_str_eq(d.media_type, DOCKER_MT_MANIFEST);

	/* No amd64: an error naming what there is. No mediaType: an index by its shape. */
	_cleanup_free_ char *idx2 =
	        xasprintf("{\"schemaVersion\":2,\"manifests\":[%s,%s,%s,%s]}", arm, v3, att, arm);
	_cleanup_jsonr_ struct jsonr *doc2 = parse_ok(idx2);
	ck_assert_int_eq(oci_doc_kind(&C, doc2, "idx", &k), 0);
	ck_assert_int_eq(k, OCI_KIND_INDEX);
	ck_assert_int_eq(oci_index_select(&C, doc2, "image index X", &d), -IB_E_SPEC);
	ck_assert_str_eq(C.err, "image index X has no linux/amd64 image (it has linux/arm64/v8, "
	                        "linux/amd64/v3, unknown/unknown)");
	ctx_reset();
	_cleanup_jsonr_ struct jsonr *empty = parse_ok("{\"schemaVersion\":2,\"manifests\":[]}");
	ck_assert_int_eq(oci_index_select(&C, empty, "i", &d), -IB_E_SPEC);
	ck_assert_str_eq(C.err, "i has no linux/amd64 image (it has no platforms)");

	/* The amd64 entry must be a usable manifest descriptor. */
	static const char *const bad_entries[] = {
	        "{\"mediaType\":\"" OCI_MT_INDEX "\",\"digest\":\"" DA "\",\"size\":3,",
	        "{\"mediaType\":\"text/plain\",\"digest\":\"" DA "\",\"size\":3,",
	        "{\"digest\":\"sha512:aa\",\"size\":3,",
	        "{\"digest\":\"" DA "\",\"size\":-1,",
	        "{\"digest\":\"" DA "\",\"size\":1.5,",
	        "{\"digest\":\"" DA "\",\"size\":99999999,",
	        "{\"size\":3,",
	};
	static const char *const why[] = {"itself an index", "unsupported media type 'text/plain'",
	                                  "only sha256",     "no valid size",
	                                  "no valid size",   "larger than",
	                                  "no digest"};
	for (size_t i = 0; i < ARRAY_SIZE(bad_entries); i++) {
		_cleanup_free_ char *s =
		        xasprintf("{\"manifests\":[%s\"platform\":{\"os\":\"linux\","
		                  "\"architecture\":\"amd64\"}}]}",
		                  bad_entries[i]);
		_cleanup_jsonr_ struct jsonr *b = parse_ok(s);
		ctx_reset();
		ck_assert_int_eq(oci_index_select(&C, b, "i", &d), -IB_E_NETWORK);
		ck_assert_msg(strstr(C.err, why[i]), "%s: %s", s, C.err);
	}
}
END_TEST

START_TEST(test_doc_kind)
{
	static const struct {
		const char *doc;
		int rc;
		enum oci_kind kind;
		const char *why;
	} cases[] = {
	        {"{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_MANIFEST "\"}", 0,
	         OCI_KIND_MANIFEST, NULL},
	        {"{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_INDEX "\"}", 0, OCI_KIND_INDEX,
	         NULL},
	        {"{\"schemaVersion\":2,\"config\":{},\"layers\":[]}", 0, OCI_KIND_MANIFEST, NULL},
	        {"{\"schemaVersion\":1,\"fsLayers\":[]}", -IB_E_NETWORK, 0, "docker schema 1"},
	        {"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution."
	         "manifest.v1+prettyjws\"}",
	         -IB_E_NETWORK, 0, "unsupported media type"},
	        {"{\"schemaVersion\":2}", -IB_E_NETWORK, 0, "neither"},
	        {"{\"schemaVersion\":2,\"manifests\":[],\"config\":{},\"layers\":[]}",
	         -IB_E_NETWORK, 0, "neither"},
	        {"{\"schemaVersion\":\"2\"}", -IB_E_NETWORK, 0, "schemaVersion is not 2"},
	        {"{\"schemaVersion\":2,\"mediaType\":7}", -IB_E_NETWORK, 0, "not a string"},
	        {"[]", -IB_E_NETWORK, 0, "is an array, not a manifest"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_jsonr_ struct jsonr *d = parse_ok(cases[i].doc);
		enum oci_kind k = 99;
		ctx_reset();
		int rc = oci_doc_kind(&C, d, "m", &k);
		ck_assert_msg(rc == cases[i].rc, "%s: %d %s", cases[i].doc, rc, C.err);
		if (rc == 0)
			ck_assert_int_eq(k, cases[i].kind);
		else
			ck_assert_msg(strstr(C.err, cases[i].why), "%s: %s", cases[i].doc, C.err);
	}
}
END_TEST

START_TEST(test_manifest_parse)
{
	_cleanup_free_ char *s = xasprintf("{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\","
	                                   "\"size\":7},\"layers\":[{\"digest\":\"%s\",\"size\":9},"
	                                   "{\"digest\":\"%s\",\"size\":9}]}",
	                                   DA, DB, DB);
	_cleanup_jsonr_ struct jsonr *m = parse_ok(s);
	struct ib_oci_image img = {0};
	uint64_t *sizes = NULL;
	ctx_reset();
	ck_assert_int_eq(oci_manifest_parse(&C, m, "m", &img, &sizes), 0);
	ck_assert_str_eq(img.config_digest, DA);
	ck_assert_uint_eq(img.n_layers, 2);
	ck_assert_str_eq(img.layers[0], DB);
	ck_assert_str_eq(img.layers[1], DB);
	ck_assert_uint_eq(sizes[0], 7);
	ck_assert_uint_eq(sizes[2], 9);
	free(sizes);
	ib_oci_image_release(&img);
	ck_assert_ptr_null(img.layers);

	_cleanup_free_ char *bad = xasprintf("{\"config\":{\"digest\":\"%s\",\"size\":7},"
	                                     "\"layers\":[{\"digest\":\"%s\",\"size\":9},"
	                                     "{\"digest\":\"../../etc/passwd\",\"size\":1}]}",
	                                     DA, DB);
	_cleanup_jsonr_ struct jsonr *b = parse_ok(bad);
	ck_assert_int_eq(oci_manifest_parse(&C, b, "m", &img, NULL), -IB_E_NETWORK);
	ck_assert_str_eq(C.err, "m: layers: entry 1 has the digest '../../etc/passwd' (only sha256 "
	                        "with 64 lowercase hex digits is supported)");
	ck_assert_ptr_null(img.layers);
}
END_TEST

/* ---- the JSON reader ---- */

START_TEST(test_json_values)
{
	_cleanup_jsonr_ struct jsonr *v =
	        parse_ok(" {\"a\" : [1, -0, 2.5e3, -9223372036854775808, 9223372036854775807,"
	                 " 9223372036854775808, 1E-2], \"b\":\"x\\u00e9\\ud83d\\ude00\\n\\/\","
	                 "\"c\":true,\"d\":false,\"e\":null,\"f\":{},\"g\":[],\"\":\"\"}\r\n\t");
	ck_assert_int_eq(v->type, JSONR_OBJECT);
	ck_assert_uint_eq(v->n, 8);
	const struct jsonr *a = jsonr_get_type(v, "a", JSONR_ARRAY);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->n, 7);
	ck_assert(a->items[0].is_int && a->items[0].integer == 1);
	ck_assert(a->items[1].is_int && a->items[1].integer == 0);
	ck_assert(!a->items[2].is_int && a->items[2].number == 2500.0);
	ck_assert(a->items[3].is_int && a->items[3].integer == INT64_MIN);
	ck_assert(a->items[4].is_int && a->items[4].integer == INT64_MAX);
	ck_assert(!a->items[5].is_int); /* too big for int64: a double */
	ck_assert_str_eq(a->items[5].str, "9223372036854775808");
	ck_assert(a->items[6].number == 0.01);
	const struct jsonr *b = jsonr_get(v, "b");
	ck_assert_str_eq(b->str, "x\xc3\xa9\xf0\x9f\x98\x80\n/");
	ck_assert_uint_eq(b->len, 9);
	ck_assert(jsonr_get(v, "c")->boolean == 1);
	ck_assert_int_eq(jsonr_get(v, "e")->type, JSONR_NULL);
	ck_assert_str_eq(jsonr_get_str(v, ""), "");
	ck_assert_ptr_null(jsonr_get(v, "zz"));
	ck_assert_ptr_null(jsonr_get_str(v, "a"));
	ck_assert_ptr_null(jsonr_get(a, "a"));
	ck_assert_ptr_null(jsonr_get(NULL, "a"));
	/* Raw UTF-8 passes, scalars at the top level too. */
	_cleanup_jsonr_ struct jsonr *u =
	        parse_ok("\"\xe2\x82\xac \xf4\x8f\xbf\xbf \xed\x9f\xbf\"");
	ck_assert_str_eq(u->str, "\xe2\x82\xac \xf4\x8f\xbf\xbf \xed\x9f\xbf");
	_cleanup_jsonr_ struct jsonr *n = parse_ok("-12");
	ck_assert(n->is_int && n->integer == -12);
}
END_TEST

static const struct {
	const char *in;
	size_t len; /* 0: strlen */
	unsigned line, col;
	const char *msg;
} json_bad[] = {
        {"", 0, 1, 1, "unexpected end of input"},
        {"   ", 0, 1, 4, "unexpected end of input"},
        {"{", 0, 1, 2, "unexpected end of input in an object"},
        {"[1,", 0, 1, 4, "unexpected end of input"},
        {"[1,]", 0, 1, 4, "trailing comma"},
        {"{\"a\":1,}", 0, 1, 8, "trailing comma"},
        {"[1 2]", 0, 1, 4, "expected ',' or ']', found '2'"},
        {"{\"a\" 1}", 0, 1, 6, "expected ':' after an object key"},
        {"{a:1}", 0, 1, 2, "expected a string key, found 'a'"},
        {"{\"a\":1,\"a\":2}", 0, 1, 1, "duplicate key \"a\" in an object"},
        {"[\n  {\"x\":1,\n   \"y\":2,\n   \"x\":3}]", 0, 2, 3, "duplicate key \"x\" in an object"},
        {"01", 0, 1, 1, "bad number: leading zero"},
        {"-", 0, 1, 1, "bad number: a digit must follow '-'"},
        {"1.", 0, 1, 3, "bad number: a digit must follow '.'"},
        {"1e", 0, 1, 3, "bad number: a digit must follow the exponent"},
        {"+1", 0, 1, 1, "unexpected '+'"},
        {".5", 0, 1, 1, "unexpected '.'"},
        {"1e999", 0, 1, 1, "number out of range"},
        {"NaN", 0, 1, 1, "unexpected 'N'"},
        {"Infinity", 0, 1, 1, "unexpected 'I'"},
        {"tru", 0, 1, 1, "unexpected word (expected true)"},
        {"nul", 0, 1, 1, "unexpected word (expected null)"},
        {"true false", 0, 1, 6, "trailing data after the value"},
        {"{} x", 0, 1, 4, "trailing data after the value"},
        {"\"abc", 0, 1, 1, "unterminated string"},
        {"\"a\\", 0, 1, 1, "unterminated string"},
        {"\"a\tb\"", 0, 1, 3, "control character 0x09 in a string"},
        {"\"a\nb\"", 0, 1, 3, "control character 0x0a in a string"},
        {"\"\\x\"", 0, 1, 2, "bad escape in a string"},
        {"\"\\u12\"", 0, 1, 2, "bad \\u escape"},
        {"\"\\u12g4\"", 0, 1, 2, "bad \\u escape"},
        {"\"\\u0000\"", 0, 1, 2, "\\u0000 is not allowed in a string"},
        {"\"\\udc00\"", 0, 1, 2, "lone low surrogate \\udc00"},
        {"\"\\ud800\"", 0, 1, 2, "high surrogate \\ud800 not followed by a low one"},
        {"\"\\ud800\\u0041\"", 0, 1, 2, "high surrogate \\ud800 not followed by a low one"},
        {"\"\\ud800\\ud800\"", 0, 1, 2, "high surrogate \\ud800 not followed by a low one"},
        {"\"\xc0\xaf\"", 0, 1, 2, "invalid UTF-8 in a string"},         /* overlong '/' */
        {"\"\xe0\x80\xaf\"", 0, 1, 2, "invalid UTF-8 in a string"},     /* overlong */
        {"\"\xed\xa0\x80\"", 0, 1, 2, "invalid UTF-8 in a string"},     /* a surrogate */
        {"\"\xf4\x90\x80\x80\"", 0, 1, 2, "invalid UTF-8 in a string"}, /* past U+10FFFF */
        {"\"\xf5\x80\x80\x80\"", 0, 1, 2, "invalid UTF-8 in a string"},
        {"\"\x80\"", 0, 1, 2, "invalid UTF-8 in a string"},
        {"\"\xe2\x82\"", 0, 1, 2, "invalid UTF-8 in a string"}, /* truncated */
        {"\"ab\xc3\"", 0, 1, 4, "invalid UTF-8 in a string"},
        {"\xef\xbb\xbf{}", 0, 1, 1, "byte order mark not allowed"},
        {"[1]\0", 4, 1, 4, "trailing data after the value"},
        {"\"a\0b\"", 5, 1, 3, "control character 0x00 in a string"},
        {"[\0]", 3, 1, 2, "unexpected 0x00"},
        {"// c\n{}", 0, 1, 1, "unexpected '/'"},
        {"{'a':1}", 0, 1, 2, "expected a string key, found 0x27"},
};

START_TEST(test_json_errors)
{
	for (size_t i = 0; i < ARRAY_SIZE(json_bad); i++) {
		struct jsonr *v = NULL;
		struct jsonr_error e;
		size_t len = json_bad[i].len ? json_bad[i].len : strlen(json_bad[i].in);
		int rc = jsonr_parse_ex(json_bad[i].in, len, NULL, &v, &e);
		ck_assert_msg(rc == -1, "case %zu accepted: %s", i, json_bad[i].in);
		ck_assert_ptr_null(v);
		ck_assert_msg(streq(e.msg, json_bad[i].msg) && e.line == json_bad[i].line &&
		                      e.col == json_bad[i].col,
		              "case %zu (%s): got %u:%u '%s', want %u:%u '%s'", i, json_bad[i].in,
		              e.line, e.col, e.msg, json_bad[i].line, json_bad[i].col,
		              json_bad[i].msg);
	}
	struct jsonr *v = NULL;
	ctx_reset();
	ck_assert_int_eq(jsonr_parse(&C, IB_E_NETWORK, "answer", "[1,\n 2,,]", 9, &v),
	                 -IB_E_NETWORK);
	ck_assert_str_eq(C.err, "answer: invalid JSON at line 2, column 4: unexpected ','");
}
END_TEST

START_TEST(test_json_limits)
{
	struct jsonr *v = NULL;
	struct jsonr_error e;
	/* Depth: 64 levels pass by default, 65 do not; a huge nesting fails fast. */
	char deep[200];
	memset(deep, '[', 64);
	memset(deep + 64, ']', 64);
	ck_assert_int_eq(jsonr_parse_ex(deep, 128, NULL, &v, &e), 0);
	jsonr_free(v);
	memset(deep, '[', 65);
	memset(deep + 65, ']', 65);
	ck_assert_int_eq(jsonr_parse_ex(deep, 130, NULL, &v, &e), -1);
	ck_assert_str_eq(e.msg, "nesting deeper than 64 levels");
	ck_assert_uint_eq(e.offset, 64);
	size_t big = 1 << 20;
	char *many = xmalloc(big);
	memset(many, '[', big);
	ck_assert_int_eq(jsonr_parse_ex(many, big, NULL, &v, &e), -1);
	ck_assert_str_eq(e.msg, "nesting deeper than 64 levels");
	/* A caller's depth beyond the hard cap is capped. */
	struct jsonr_limits l = {.max_depth = 1000000};
	ck_assert_int_eq(jsonr_parse_ex(many, big, &l, &v, &e), -1);
	ck_assert_str_eq(e.msg, "nesting deeper than 1024 levels");
	free(many);
	/* Size. */
	l = (struct jsonr_limits){.max_size = 4};
	ck_assert_int_eq(jsonr_parse_ex("[1,2]", 5, &l, &v, &e), -1);
	ck_assert_str_eq(e.msg, "document larger than 4 bytes");
	ck_assert_int_eq(jsonr_parse_ex("[12]", 4, &l, &v, &e), 0);
	jsonr_free(v);
	/* Values. */
	l = (struct jsonr_limits){.max_values = 3};
	ck_assert_int_eq(jsonr_parse_ex("[1,2]", 5, &l, &v, &e), 0);
	jsonr_free(v);
	ck_assert_int_eq(jsonr_parse_ex("[1,2,3]", 7, &l, &v, &e), -1);
	ck_assert_str_eq(e.msg, "more than 3 values");
	ck_assert_uint_eq(e.col, 6);
	/* An object with many keys (duplicate detection is n log n) and a long flat array. */
	struct strbuf sb = STRBUF_INIT;
	sb_addc(&sb, '{');
	for (int i = 0; i < 100000; i++)
		sb_addf(&sb, "%s\"k%d\":%d", i ? "," : "", i, i);
	sb_addc(&sb, '}');
	ck_assert_int_eq(jsonr_parse_ex(sb.buf, sb.len, NULL, &v, &e), 0);
	ck_assert_uint_eq(v->n, 100000);
	ck_assert_int_eq(jsonr_get(v, "k99999")->integer, 99999);
	jsonr_free(v);
	sb.buf[sb.len - 1] = ',';
	sb_adds(&sb, "\"k5\":0}");
	ck_assert_int_eq(jsonr_parse_ex(sb.buf, sb.len, NULL, &v, &e), -1);
	ck_assert_str_eq(e.msg, "duplicate key \"k5\" in an object");
	sb_release(&sb);
	jsonr_free(NULL);
}
END_TEST

/* ---- a seeded cache: offline pulls and archives ---- */

struct seeded {
	struct ib_cas cas;
	char config[72], layer1[72], layer2[72], manifest[72], index[72];
	size_t manifest_size;
};

static void put(struct ib_cas *cas, const char *data, size_t len, char out[72])
{
	char hex[IB_SHA256_HEX];
	ctx_reset();
	ck_assert_msg(ib_cas_put(&C, cas, data, len, hex) == 0, "%s", C.err);
	snprintf(out, 72, "sha256:%s", hex);
}

/* A small image in a fresh cache: config, two layers (one repeated), manifest, an index with
 * amd64 and arm64, and the tag 'localhost:5000/test/tiny:1' pointing at the index. */
static void seed(struct seeded *s)
{
	memset(s, 0, sizeof(*s));
	ctx_reset();
	ck_assert_int_eq(ib_cas_open(&C, "cache", &s->cas), 0);
	const char *cfg = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":"
	                  "\"layers\",\"diff_ids\":[]}}";
	put(&s->cas, cfg, strlen(cfg), s->config);
	put(&s->cas, "layer-one-bytes", 15, s->layer1);
	put(&s->cas, "layer-two", 9, s->layer2);
	_cleanup_free_ char *m = xasprintf(
	        "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
	        "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
	        "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":"
	        "\"%s\",\"size\":15},{\"digest\":\"%s\",\"size\":9},{\"digest\":\"%s\",\"size\":15}"
	        "]}",
	        OCI_MT_MANIFEST, s->config, strlen(cfg), s->layer1, s->layer2, s->layer1);
	put(&s->cas, m, strlen(m), s->manifest);
	s->manifest_size = strlen(m);
	_cleanup_free_ char *idx = xasprintf(
	        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\","
	        "\"size\":99,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}},"
	        "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":"
	        "{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}",
	        OCI_MT_MANIFEST, DA, OCI_MT_MANIFEST, s->manifest, strlen(m));
	put(&s->cas, idx, strlen(idx), s->index);
	ck_assert_int_eq(
	        ib_cas_ref_set(&C, &s->cas, "oci-tag", "localhost:5000/test/tiny:1", s->index + 7),
	        0);
}

static void pull_offline(struct seeded *s, const char *refs, int want, struct ib_oci_image *img)
{
	struct ib_oci_ref ref;
	struct ib_fetch_opts o;
	ib_fetch_opts_init(&o);
	o.offline = 1;
	ctx_reset();
	ck_assert_int_eq(ib_oci_ref_parse(&C, refs, &ref), 0);
	int r = ib_oci_pull(&C, &s->cas, &o, &ref, img);
	ck_assert_msg(r == want, "%s: %d %s", refs, r, C.err);
	ib_oci_ref_release(&ref);
}

START_TEST(test_pull_offline)
{
	struct seeded s;
	seed(&s);
	struct ib_oci_image img = {0};
	/* By tag, through refs/, index -> amd64. */
	pull_offline(&s, "localhost:5000/test/tiny:1", 0, &img);
	ck_assert_str_eq(img.index_digest, s.index);
	ck_assert_str_eq(img.manifest_digest, s.manifest);
	ck_assert_str_eq(img.config_digest, s.config);
	ck_assert_uint_eq(img.n_layers, 3);
	ck_assert_str_eq(img.layers[0], s.layer1);
	ck_assert_str_eq(img.layers[1], s.layer2);
	ck_assert_str_eq(img.layers[2], s.layer1);
	ib_oci_image_release(&img);
	/* By digest: the index, the manifest itself. */
	_cleanup_free_ char *byidx = xasprintf("localhost:5000/test/tiny@%s", s.index);
	pull_offline(&s, byidx, 0, &img);
	ck_assert_str_eq(img.manifest_digest, s.manifest);
	ib_oci_image_release(&img);
	_cleanup_free_ char *bym = xasprintf("localhost:5000/other:9@%s", s.manifest);
	pull_offline(&s, bym, 0, &img);
	ck_assert_str_eq(img.index_digest, "");
	ck_assert_str_eq(img.manifest_digest, s.manifest);
	ib_oci_image_release(&img);

	/* What is missing is named. */
	pull_offline(&s, "localhost:5000/test/tiny:2", -IB_E_NETWORK, &img);
	ck_assert_str_eq(C.err, "offline, and image localhost:5000/test/tiny:2 is not in the cache "
	                        "(the tag was never pulled)");
	_cleanup_free_ char *nod = xasprintf("localhost:5000/test/tiny@%s", DC);
	pull_offline(&s, nod, -IB_E_NETWORK, &img);
	ck_assert_ptr_nonnull(strstr(C.err, "(no manifest " DC ")"));
	_cleanup_free_ char *l2 = ib_cas_path(&s.cas, s.layer2 + 7);
	ck_assert_int_eq(unlink(l2), 0);
	pull_offline(&s, "localhost:5000/test/tiny:1", -IB_E_NETWORK, &img);
	ck_assert_msg(strstr(C.err, "offline") && strstr(C.err, s.layer2 + 7), "%s", C.err);
	ck_assert_ptr_null(img.layers);
	/* A corrupted cache entry is found and dropped, never used. */
	_cleanup_free_ char *l1 = ib_cas_path(&s.cas, s.layer1 + 7);
	ck_assert_int_eq(chmod(l1, 0644), 0);
	tu_write(l1, "layer-one-bytez");
	pull_offline(&s, bym, -IB_E_NETWORK, &img);
	ck_assert_msg(strstr(C.err, s.layer1 + 7), "%s", C.err);
	ck_assert(!ib_exists(l1));
	/* An index without amd64. */
	_cleanup_free_ char *arm = xasprintf(
	        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\","
	        "\"size\":99,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}}]}",
	        OCI_MT_MANIFEST, DA);
	char ad[72];
	put(&s.cas, arm, strlen(arm), ad);
	_cleanup_free_ char *armref = xasprintf("localhost:5000/arm@%s", ad);
	pull_offline(&s, armref, -IB_E_SPEC, &img);
	ck_assert_msg(strstr(C.err, "has no linux/amd64 image (it has linux/arm64)"), "%s", C.err);
	ib_cas_release(&s.cas);
}
END_TEST

static void archive(struct seeded *s, const char *refs, const char *out, int want)
{
	struct ib_oci_ref ref;
	ctx_reset();
	ck_assert_int_eq(ib_oci_ref_parse(&C, refs, &ref), 0);
	struct ib_oci_image img = {0};
	snprintf(img.manifest_digest, sizeof(img.manifest_digest), "%s", s->manifest);
	snprintf(img.config_digest, sizeof(img.config_digest), "%s", s->config);
	char *layers[] = {s->layer1, s->layer2, s->layer1};
	img.layers = layers;
	img.n_layers = 3;
	int r = ib_oci_archive_write(&C, &s->cas, &ref, &img, out);
	ck_assert_msg(r == want, "%d %s", r, C.err);
	ib_oci_ref_release(&ref);
}

START_TEST(test_archive)
{
	struct seeded s;
	seed(&s);
	_cleanup_free_ char *refs = xasprintf("localhost:5000/test/tiny:1@%s", s.index);
	archive(&s, refs, "a.tar", 0);
	sleep(1);
	archive(&s, refs, "b.tar", 0);
	_cleanup_free_ char *same = tu_sh("cmp a.tar b.tar && echo same");
	ck_assert_str_eq(same, "same\n");
	_cleanup_free_ char *tmps = tu_sh("ls | grep -c tmp || true");
	ck_assert_str_eq(tmps, "0\n");

	/* Independent readers: GNU tar for the entries, python for the JSON and the digests. */
	_cleanup_free_ char *names = tu_sh("TZ=UTC tar --numeric-owner -tvf a.tar | "
	                                   "awk '{print $1, $2, $4, $5, $6}' | "
	                                   "sed 's/[0-9a-f]\\{64\\}/HEX/'");
	ck_assert_str_eq(names, "drwxr-xr-x 0/0 1970-01-01 00:00 blobs/\n"
	                        "drwxr-xr-x 0/0 1970-01-01 00:00 blobs/sha256/\n"
	                        "-rw-r--r-- 0/0 1970-01-01 00:00 blobs/sha256/HEX\n"
	                        "-rw-r--r-- 0/0 1970-01-01 00:00 blobs/sha256/HEX\n"
	                        "-rw-r--r-- 0/0 1970-01-01 00:00 blobs/sha256/HEX\n"
	                        "-rw-r--r-- 0/0 1970-01-01 00:00 blobs/sha256/HEX\n"
	                        "-rw-r--r-- 0/0 1970-01-01 00:00 index.json\n"
	                        "-rw-r--r-- 0/0 1970-01-01 00:00 manifest.json\n"
	                        "-rw-r--r-- 0/0 1970-01-01 00:00 oci-layout\n");
	_cleanup_free_ char *py =
	        tu_sh("python3 - <<'EOF'\n"
	              "import tarfile, json, hashlib\n"
	              "t = tarfile.open('a.tar')\n"
	              "names = t.getnames()\n"
	              "assert names == sorted(names), names\n"
	              "def rd(n): return t.extractfile(n).read()\n"
	              "for n in names:\n"
	              "    if n.startswith('blobs/sha256/') and len(n) > 13:\n"
	              "        assert hashlib.sha256(rd(n)).hexdigest() == n[13:], n\n"
	              "assert json.loads(rd('oci-layout')) == {'imageLayoutVersion': '1.0.0'}\n"
	              "idx = json.loads(rd('index.json'))\n"
	              "assert idx['schemaVersion'] == 2\n"
	              "ms = idx['manifests']\n"
	              "for m in ms:\n"
	              "    b = rd('blobs/sha256/' + m['digest'][7:])\n"
	              "    assert len(b) == m['size']\n"
	              "    assert m['mediaType'] == json.loads(b)['mediaType']\n"
	              "print(ms[0]['digest'])\n"
	              "print(ms[0]['annotations']['io.containerd.image.name'])\n"
	              "print(ms[0]['annotations']['org.opencontainers.image.ref.name'])\n"
	              "print(ms[1]['annotations']['io.containerd.image.name'])\n"
	              "print(len(ms), ms[0]['digest'] == ms[1]['digest'])\n"
	              "dm = json.loads(rd('manifest.json'))\n"
	              "assert len(dm) == 1\n"
	              "print(dm[0]['Config'])\n"
	              "print(dm[0]['RepoTags'])\n"
	              "print(' '.join(dm[0]['Layers']))\n"
	              "for p in [dm[0]['Config']] + dm[0]['Layers']: assert p in names, p\n"
	              "EOF");
	_cleanup_free_ char *expect = xasprintf(
	        "%s\nlocalhost:5000/test/tiny:1\n1\nlocalhost:5000/test/tiny@%s\n2 True\n"
	        "blobs/sha256/%s\n['localhost:5000/test/tiny:1']\n"
	        "blobs/sha256/%s blobs/sha256/%s blobs/sha256/%s\n",
	        s.manifest, s.index, s.config + 7, s.layer1 + 7, s.layer2 + 7, s.layer1 + 7);
	ck_assert_str_eq(py, expect);

	/* Docker Hub names as containerd spells them; a digest-only reference has no tag. */
	archive(&s, "nginx:1.25", "c.tar", 0);
	_cleanup_free_ char *hub = tu_sh("tar -xOf c.tar index.json manifest.json");
	ck_assert_ptr_nonnull(strstr(hub, "\"io.containerd.image.name\":\"docker.io/library/nginx:"
	                                  "1.25\""));
	ck_assert_ptr_nonnull(strstr(hub, "\"RepoTags\":[\"docker.io/library/nginx:1.25\"]"));
	_cleanup_free_ char *dref = xasprintf("quay.io/a/b@%s", s.manifest);
	archive(&s, dref, "d.tar", 0);
	_cleanup_free_ char *dj = tu_sh("tar -xOf d.tar index.json manifest.json");
	ck_assert_ptr_null(strstr(dj, "ref.name"));
	ck_assert_ptr_nonnull(strstr(dj, "\"RepoTags\":[]"));

	/* Corrupted cache entry: refused, dropped, no output; a missing blob is named. */
	_cleanup_free_ char *l2 = ib_cas_path(&s.cas, s.layer2 + 7);
	ck_assert_int_eq(chmod(l2, 0644), 0);
	tu_write(l2, "layer-twX");
	archive(&s, refs, "e.tar", -IB_E_VERIFY);
	ck_assert_msg(strstr(C.err, s.layer2 + 7) && strstr(C.err, "corrupted"), "%s", C.err);
	ck_assert(!ib_exists("e.tar"));
	ck_assert(!ib_exists(l2));
	archive(&s, refs, "e.tar", -IB_E_IO);
	ck_assert_msg(strstr(C.err, "blob sha256:") && strstr(C.err, "not in the cache"), "%s",
	              C.err);
	_cleanup_free_ char *left = tu_sh("ls | grep -c 'e.tar' || true");
	ck_assert_str_eq(left, "0\n");
	ib_cas_release(&s.cas);
}
END_TEST

START_TEST(test_archive_mismatch)
{
	struct seeded s;
	seed(&s);
	struct ib_oci_ref ref;
	ctx_reset();
	ck_assert_int_eq(ib_oci_ref_parse(&C, "localhost:5000/x:1", &ref), 0);
	struct ib_oci_image img = {0};
	snprintf(img.manifest_digest, sizeof(img.manifest_digest), "%s", s.manifest);
	snprintf(img.config_digest, sizeof(img.config_digest), "%s", s.config);
	char *layers[] = {s.layer1, s.layer2};
	img.layers = layers;
	img.n_layers = 2;
	ck_assert_int_eq(ib_oci_archive_write(&C, &s.cas, &ref, &img, "x.tar"), -IB_E_VERIFY);
	ck_assert_ptr_nonnull(strstr(C.err, "do not match"));
	char evil0[] = "sha256:../../../../etc/passwd";
	char *evil[] = {evil0};
	img.layers = evil;
	img.n_layers = 1;
	ctx_reset();
	ck_assert_int_eq(ib_oci_archive_write(&C, &s.cas, &ref, &img, "x.tar"), -IB_E_SPEC);
	ck_assert(!ib_exists("x.tar"));
	ib_oci_ref_release(&ref);
	ib_cas_release(&s.cas);
}
END_TEST

static Suite *oci_suite(void)
{
	Suite *s = suite_create("oci");
	TU_CASE(s, "ref-good", test_ref_good);
	TU_CASE(s, "ref-bad", test_ref_bad);
	TU_CASE(s, "challenge", test_challenge);
	TU_CASE(s, "challenge-headers", test_challenge_headers);
	TU_CASE(s, "token-json", test_token_json);
	TU_CASE(s, "loopback", test_loopback);
	TU_CASE(s, "base64", test_base64);
	TU_CASE(s, "docker-config", test_docker_config);
	TU_CASE(s, "index-select", test_index_select);
	TU_CASE(s, "doc-kind", test_doc_kind);
	TU_CASE(s, "manifest-parse", test_manifest_parse);
	TU_CASE(s, "json-values", test_json_values);
	TU_CASE(s, "json-errors", test_json_errors);
	TU_CASE(s, "json-limits", test_json_limits);
	TU_CASE(s, "pull-offline", test_pull_offline);
	TU_CASE(s, "archive", test_archive);
	TU_CASE(s, "archive-mismatch", test_archive_mismatch);
	return s;
}

TU_MAIN(oci_suite)
