/* check_seed.c: the NoCloud seed ISO read back with xorriso and blkid; the template renderer. */
#include <time.h>

#include "seed/seed.h"
#include "testutil.h"
#include "util/proc.h"

#define SEED_TIME ((time_t)1704067200) /* 2024-01-01T00:00:00Z */

static const char user_data[] = "#cloud-config\nhostname: web-1\nssh_pwauth: false\n";
static const char meta_data[] = "instance-id: web-1\nlocal-hostname: web-1\n";
static const char net_config[] = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n";

static void seed_ok(const char *out, const char *net, time_t mtime)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	int r = ib_seed_write(&ctx, out, user_data, meta_data, net, mtime);
	ck_assert_msg(r == 0, "seed failed (%d): %s", r, ctx.err);
}

static void need(const char *prog)
{
	ck_assert_msg(ib_have_program(prog), "'%s' is needed by this test (make deps installs it)",
	              prog);
}

static char *slurp(const char *path)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	char *data = NULL;
	ck_assert_int_eq(ib_read_file(&ctx, path, 1 << 20, &data, NULL), 0);
	return data;
}

/* ---- the seed image ---- */

START_TEST(test_seed_roundtrip)
{
	need("xorriso");
	need("osirrox");
	need("blkid");
	/* user-data may hold secrets: 0600 whatever the umask, also over a stale temporary
	 * file (a crashed run's, same pid) that was world-readable. */
	mode_t old = umask(0);
	_cleanup_free_ char *stale = xasprintf("seed.iso.tmp.%d", (int)getpid());
	tu_write(stale, "left over");
	ck_assert_int_eq(chmod(stale, 0666), 0);
	seed_ok("seed.iso", net_config, SEED_TIME);
	umask(old);
	struct stat st;
	ck_assert_int_eq(stat("seed.iso", &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	_cleanup_free_ char *tmps = tu_sh("ls -a | grep -c '\\.tmp\\.' || true");
	ck_assert_str_eq(tmps, "0\n");

	_cleanup_free_ char *label = tu_sh("blkid -o value -s LABEL seed.iso");
	ck_assert_msg(streq(label, "cidata\n") || streq(label, "CIDATA\n"), "label: %s", label);
	_cleanup_free_ char *type = tu_sh("blkid -o value -s TYPE seed.iso");
	ck_assert_str_eq(type, "iso9660\n");

	/* Rock Ridge names, modes, owners and times. */
	_cleanup_free_ char *ls =
	        tu_sh("TZ=UTC xorriso -indev seed.iso -lsl / 2>/dev/null | awk '{$1=$1; print}'");
	ck_assert_str_eq(ls, "total 3\n"
	                     "-rw-r--r-- 1 0 0 41 Jan 1 2024 'meta-data'\n"
	                     "-rw-r--r-- 1 0 0 46 Jan 1 2024 'network-config'\n"
	                     "-rw-r--r-- 1 0 0 48 Jan 1 2024 'user-data'\n");
	_cleanup_free_ char *vol = tu_sh("xorriso -indev seed.iso -pvd_info 2>/dev/null | grep -E "
	                                 "'^(Volume Id|Creation Time|Modif. Time)'");
	ck_assert_str_eq(vol, "Volume Id    : CIDATA\n"
	                      "Creation Time: 2024010100000000\n"
	                      "Modif. Time  : 2024010100000000\n");

	/* Contents byte for byte, and the Joliet tree as well. */
	_cleanup_free_ char *x =
	        tu_sh("osirrox -indev seed.iso -extract / out 2>/dev/null && ls out");
	ck_assert_str_eq(x, "meta-data\nnetwork-config\nuser-data\n");
	_cleanup_free_ char *u = slurp("out/user-data");
	_cleanup_free_ char *m = slurp("out/meta-data");
	_cleanup_free_ char *n = slurp("out/network-config");
	ck_assert_str_eq(u, user_data);
	ck_assert_str_eq(m, meta_data);
	ck_assert_str_eq(n, net_config);
	_cleanup_free_ char *j = tu_sh("xorriso -rockridge off -indev seed.iso -ls / 2>/dev/null");
	ck_assert_str_eq(j, "'meta-data'\n'network-config'\n'user-data'\n");
}
END_TEST

START_TEST(test_seed_without_network_config)
{
	need("xorriso");
	seed_ok("seed.iso", NULL, SEED_TIME);
	_cleanup_free_ char *ls = tu_sh("xorriso -indev seed.iso -ls / 2>/dev/null");
	ck_assert_str_eq(ls, "'meta-data'\n'user-data'\n");
}
END_TEST

/* Same inputs, same bytes: whatever the clock and the time zone say. */
START_TEST(test_seed_deterministic)
{
	seed_ok("a.iso", net_config, SEED_TIME);
	struct timespec ts = {1, 100000000};
	nanosleep(&ts, NULL);
	setenv("TZ", "Asia/Kolkata", 1);
	tzset();
	seed_ok("b.iso", net_config, SEED_TIME);
	setenv("TZ", "America/New_York", 1);
	tzset();
	seed_ok("c.iso", net_config, SEED_TIME);
	unsetenv("TZ");
	tzset();
	_cleanup_free_ char *same = tu_sh("cmp a.iso b.iso && cmp a.iso c.iso && echo same");
	ck_assert_str_eq(same, "same\n");
	/* No trace of the day it was made: the INFO block too carries the given time. */
	_cleanup_free_ char *info =
	        tu_sh("dd if=a.iso bs=2048 skip=19 count=1 2>/dev/null | head -c 29");
	ck_assert_str_eq(info, "INFO Mon Jan  1 00:00:00 2024");
	/* Another time gives another image. */
	seed_ok("d.iso", net_config, SEED_TIME + 86400);
	_cleanup_free_ char *diff = tu_sh("cmp -s a.iso d.iso || echo differ");
	ck_assert_str_eq(diff, "differ\n");
}
END_TEST

START_TEST(test_seed_atomic)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	int r = ib_seed_write(&ctx, "no-such-dir/seed.iso", user_data, meta_data, NULL, SEED_TIME);
	ck_assert_int_eq(r, -IB_E_IO);
	ck_assert_msg(strstr(ctx.err, "cannot create 'no-such-dir/seed.iso.tmp.") == ctx.err, "%s",
	              ctx.err);

	/* A successful write replaces an existing file and leaves no temporary. */
	tu_write("seed.iso", "old");
	seed_ok("seed.iso", NULL, SEED_TIME);
	ck_assert_int_gt(ib_file_size("seed.iso"), 32768);
	_cleanup_free_ char *tmps = tu_sh("ls -a | grep -c '\\.tmp\\.' || true");
	ck_assert_str_eq(tmps, "0\n");
}
END_TEST

/* ---- templates ---- */

static const struct ib_tvar vars[] = {
        {"hostname", "web-1"},
        {"role", "web"},
        {"ssh_key", "ssh-ed25519 AAAA {{ role }} user@host"},
        {"empty", ""},
};

static char *render_ok(const char *text)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	char *out = NULL;
	int r = ib_template_render(&ctx, "user-data", text, vars, ARRAY_SIZE(vars), &out);
	ck_assert_msg(r == 0, "render failed: %s", ctx.err);
	return out;
}

static void render_fails(const char *text, const char *msg)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	char *out = NULL;
	int r = ib_template_render(&ctx, "images/web.user-data", text, vars, ARRAY_SIZE(vars),
	                           &out);
	ck_assert_int_eq(r, -IB_E_SPEC);
	ck_assert_ptr_null(out);
	ck_assert_str_eq(ctx.err, msg);
}

START_TEST(test_template_substitution)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	        {"", ""},
	        {"no placeholders here\n", "no placeholders here\n"},
	        {"hostname: {{ hostname }}\n", "hostname: web-1\n"},
	        {"{{hostname}}", "web-1"},
	        {"{{   role\t}}-{{role }}", "web-web"},
	        {"{{hostname}}{{role}}", "web-1web"},
	        {"a{{ empty }}b", "ab"},
	        /* A value goes in verbatim, braces and all, without a second pass. */
	        {"key: {{ ssh_key }}", "key: ssh-ed25519 AAAA {{ role }} user@host"},
	        {"single { and } and }} stay", "single { and } and }} stay"},
	        {"line1\nline2 {{ role }}\n\n", "line1\nline2 web\n\n"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *got = render_ok(cases[i].in);
		ck_assert_msg(streq(got, cases[i].out), "'%s' gave '%s'", cases[i].in, got);
	}
}
END_TEST

START_TEST(test_template_errors)
{
	render_fails("{{ nope }}", "images/web.user-data:1:1: unknown template variable 'nope'");
	render_fails("#cloud-config\nhostname: {{ hostname }}\nusers:\n  - name: {{ user }}\n",
	             "images/web.user-data:4:11: unknown template variable 'user'");
	render_fails("a: 1\nb: {{ role\nc: }}\n", "images/web.user-data:2:4: unclosed '{{'");
	render_fails("x {{ hostname }} {{", "images/web.user-data:1:18: unclosed '{{'");
	render_fails("{{}}", "images/web.user-data:1:1: unknown template variable ''");
	/* Columns count characters, not bytes. */
	render_fails("# é ü\n  café: {{ bad }}",
	             "images/web.user-data:2:9: unknown template variable 'bad'");
}
END_TEST

static Suite *seed_suite(void)
{
	Suite *s = suite_create("seed");
	TU_CASE(s, "roundtrip", test_seed_roundtrip);
	TU_CASE(s, "no-network-config", test_seed_without_network_config);
	TU_CASE(s, "deterministic", test_seed_deterministic);
	TU_CASE(s, "atomic", test_seed_atomic);
	TU_CASE(s, "template", test_template_substitution);
	TU_CASE(s, "template-errors", test_template_errors);
	return s;
}

TU_MAIN(seed_suite)
