/* check_fetch.c: the content-addressed cache, and the downloader against tests/servers/httpd.py. */
#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "fetch/fetch.h"
#include "testutil.h"
#include "util/hash.h"

/* ---- helpers ---- */

static pid_t srv_pid = -1;
static int srv_port;

static void srv_stop(void)
{
	if (srv_pid > 0) {
		kill(srv_pid, SIGTERM);
		waitpid(srv_pid, NULL, 0);
	}
	srv_pid = -1;
}

static void teardown(void)
{
	srv_stop();
	tu_teardown();
}

/* The server script, from the source tree the tests run in (make runs them from the top). */
static char *script_path(void)
{
	const char *top = getenv("IMGBUILD_SRCDIR");
	char *p = xasprintf("%s/tests/servers/httpd.py", top && *top ? top : tu_oldcwd);
	ck_assert_msg(ib_exists(p), "cannot find %s (set IMGBUILD_SRCDIR)", p);
	return p;
}

/* Start httpd.py on a free loopback port, serving ./www, logging to ./srv.log. */
static void srv_start(void)
{
	_cleanup_free_ char *script = script_path();
	ck_assert_int_eq(mkdir("www", 0755) == 0 || errno == EEXIST, 1);
	/* The server is on loopback: a proxy from the environment must not be asked. */
	static const char *const proxies[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
	                                      "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
	for (size_t i = 0; i < ARRAY_SIZE(proxies); i++)
		unsetenv(proxies[i]);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Dies with this test even if the test crashes before its teardown. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execlp("python3", "python3", script, "--root", "www", "--port-file", "port",
		       "--log", "srv.log", "--max-seconds", "120", (char *)NULL);
		_exit(127);
	}
	srv_pid = pid;
	for (int i = 0; i < 500 && !ib_exists("port"); i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
		ck_assert_msg(waitpid(pid, NULL, WNOHANG) == 0, "httpd.py exited");
	}
	FILE *f = fopen("port", "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%d", &srv_port), 1);
	fclose(f);
}

static char *url(const char *path)
{
	return xasprintf("http://127.0.0.1:%d/%s", srv_port, path);
}

/* A file of size pseudo-random bytes (seeded): its sha256 into hex. */
static void mkfile(const char *path, size_t size, unsigned seed, char hex[65])
{
	char *buf = xmalloc(size ? size : 1);
	uint32_t s = seed * 2654435761u + 1;
	for (size_t i = 0; i < size; i++) {
		s = s * 1664525u + 1013904223u;
		buf[i] = (char)(s >> 24);
	}
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	_cleanup_free_ char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		ck_assert_int_eq(ib_mkdir_p(&ctx, dir, 0755), 0);
	}
	ck_assert_int_eq(ib_write_file_atomic(&ctx, path, buf, size, 0644), 0);
	if (hex)
		ib_sha256_hex(buf, size, hex);
	free(buf);
}

/* Lines of srv.log containing every one of the (NULL-ended) substrings. */
static int log_count(const char *a, const char *b)
{
	FILE *f = fopen("srv.log", "r");
	if (!f)
		return 0;
	char line[4096];
	int n = 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, a) && (!b || strstr(line, b)))
			n++;
	fclose(f);
	return n;
}

static void test_opts(struct ib_fetch_opts *o)
{
	ib_fetch_opts_init(o);
	o->retry_base_ms = 20;
	o->retry_max_ms = 100;
	o->connect_timeout = 5;
	o->low_speed_time = 2;
}

static struct ib_cas cas_open(struct ib_ctx *ctx)
{
	struct ib_cas cas;
	int r = ib_cas_open(ctx, "cache", &cas);
	ck_assert_msg(r == 0, "%s", ctx->err);
	return cas;
}

static int files_equal(const char *a, const char *b)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	char ha[65], hb[65];
	if (ib_sha256_file_hex(&ctx, a, ha) < 0 || ib_sha256_file_hex(&ctx, b, hb) < 0)
		return 0;
	return streq(ha, hb);
}

/* Files in cache/tmp/ whose name contains s. */
static int tmp_count(const char *s)
{
	_cleanup_free_ char *cmd = xasprintf("ls cache/tmp | grep -c -F -- '%s' || true", s);
	_cleanup_free_ char *out = tu_sh(cmd);
	return atoi(out);
}

/* ---- the cache ---- */

START_TEST(test_cas_commit_lookup)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_cas cas = cas_open(&ctx);
	char hex[65], other[65];
	mkfile("cache/tmp/x.tmp", 5000, 1, hex);
	mkfile("y", 10, 2, other);

	ck_assert_int_eq(ib_cas_lookup(&ctx, &cas, hex, 1, NULL), 0);
	ck_assert_int_eq(ib_cas_commit(&ctx, &cas, "cache/tmp/x.tmp", hex, "test blob"), 0);
	ck_assert(!ib_exists("cache/tmp/x.tmp"));
	char *path = NULL;
	ck_assert_int_eq(ib_cas_lookup(&ctx, &cas, hex, 1, &path), 1);
	_cleanup_free_ char *want = xasprintf("%s/cache/blobs/sha256/%s", tu_dir, hex);
	ck_assert_str_eq(path, want);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0444);
	free(path);

	/* Wrong digest: refused, deleted, nothing enters the cache. */
	mkfile("cache/tmp/z.tmp", 5000, 3, NULL);
	int r = ib_cas_commit(&ctx, &cas, "cache/tmp/z.tmp", other, "artifact 'z'");
	ck_assert_int_eq(r, -IB_E_VERIFY);
	ck_assert_msg(strstr(ctx.err, "artifact 'z': sha256 mismatch: expected") &&
	                      strstr(ctx.err, other),
	              "%s", ctx.err);
	ck_assert(!ib_exists("cache/tmp/z.tmp"));
	ck_assert_int_eq(ib_cas_lookup(&ctx, &cas, other, 1, NULL), 0);

	/* Digests never become arbitrary paths. */
	struct ib_ctx c2;
	ib_ctx_init(&c2);
	ck_assert_int_lt(ib_cas_lookup(&c2, &cas, "../../etc/passwd", 0, NULL), 0);
	ck_assert(!ib_cas_hex_valid(
	        "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789"));
	ck_assert(ib_cas_hex_valid(hex));
	ib_cas_release(&cas);
}
END_TEST

START_TEST(test_cas_corruption)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_cas cas = cas_open(&ctx);
	char hex[65];
	ck_assert_int_eq(ib_cas_put(&ctx, &cas, "hello cache\n", 12, hex), 0);
	char want[65];
	ib_sha256_hex("hello cache\n", 12, want);
	ck_assert_str_eq(hex, want);
	/* Putting the same bytes again is a no-op. */
	ck_assert_int_eq(ib_cas_put(&ctx, &cas, "hello cache\n", 12, hex), 0);
	_cleanup_free_ char *path = ib_cas_path(&cas, hex);
	ck_assert_int_eq(chmod(path, 0644), 0);
	FILE *f = fopen(path, "r+");
	ck_assert_ptr_nonnull(f);
	fputc('H', f);
	fclose(f);
	/* Without verification the entry is taken as is; with it, found corrupted and gone. */
	ck_assert_int_eq(ib_cas_lookup(&ctx, &cas, hex, 0, NULL), 1);
	ck_assert_int_eq(ib_cas_lookup(&ctx, &cas, hex, 1, NULL), 0);
	ck_assert(!ib_exists(path));
	ck_assert_int_eq(ctx.err_code, IB_OK);
	ck_assert_int_eq(tmp_count(".tmp."), 0);
	ib_cas_release(&cas);
}
END_TEST

struct seen {
	int n;
	char buf[1024];
};

static int collect(const char *kind, const char *name, const char *hex, void *data)
{
	struct seen *s = data;
	s->n++;
	size_t l = strlen(s->buf);
	snprintf(s->buf + l, sizeof(s->buf) - l, "%s|%s|%.8s\n", kind, name, hex);
	return 0;
}

START_TEST(test_cas_refs)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_cas cas = cas_open(&ctx);
	char a[65], b[65], got[65];
	ib_sha256_hex("a", 1, a);
	ib_sha256_hex("b", 1, b);
	const char *name = "registry.example:5000/library/nginx:1.25";
	ck_assert_int_eq(ib_cas_ref_get(&ctx, &cas, "oci-tag", name, got), 0);
	ck_assert_int_eq(ib_cas_ref_set(&ctx, &cas, "oci-tag", name, a), 0);
	ck_assert_int_eq(ib_cas_ref_get(&ctx, &cas, "oci-tag", name, got), 1);
	ck_assert_str_eq(got, a);
	ck_assert_int_eq(ib_cas_ref_set(&ctx, &cas, "oci-tag", name, b), 0); /* replaced */
	ck_assert_int_eq(ib_cas_ref_get(&ctx, &cas, "oci-tag", name, got), 1);
	ck_assert_str_eq(got, b);
	ck_assert_int_eq(ib_cas_ref_set(&ctx, &cas, "checksum", "https://x/y.sha256 y", a), 0);
	ck_assert_int_eq(ib_cas_ref_get(&ctx, &cas, "checksum", name, got), 0);

	struct seen s = {0, ""};
	ck_assert_int_eq(ib_cas_ref_foreach(&ctx, &cas, collect, &s), 0);
	ck_assert_int_eq(s.n, 2);
	_cleanup_free_ char *want = xasprintf("checksum|https://x/y.sha256 y|%.8s\n"
	                                      "oci-tag|%s|%.8s\n",
	                                      a, name, b);
	ck_assert_str_eq(s.buf, want);

	/* A kind that could climb out of refs/, a digest that is not one. */
	struct ib_ctx c2;
	ib_ctx_init(&c2);
	ck_assert_int_lt(ib_cas_ref_set(&c2, &cas, "../x", "n", a), 0);
	struct ib_ctx c3;
	ib_ctx_init(&c3);
	ck_assert_int_lt(ib_cas_ref_set(&c3, &cas, "tag", "n", "nothex"), 0);
	ck_assert_int_eq(tmp_count(".tmp."), 0);
	ib_cas_release(&cas);
}
END_TEST

START_TEST(test_cas_lock)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_cas cas = cas_open(&ctx);
	char hex[65];
	ib_sha256_hex("x", 1, hex);
	int fd1 = -1, fd2 = -1;
	ck_assert_int_eq(ib_cas_trylock(&ctx, &cas, hex, &fd1), 1);
	ck_assert_int_eq(ib_cas_trylock(&ctx, &cas, hex, &fd2), 0); /* held */
	close(fd1);
	ck_assert_int_eq(ib_cas_trylock(&ctx, &cas, hex, &fd2), 1);
	/* prune unlinks a lock file under its holder: the next taker gets a fresh one. */
	_cleanup_free_ char *lock = xasprintf("cache/tmp/%s.lock", hex);
	ck_assert_int_eq(unlink(lock), 0);
	ck_assert_int_eq(ib_cas_trylock(&ctx, &cas, hex, &fd1), 1);
	close(fd1);
	close(fd2);
	ib_cas_release(&cas);
}
END_TEST

/* ---- pure functions ---- */

START_TEST(test_mirror_url)
{
	static const struct {
		const char *mirror, *url, *want;
	} cases[] = {
	        {"http://m.local/mirror", "https://dl.k8s.io/release/v1.30.0/bin/kubeadm",
	         "http://m.local/mirror/dl.k8s.io/release/v1.30.0/bin/kubeadm"},
	        {"http://m.local/mirror/", "http://user:pw@example.org:8080/a/b?x=1#frag",
	         "http://m.local/mirror/example.org:8080/a/b?x=1"},
	        {"/srv/mirror", "https://github.com/x/y/releases/download/v1/y.tgz",
	         "file:///srv/mirror/github.com/x/y/releases/download/v1/y.tgz"},
	        {"/srv/my mirror/", "https://h/a?q=1", "file:///srv/my%20mirror/h/a"},
	        {"http://m.local", "https://example.org", "http://m.local/example.org/"},
	        /* Already under the mirror, or not http(s): unchanged. */
	        {"http://m.local/mirror", "http://m.local/mirror/dl.k8s.io/x",
	         "http://m.local/mirror/dl.k8s.io/x"},
	        {"/srv/mirror", "file:///srv/mirror/h/a", "file:///srv/mirror/h/a"},
	        {"http://m.local", "file:///etc/hostname", "file:///etc/hostname"},
	        {NULL, "https://a/b", "https://a/b"},
	        {"", "https://a/b", "https://a/b"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *got = ib_mirror_url(cases[i].mirror, cases[i].url);
		ck_assert_msg(streq(got, cases[i].want), "case %zu: %s -> %s, want %s", i,
		              cases[i].url, got, cases[i].want);
		_cleanup_free_ char *twice = ib_mirror_url(cases[i].mirror, got);
		ck_assert_str_eq(twice, got);
	}
	/* A relative directory is made absolute. */
	_cleanup_free_ char *rel = ib_mirror_url("m", "https://h/p");
	_cleanup_free_ char *want = xasprintf("file://%s/m/h/p", tu_dir);
	ck_assert_str_eq(rel, want);
}
END_TEST

START_TEST(test_backoff)
{
	/* Equal jitter: within [d/2, d], d doubling from the base up to the cap. */
	static const struct {
		int attempt;
		long lo, hi;
	} cases[] = {{1, 500, 1000},    {2, 1000, 2000},    {3, 2000, 4000}, {5, 8000, 16000},
	             {6, 15000, 30000}, {40, 15000, 30000}, {0, 500, 1000}};
	static const uint32_t rnds[] = {0, 1, 499, 500, 12345, 0x7fffffff, 0xffffffff};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		long lo = 1 << 30, hi = 0;
		for (size_t k = 0; k < ARRAY_SIZE(rnds); k++) {
			long d = ib_fetch_backoff_ms(1000, 30000, cases[i].attempt, rnds[k]);
			ck_assert_msg(d >= cases[i].lo && d <= cases[i].hi,
			              "attempt %d rnd %u: %ld", cases[i].attempt, rnds[k], d);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		ck_assert_int_eq(lo, cases[i].lo); /* rnd 0 gives exactly the half */
		ck_assert_int_gt(hi, lo);          /* and there is jitter */
	}
	ck_assert_int_eq(ib_fetch_backoff_ms(0, 30000, 3, 77), 0);
}
END_TEST

START_TEST(test_checksum_parse)
{
	const char *h1 = "9a3bde8cc3f1ab34ed2cfbab2a7d2a9d1d3f5b5e1c1b0e0f4a8e1c3b2a1d0e0f";
	const char *h2 = "0000000000000000000000000000000000000000000000000000000000000001";
	char hex[65];
	struct ib_ctx ctx;

	/* Bare hex (dl.k8s.io's .sha256), upper case and CRLF tolerated. */
	_cleanup_free_ char *bare = xasprintf("%s\r\n", h1);
	for (char *p = bare; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_checksum_parse(&ctx, bare, "kubeadm", hex), 0);
	ck_assert_str_eq(hex, h1);

	/* sha256sum output with several files, text and binary mode, paths. */
	_cleanup_free_ char *sums =
	        xasprintf("# comment\n%s  other.tgz\n%s *./bin/kubeadm\n", h2, h1);
	ck_assert_int_eq(ib_checksum_parse(&ctx, sums, "kubeadm", hex), 0);
	ck_assert_str_eq(hex, h1);
	ck_assert_int_eq(ib_checksum_parse(&ctx, sums, "other.tgz", hex), 0);
	ck_assert_str_eq(hex, h2);

	/* BSD style. */
	_cleanup_free_ char *bsd = xasprintf("SHA256 (kubeadm) = %s\n", h1);
	ck_assert_int_eq(ib_checksum_parse(&ctx, bsd, "kubeadm", hex), 0);
	ck_assert_str_eq(hex, h1);
	ck_assert_int_eq(ctx.err_code, IB_OK);

	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_checksum_parse(&ctx, sums, "kubelet", hex), -IB_E_VERIFY);
	ck_assert_str_eq(ctx.err, "no entry for 'kubelet' in the checksum file");
	_cleanup_free_ char *one = xasprintf("%s  kubectl\n", h1);
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_checksum_parse(&ctx, one, "kubeadm", hex), -IB_E_VERIFY);
	ck_assert_str_eq(ctx.err, "the checksum file is for 'kubectl', not 'kubeadm'");
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_checksum_parse(&ctx, "<html>not found</html>\n", "x", hex),
	                 -IB_E_VERIFY);
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_checksum_parse(&ctx, "abc123  x\n", "x", hex), -IB_E_VERIFY);
}
END_TEST

/* ---- the downloader against httpd.py ---- */

#define MAXN 16

struct batch {
	struct ib_fetch_item it[MAXN];
	char *urls[MAXN];
	char hex[MAXN][65];
	char what[MAXN][32];
	size_t n;
};

/* Add ./www/<name> (made with size bytes unless it exists) fetched as <name><query>. */
static struct ib_fetch_item *add(struct batch *b, const char *name, size_t size, const char *query)
{
	ck_assert_int_lt(b->n, MAXN);
	size_t i = b->n++;
	_cleanup_free_ char *path = xasprintf("www/%s", name);
	unsigned seed = (unsigned)size;
	for (const char *c = name; *c; c++)
		seed = seed * 31 + (unsigned char)*c;
	mkfile(path, size, seed, b->hex[i]);
	_cleanup_free_ char *rel = xasprintf("%s%s", name, query ? query : "");
	b->urls[i] = url(rel);
	snprintf(b->what[i], sizeof(b->what[i]), "artifact '%s'", name);
	memset(&b->it[i], 0, sizeof(b->it[i]));
	b->it[i].url = b->urls[i];
	b->it[i].sha256 = b->hex[i];
	b->it[i].what = b->what[i];
	return &b->it[i];
}

static void batch_release(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		ib_fetch_item_release(&b->it[i]);
		free(b->urls[i]);
	}
	b->n = 0;
}

static int run(struct ib_ctx *ctx, const struct ib_fetch_opts *o, struct batch *b)
{
	struct ib_cas cas = cas_open(ctx);
	int r = ib_fetch_all(ctx, &cas, o, b->it, b->n);
	ib_cas_release(&cas);
	return r;
}

/* Every item succeeded and its entry holds the served file's bytes. */
static void assert_all_fetched(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		ck_assert_msg(b->it[i].rc == 0, "item %zu: %s", i, b->it[i].err);
		ck_assert_str_eq(b->it[i].digest, b->hex[i]);
		ck_assert_ptr_nonnull(b->it[i].path);
		char h[65];
		struct ib_ctx c;
		ib_ctx_init(&c);
		ck_assert_int_eq(ib_sha256_file_hex(&c, b->it[i].path, h), 0);
		ck_assert_str_eq(h, b->hex[i]);
	}
}

START_TEST(test_fetch_parallel)
{
	srv_start();
	struct ib_fetch_opts o;
	test_opts(&o);
	struct batch b = {.n = 0};
	/* 8 files, each answered after 400 ms: sequentially 3.2 s; 8 at once ~0.4 s. */
	for (int i = 0; i < 8; i++) {
		_cleanup_free_ char *name = xasprintf("f%d.bin", i);
		add(&b, name, 200000 + (size_t)i, "?delay_ms=400");
	}
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	double t0 = ib_now();
	ck_assert_msg(run(&ctx, &o, &b) == 0, "%s", ctx.err);
	double t = ib_now() - t0;
	assert_all_fetched(&b);
	ck_assert_msg(t < 1.6, "8 transfers of 0.4 s took %.2f s: not parallel", t);
	ck_assert_int_eq(log_count("GET /f", "status=200"), 8);
	/* Nothing left behind: parts renamed in, entry locks removed. */
	_cleanup_free_ char *left = tu_sh("ls -A cache/tmp");
	ck_assert_str_eq(left, "");

	/* The bound holds: 2 at a time means at least 4 rounds of 0.4 s (fresh cache). */
	batch_release(&b);
	ck_assert_int_eq(ib_rm_rf(&ctx, "cache"), 0);
	for (int i = 0; i < 8; i++) {
		_cleanup_free_ char *name = xasprintf("f%d.bin", i);
		add(&b, name, 200000 + (size_t)i, "?delay_ms=400");
	}
	o.parallel = 2;
	t0 = ib_now();
	ck_assert_msg(run(&ctx, &o, &b) == 0, "%s", ctx.err);
	t = ib_now() - t0;
	ck_assert_msg(t >= 1.55 && t < 3.0, "parallel 2 took %.2f s", t);
	assert_all_fetched(&b);

	/* Everything cached now: no request at all, items say so. */
	int before = log_count("GET", NULL);
	ck_assert_msg(run(&ctx, &o, &b) == 0, "%s", ctx.err);
	for (size_t i = 0; i < b.n; i++)
		ck_assert_int_eq(b.it[i].cached, 1);
	ck_assert_int_eq(log_count("GET", NULL), before);
	batch_release(&b);
}
END_TEST

START_TEST(test_fetch_resume)
{
	srv_start();
	struct ib_fetch_opts o;
	test_opts(&o);
	struct batch b = {.n = 0};
	struct ib_fetch_item *it = add(&b, "big.bin", 1000000, NULL);
	/* An earlier run left the first 300000 bytes. */
	_cleanup_free_ char *part = xasprintf("cache/tmp/%s.part", it->sha256);
	_cleanup_free_ char *cmd =
	        xasprintf("mkdir -p cache/tmp && head -c 300000 www/big.bin > %s", part);
	free(tu_sh(cmd));
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_msg(run(&ctx, &o, &b) == 0, "%s", ctx.err);
	assert_all_fetched(&b);
	ck_assert_int_eq(log_count("GET /big.bin", NULL), 1);
	ck_assert_int_eq(log_count("GET /big.bin", "range=bytes=300000- "), 1);
	ck_assert(!ib_exists(part));
	batch_release(&b);

	/* A part whose bytes are wrong: the digest fails after resuming, so it starts over
	 * once, from zero, and succeeds. */
	ck_assert_int_eq(ib_rm_rf(&ctx, "cache"), 0);
	it = add(&b, "big2.bin", 500000, NULL);
	_cleanup_free_ char *part2 = xasprintf("cache/tmp/%s.part", it->sha256);
	mkfile(part2, 100000, 99, NULL);
	ck_assert_msg(run(&ctx, &o, &b) == 0, "%s", ctx.err);
	assert_all_fetched(&b);
	ck_assert_int_eq(log_count("GET /big2.bin", "range=bytes=100000- "), 1);
	ck_assert_int_eq(log_count("GET /big2.bin", "range=- "), 1);
	batch_release(&b);

	/* A complete part (the earlier run died before the rename): no request at all. */
	ck_assert_int_eq(ib_rm_rf(&ctx, "cache"), 0);
	it = add(&b, "big3.bin", 100000, NULL);
	_cleanup_free_ char *cmd3 =
	        xasprintf("mkdir -p cache/tmp && cp www/big3.bin cache/tmp/%s.part", it->sha256);
	free(tu_sh(cmd3));
	ck_assert_msg(run(&ctx, &o, &b) == 0, "%s", ctx.err);
	assert_all_fetched(&b);
	ck_assert_int_eq(log_count("GET /big3.bin", NULL), 0);

	/* A server that ignores Range: the whole body replaces the prefix. */
	batch_release(&b);
	ck_assert_int_eq(ib_rm_rf(&ctx, "cache"), 0);
	it = add(&b, "big4.bin", 400000, "?norange=1");
	_cleanup_free_ char *part4 = xasprintf("cache/tmp/%s.part", it->sha256);
	_cleanup_free_ char *cmd4 =
	        xasprintf("mkdir -p cache/tmp && head -c 1234 www/big4.bin > %s", part4);
	free(tu_sh(cmd4));
	ck_assert_msg(run(&ctx, &o, &b) == 0, "%s", ctx.err);
	assert_all_fetched(&b);
	ck_assert_int_eq(log_count("GET /big4.bin", "range=bytes=1234- "), 1);
	batch_release(&b);
}
END_TEST

START_TEST(test_fetch_retry)
{
	srv_start();
	struct ib_fetch_opts o;
	test_opts(&o);
	o.retries = 3;
	struct batch b = {.n = 0};
	add(&b, "a.bin", 70000, "?fail=2");            /* two 500s, then fine */
	add(&b, "b.bin", 70000, "?fail=1&status=503"); /* a 503 */
	add(&b, "c.bin", 70000, "?fail=1&status=429&retry_after=0");
	struct ib_fetch_item *gone = add(&b, "d.bin", 1000, "?fail=99"); /* always 500 */
	struct ib_fetch_item *missing = add(&b, "e.bin", 1000, NULL);
	ck_assert_int_eq(unlink("www/e.bin"), 0); /* 404: not worth retrying */
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	int r = run(&ctx, &o, &b);
	ck_assert_int_eq(r, -IB_E_NETWORK);
	for (size_t i = 0; i < 3; i++)
		ck_assert_msg(b.it[i].rc == 0, "%zu: %s", i, b.it[i].err);
	ck_assert_int_eq(log_count("GET /a.bin", NULL), 3);
	ck_assert_int_eq(log_count("GET /b.bin", NULL), 2);
	ck_assert_int_eq(log_count("GET /c.bin", NULL), 2);
	ck_assert_int_eq(log_count("GET /d.bin", NULL), 4); /* 1 + 3 retries */
	ck_assert_int_eq(log_count("GET /e.bin", NULL), 1);
	ck_assert_int_eq(gone->rc, -IB_E_NETWORK);
	ck_assert_msg(strstr(gone->err, "HTTP status 500 (retries exhausted)"), "%s", gone->err);
	ck_assert_int_eq(missing->rc, -IB_E_NETWORK);
	ck_assert_msg(strstr(missing->err, "HTTP status 404"), "%s", missing->err);
	ck_assert_int_eq(tmp_count(".part"), 0); /* no bytes came: no empty parts kept */
	/* One message naming both failures. */
	ck_assert_msg(strstr(ctx.err, "cannot fetch 2 of 5 items: ") &&
	                      strstr(ctx.err, "artifact 'd.bin'") &&
	                      strstr(ctx.err, "artifact 'e.bin'"),
	              "%s", ctx.err);
	batch_release(&b);

	/* Connection refused is retried too, then reported. */
	srv_stop();
	add(&b, "z.bin", 70000, NULL);
	o.retries = 1;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(run(&ctx, &o, &b), -IB_E_NETWORK);
	ck_assert_msg(strstr(ctx.err, "retries exhausted") &&
	                      (strstr(ctx.err, "onnect") || strstr(ctx.err, "refused")),
	              "%s", ctx.err);
	batch_release(&b);
}
END_TEST

START_TEST(test_fetch_digest_mismatch)
{
	srv_start();
	struct ib_fetch_opts o;
	test_opts(&o);
	struct batch b = {.n = 0};
	struct ib_fetch_item *wrong = add(&b, "w.bin", 300000, "?wrong=1");
	struct ib_fetch_item *good = add(&b, "g.bin", 1000, NULL);
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(run(&ctx, &o, &b), -IB_E_VERIFY);
	ck_assert_int_eq(wrong->rc, -IB_E_VERIFY);
	ck_assert_msg(strstr(ctx.err, "artifact 'w.bin' (") &&
	                      strstr(ctx.err, "/w.bin?wrong=1): sha256 mismatch: expected ") &&
	                      strstr(ctx.err, wrong->sha256),
	              "%s", ctx.err);
	ck_assert_int_eq(good->rc, 0);
	/* Not retried (the same bytes would come back), nothing kept anywhere. */
	ck_assert_int_eq(log_count("GET /w.bin", NULL), 1);
	ck_assert_int_eq(tmp_count(".part"), 0);
	struct ib_cas cas = cas_open(&ctx);
	ck_assert_int_eq(ib_cas_lookup(&ctx, &cas, wrong->sha256, 0, NULL), 0);
	ck_assert_int_eq(ib_cas_lookup(&ctx, &cas, good->sha256, 0, NULL), 1);
	_cleanup_free_ char *n = tu_sh("ls cache/blobs/sha256 | wc -l");
	ck_assert_str_eq(n, "1\n");

	/* A declared size smaller than what comes: stopped at the size, refused. */
	batch_release(&b);
	struct ib_fetch_item *big = add(&b, "s.bin", 300000, NULL);
	big->size = 1000;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(run(&ctx, &o, &b), -IB_E_VERIFY);
	ck_assert_msg(strstr(ctx.err, "larger than its declared 1000 bytes"), "%s", ctx.err);
	ck_assert_int_eq(tmp_count(".part"), 0);
	ib_cas_release(&cas);
	batch_release(&b);
}
END_TEST

START_TEST(test_fetch_truncated)
{
	srv_start();
	struct ib_fetch_opts o;
	test_opts(&o);
	o.retries = 2;
	struct batch b = {.n = 0};
	/* Cut once after 100000 bytes: retried, resuming where the body stopped. */
	add(&b, "t.bin", 400000, "?truncate=100000&times=1");
	/* Cut every time: fails after the retries; what arrived stays for a later resume. */
	struct ib_fetch_item *bad = add(&b, "u.bin", 400000, "?truncate=1000");
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(run(&ctx, &o, &b), -IB_E_NETWORK);
	ck_assert_msg(b.it[0].rc == 0, "%s", b.it[0].err);
	ck_assert_int_eq(log_count("GET /t.bin", NULL), 2);
	ck_assert_int_eq(log_count("GET /t.bin", "range=bytes=100000- "), 1);
	ck_assert_int_eq(bad->rc, -IB_E_NETWORK);
	ck_assert_msg(strstr(bad->err, "artifact 'u.bin'") && strstr(bad->err, "retries exhausted"),
	              "%s", bad->err);
	ck_assert_int_eq(log_count("GET /u.bin", NULL), 3);
	ck_assert_int_eq(log_count("GET /u.bin", "range=bytes=1000- "), 1);
	ck_assert_int_eq(log_count("GET /u.bin", "range=bytes=2000- "), 1);
	/* What arrived is kept for the next run to resume. */
	_cleanup_free_ char *upart = xasprintf("cache/tmp/%s.part", bad->sha256);
	ck_assert_int_eq(ib_file_size(upart), 3000);
	struct ib_cas cas = cas_open(&ctx);
	ck_assert_int_eq(ib_cas_lookup(&ctx, &cas, bad->sha256, 0, NULL), 0);
	ib_cas_release(&cas);
	batch_release(&b);
}
END_TEST

START_TEST(test_fetch_stall)
{
	srv_start();
	struct ib_fetch_opts o;
	test_opts(&o);
	o.retries = 1;
	o.low_speed_time = 1;
	struct batch b = {.n = 0};
	/* Headers, then silence: the low-speed timeout ends the attempt, the retry works. */
	add(&b, "s.bin", 100000, "?stall=20&times=1");
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	double t0 = ib_now();
	ck_assert_msg(run(&ctx, &o, &b) == 0, "%s", ctx.err);
	double t = ib_now() - t0;
	assert_all_fetched(&b);
	ck_assert_msg(t >= 0.9 && t < 4, "took %.2f s", t);
	ck_assert_int_eq(log_count("GET /s.bin", NULL), 2);
	batch_release(&b);

	/* Stalled for good: gives up after the retries instead of hanging. */
	add(&b, "z.bin", 100000, "?stall=20");
	o.retries = 0;
	ib_ctx_init(&ctx);
	t0 = ib_now();
	ck_assert_int_eq(run(&ctx, &o, &b), -IB_E_NETWORK);
	t = ib_now() - t0;
	ck_assert_msg(t < 4, "took %.2f s", t);
	ck_assert_msg(strstr(ctx.err, "artifact 'z.bin'") &&
	                      (strstr(ctx.err, "too slow") || strstr(ctx.err, "imeout")),
	              "%s", ctx.err);
	batch_release(&b);
}
END_TEST

START_TEST(test_fetch_checksum_url)
{
	srv_start();
	struct ib_fetch_opts o;
	test_opts(&o);
	struct batch b = {.n = 0};
	struct ib_fetch_item *k = add(&b, "kubeadm", 50000, NULL);
	struct ib_fetch_item *c = add(&b, "cni.tgz", 60000, NULL);
	struct ib_fetch_item *x = add(&b, "other", 1000, NULL);
	/* dl.k8s.io style: a bare digest next to the file; a SHA256SUMS for the others. */
	_cleanup_free_ char *bare = xasprintf("%s\n", k->sha256);
	tu_write("www/kubeadm.sha256", bare);
	_cleanup_free_ char *sums =
	        xasprintf("%s  cni.tgz\n%s  something-else\n", c->sha256, x->sha256);
	tu_write("www/SHA256SUMS", sums);
	_cleanup_free_ char *u1 = url("kubeadm.sha256"), *u2 = url("SHA256SUMS");
	k->sha256 = NULL;
	k->checksum_url = u1;
	c->sha256 = NULL;
	c->checksum_url = u2;
	x->sha256 = NULL;
	x->checksum_url = u2; /* "other" is not listed */
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(run(&ctx, &o, &b), -IB_E_VERIFY);
	ck_assert_msg(k->rc == 0 && c->rc == 0, "%s / %s", k->err, c->err);
	ck_assert_str_eq(k->digest, b.hex[0]);
	ck_assert_str_eq(c->digest, b.hex[1]);
	ck_assert_msg(strstr(x->err, "no entry for 'other'"), "%s", x->err);

	/* The answers are kept: offline, the same items resolve and come from the cache. */
	b.n = 2;
	o.offline = 1;
	ib_ctx_init(&ctx);
	int before = log_count("GET", NULL);
	ck_assert_msg(run(&ctx, &o, &b) == 0, "%s", ctx.err);
	ck_assert_int_eq(log_count("GET", NULL), before);
	ck_assert(k->cached && c->cached);
	b.n = 3;
	batch_release(&b);
}
END_TEST

START_TEST(test_fetch_offline)
{
	/* No server at all: offline must not even try. */
	struct ib_fetch_opts o;
	test_opts(&o);
	srv_port = 9; /* discard: nothing listens there */
	struct batch b = {.n = 0};
	ck_assert_int_eq(mkdir("www", 0755), 0);
	struct ib_fetch_item *have = add(&b, "have.bin", 1000, NULL);
	add(&b, "kubelet", 1000, NULL);
	add(&b, "containerd.tgz", 1000, NULL);
	struct ib_fetch_item *sum = add(&b, "crictl.tgz", 1000, NULL);
	sum->sha256 = NULL;
	sum->checksum_url = "https://example.invalid/crictl.tgz.sha256";
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_cas cas = cas_open(&ctx);
	char hex[65];
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	ck_assert_int_eq(ib_read_file(&ctx, "www/have.bin", 1 << 20, &data, &len), 0);
	ck_assert_int_eq(ib_cas_put(&ctx, &cas, data, len, hex), 0);
	ck_assert_str_eq(hex, have->sha256);
	ib_cas_release(&cas);

	o.offline = 1;
	int r = run(&ctx, &o, &b);
	ck_assert_int_eq(r, -IB_E_NETWORK);
	ck_assert_int_eq(have->rc, 0);
	ck_assert_int_eq(have->cached, 1);
	ck_assert_msg(strstr(ctx.err, "offline, and 3 of 4 items are not in the cache: ") &&
	                      strstr(ctx.err, "artifact 'kubelet'") &&
	                      strstr(ctx.err, "artifact 'containerd.tgz'") &&
	                      strstr(ctx.err, "artifact 'crictl.tgz'") &&
	                      strstr(ctx.err, "crictl.tgz.sha256"),
	              "%s", ctx.err);
	ck_assert(!strstr(ctx.err, "have.bin"));

	/* ib_http_get refuses the network too. */
	struct ib_ctx c2;
	ib_ctx_init(&c2);
	char *body = NULL;
	ck_assert_int_eq(
	        ib_http_get(&c2, &o, "http://127.0.0.1:9/x", NULL, 100, &body, NULL, NULL, NULL),
	        -IB_E_NETWORK);
	ck_assert_msg(strstr(c2.err, "offline"), "%s", c2.err);
	batch_release(&b);
}
END_TEST

START_TEST(test_fetch_mirror)
{
	struct ib_fetch_opts o;
	test_opts(&o);
	/* A mirror directory laid out host/path, for URLs of hosts that do not exist. */
	char h1[65], h2[65];
	mkfile("mirror/dl.example.invalid/v1/tool", 70000, 1, h1);
	mkfile("mirror/github.example.invalid/r/x.tgz", 3000, 2, h2);
	struct ib_fetch_item it[2] = {
	        {.url = "https://dl.example.invalid/v1/tool", .sha256 = h1, .what = "tool"},
	        {.url = "https://github.example.invalid/r/x.tgz", .sha256 = h2, .what = "x"},
	};
	o.mirror = "mirror";
	o.offline = 1; /* a local directory is not the network */
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_cas cas = cas_open(&ctx);
	ck_assert_msg(ib_fetch_all(&ctx, &cas, &o, it, 2) == 0, "%s", ctx.err);
	ck_assert(files_equal(it[0].path, "mirror/dl.example.invalid/v1/tool"));
	ck_assert(files_equal(it[1].path, "mirror/github.example.invalid/r/x.tgz"));
	ib_fetch_item_release(&it[0]);
	ib_fetch_item_release(&it[1]);

	/* A file:// resume: a part left behind, the rest read from the mirror. */
	ck_assert_int_eq(ib_rm_rf(&ctx, "cache"), 0);
	ib_cas_release(&cas);
	cas = cas_open(&ctx);
	_cleanup_free_ char *cmd =
	        xasprintf("head -c 5000 mirror/dl.example.invalid/v1/tool > cache/tmp/%s.part", h1);
	free(tu_sh(cmd));
	ck_assert_msg(ib_fetch_all(&ctx, &cas, &o, it, 1) == 0, "%s", ctx.err);
	ck_assert(files_equal(it[0].path, "mirror/dl.example.invalid/v1/tool"));
	ib_fetch_item_release(&it[0]);

	/* Missing from the mirror: an error naming the item. */
	ck_assert_int_eq(ib_rm_rf(&ctx, "cache"), 0);
	ib_cas_release(&cas);
	cas = cas_open(&ctx);
	ck_assert_int_eq(unlink("mirror/github.example.invalid/r/x.tgz"), 0);
	ck_assert_int_lt(ib_fetch_all(&ctx, &cas, &o, it, 2), 0);
	ck_assert_int_eq(it[0].rc, 0);
	ck_assert_msg(it[1].rc < 0 && strstr(ctx.err, "x (file://"), "%s", ctx.err);
	ib_fetch_item_release(&it[0]);
	ib_fetch_item_release(&it[1]);

	/* A mirror server: the URL's host becomes the first path component. */
	srv_start();
	char h3[65];
	mkfile("www/m/dl.example.invalid/v2/tool", 2000, 3, h3);
	_cleanup_free_ char *murl = url("m");
	struct ib_fetch_item one = {.url = "https://dl.example.invalid/v2/tool", .sha256 = h3};
	o.mirror = murl;
	o.offline = 0;
	ib_ctx_init(&ctx);
	ck_assert_msg(ib_fetch_all(&ctx, &cas, &o, &one, 1) == 0, "%s", ctx.err);
	ck_assert_int_eq(log_count("GET /m/dl.example.invalid/v2/tool ", NULL), 1);
	ib_fetch_item_release(&one);
	ib_cas_release(&cas);
}
END_TEST

START_TEST(test_fetch_corrupted_entry)
{
	srv_start();
	struct ib_fetch_opts o;
	test_opts(&o);
	struct batch b = {.n = 0};
	add(&b, "c.bin", 20000, NULL);
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_msg(run(&ctx, &o, &b) == 0, "%s", ctx.err);
	ck_assert_int_eq(b.it[0].cached, 0);
	/* Flip a byte in the entry: the next fetch notices, drops it and downloads again. */
	ck_assert_int_eq(chmod(b.it[0].path, 0644), 0);
	int fd = open(b.it[0].path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "X", 1, 1000), 1);
	close(fd);
	ck_assert_msg(run(&ctx, &o, &b) == 0, "%s", ctx.err);
	ck_assert_int_eq(b.it[0].cached, 0);
	assert_all_fetched(&b);
	ck_assert_int_eq(log_count("GET /c.bin", NULL), 2);
	ck_assert_msg(run(&ctx, &o, &b) == 0, "%s", ctx.err);
	ck_assert_int_eq(b.it[0].cached, 1);
	ck_assert_int_eq(log_count("GET /c.bin", NULL), 2);
	batch_release(&b);
}
END_TEST

START_TEST(test_fetch_redirect_auth)
{
	srv_start();
	struct ib_fetch_opts o;
	test_opts(&o);
	static const char *const headers[] = {"Authorization: Bearer s3cret", "Accept: x/y", NULL};
	struct batch b = {.n = 0};
	/* Registries send blob GETs to another host: the token must not follow. */
	_cleanup_free_ char *other = xasprintf("?redirect=localhost:%d", srv_port);
	_cleanup_free_ char *same = xasprintf("?redirect=127.0.0.1:%d", srv_port);
	add(&b, "r1.bin", 5000, other)->headers = headers;
	add(&b, "r2.bin", 5000, same)->headers = headers;
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_msg(run(&ctx, &o, &b) == 0, "%s", ctx.err);
	assert_all_fetched(&b);
	_cleanup_free_ char *lh = xasprintf("host=localhost:%d", srv_port);
	ck_assert_int_eq(log_count("GET /r1.bin?redirect", "auth=Bearer_s3cret"), 1);
	ck_assert_int_eq(log_count("GET /r1.bin ", lh), 1);
	ck_assert_int_eq(log_count("GET /r1.bin ", "auth=- "), 1);
	/* Same origin: kept. */
	ck_assert_int_eq(log_count("GET /r2.bin ", "auth=Bearer_s3cret"), 1);
	batch_release(&b);

	/* The same rule for small GETs. */
	_cleanup_free_ char *u = url("r1.bin");
	mkfile("www/r1.bin", 5000, 0, NULL);
	_cleanup_free_ char *ru = xasprintf("%s%s", u, other);
	char *body = NULL, *hdrs = NULL;
	size_t len = 0;
	long status = 0;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_http_get(&ctx, &o, ru, headers, 1 << 20, &body, &len, &status, &hdrs),
	                 0);
	ck_assert_int_eq(status, 200);
	ck_assert_int_eq(len, 5000);
	ck_assert_int_eq(log_count("GET /r1.bin ", "auth=- "), 2);
	free(body);
	free(hdrs);
}
END_TEST

START_TEST(test_http_get)
{
	srv_start();
	struct ib_fetch_opts o;
	test_opts(&o);
	tu_write("www/token.json", "{\"token\":\"abc\"}\n");
	_cleanup_free_ char *u = url("token.json?fail=1");
	char *body = NULL, *hdrs = NULL;
	size_t len = 0;
	long status = 0;
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	/* A 500 first: retried. */
	ck_assert_int_eq(ib_http_get(&ctx, &o, u, NULL, 1024, &body, &len, &status, &hdrs), 0);
	ck_assert_int_eq(status, 200);
	ck_assert_str_eq(body, "{\"token\":\"abc\"}\n");
	ck_assert_int_eq(len, 16);
	ck_assert_msg(strstr(hdrs, "HTTP/1.1 200") && strstr(hdrs, "Content-Length: 16\n"), "%s",
	              hdrs);
	free(body);
	free(hdrs);
	ck_assert_int_eq(log_count("GET /token.json", NULL), 2);

	/* Statuses are the caller's business (a 401 starts the token dance). */
	_cleanup_free_ char *u401 = url("token.json?fail=5&status=401");
	ck_assert_int_eq(ib_http_get(&ctx, &o, u401, NULL, 1024, &body, NULL, &status, NULL), 0);
	ck_assert_int_eq(status, 401);
	free(body);

	/* Bounded: a response larger than asked for is an error, not a big allocation. */
	_cleanup_free_ char *u2 = url("token.json");
	ck_assert_int_eq(ib_http_get(&ctx, &o, u2, NULL, 10, &body, NULL, &status, NULL),
	                 -IB_E_NETWORK);
	ck_assert_msg(strstr(ctx.err, "larger than 10 bytes"), "%s", ctx.err);
}
END_TEST

START_TEST(test_fetch_concurrent_processes)
{
	srv_start();
	struct ib_fetch_opts o;
	test_opts(&o);
	struct batch b = {.n = 0};
	add(&b, "shared.bin", 2000000, "?delay_ms=300");
	/* The same entry twice in one batch, and the batch in two processes at once. */
	b.it[1] = b.it[0];
	b.urls[1] = xstrdup(b.urls[0]);
	b.n = 2;
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		ck_assert_int_ge(kids[k], 0);
		if (kids[k] == 0) {
			struct ib_ctx c;
			ib_ctx_init(&c);
			int r = run(&c, &o, &b);
			if (r < 0)
				fprintf(stderr, "child %d: %s\n", k, c.err);
			_exit(r == 0 && b.it[0].rc == 0 && b.it[1].rc == 0 ? 0 : 1);
		}
	}
	for (int k = 0; k < 2; k++) {
		int st = 0;
		ck_assert_int_eq(waitpid(kids[k], &st, 0), kids[k]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed", k);
	}
	/* One download: the others waited on the entry lock and found it in the cache. */
	ck_assert_int_eq(log_count("GET /shared.bin", NULL), 1);
	ck_assert_int_eq(tmp_count(".part"), 0);
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	b.n = 1;
	ck_assert_msg(run(&ctx, &o, &b) == 0, "%s", ctx.err);
	assert_all_fetched(&b);
	free(b.urls[1]);
	batch_release(&b);
}
END_TEST

struct prog {
	int calls;
	uint64_t done, total, max_done;
};

static void on_progress(struct ib_ctx *ctx, const char *stage, uint64_t done, uint64_t total,
                        void *data)
{
	struct prog *p = data;
	ck_assert_str_eq(stage, "fetch");
	p->calls++;
	p->done = done;
	p->total = total;
	if (done > p->max_done)
		p->max_done = done;
}

START_TEST(test_fetch_progress)
{
	srv_start();
	struct ib_fetch_opts o;
	test_opts(&o);
	o.progress = 1;
	struct batch b = {.n = 0};
	add(&b, "p1.bin", 300000, "?delay_ms=150");
	add(&b, "p2.bin", 200000, "?delay_ms=150");
	struct prog p = {0, 0, 0, 0};
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ctx.progress = on_progress;
	ctx.cb_data = &p;
	ck_assert_msg(run(&ctx, &o, &b) == 0, "%s", ctx.err);
	ck_assert_int_ge(p.calls, 2);
	ck_assert_int_eq(p.done, 500000);
	ck_assert_int_eq(p.total, 500000);
	ck_assert_int_le(p.max_done, 500000);
	batch_release(&b);
}
END_TEST

/* Every case gets its own directory and, if it starts one, its own server. */
#define CASE(s, name, fn)                                                                          \
	do {                                                                                       \
		TCase *tc_ = tcase_create(name);                                                   \
		tcase_add_checked_fixture(tc_, tu_setup, teardown);                                \
		tcase_set_timeout(tc_, 30);                                                        \
		tcase_add_test(tc_, fn);                                                           \
		suite_add_tcase(s, tc_);                                                           \
	} while (0)

static Suite *fetch_suite(void)
{
	Suite *s = suite_create("fetch");
	CASE(s, "cas-commit-lookup", test_cas_commit_lookup);
	CASE(s, "cas-corruption", test_cas_corruption);
	CASE(s, "cas-refs", test_cas_refs);
	CASE(s, "cas-lock", test_cas_lock);
	CASE(s, "mirror-url", test_mirror_url);
	CASE(s, "backoff", test_backoff);
	CASE(s, "checksum-parse", test_checksum_parse);
	CASE(s, "parallel", test_fetch_parallel);
	CASE(s, "resume", test_fetch_resume);
	CASE(s, "retry", test_fetch_retry);
	CASE(s, "digest-mismatch", test_fetch_digest_mismatch);
	CASE(s, "truncated", test_fetch_truncated);
	CASE(s, "stall", test_fetch_stall);
	CASE(s, "checksum-url", test_fetch_checksum_url);
	CASE(s, "offline", test_fetch_offline);
	CASE(s, "mirror", test_fetch_mirror);
	CASE(s, "corrupted-entry", test_fetch_corrupted_entry);
	CASE(s, "redirect-auth", test_fetch_redirect_auth);
	CASE(s, "http-get", test_http_get);
	CASE(s, "concurrent-processes", test_fetch_concurrent_processes);
	CASE(s, "progress", test_fetch_progress);
	return s;
}

TU_MAIN(fetch_suite)
