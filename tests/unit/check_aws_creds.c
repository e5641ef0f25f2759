/* check_aws_creds.c: credentials, region and endpoints as the aws CLI resolves them, and
 * IMDSv2 against tests/servers/fakeimds.py. */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "aws/config.h"
#include "testutil.h"

static pid_t imds_pid = -1;

/* A clean AWS environment: HOME is the test directory, nothing else set, no metadata. */
static void setup(void)
{
	tu_setup();
	static const char *const vars[] = {
	        "AWS_ACCESS_KEY_ID",
	        "AWS_SECRET_ACCESS_KEY",
	        "AWS_SESSION_TOKEN",
	        "AWS_REGION",
	        "AWS_DEFAULT_REGION",
	        "AWS_PROFILE",
	        "AWS_DEFAULT_PROFILE",
	        "AWS_SHARED_CREDENTIALS_FILE",
	        "AWS_CONFIG_FILE",
	        "AWS_ENDPOINT_URL",
	        "AWS_ENDPOINT_URL_EC2",
	        "AWS_ENDPOINT_URL_EBS",
	        "AWS_EC2_METADATA_DISABLED",
	        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	        "http_proxy",
	        "HTTP_PROXY",
	        "all_proxy",
	        "ALL_PROXY",
	};
	for (size_t i = 0; i < ARRAY_SIZE(vars); i++)
		unsetenv(vars[i]);
	setenv("HOME", tu_dir, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static void teardown(void)
{
	if (imds_pid > 0) {
		kill(imds_pid, SIGTERM);
		waitpid(imds_pid, NULL, 0);
		imds_pid = -1;
	}
	tu_teardown();
}

static int load(struct aws_config_opts *o, struct aws_config *c, char *err, size_t n)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	int r = aws_config_load(&ctx, o, c);
	snprintf(err, n, "%s", ctx.err);
	return r;
}

START_TEST(test_environment)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIAENVEXAMPLE1234", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envSecretDoNotPrint", 1);
	setenv("AWS_SESSION_TOKEN", "envTokenDoNotPrint", 1);
	setenv("AWS_DEFAULT_REGION", "eu-west-3", 1);
	struct aws_config_opts o = {0};
	struct aws_config c;
	char err[2048];
	ck_assert_int_eq(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.access_key, "AKIAENVEXAMPLE1234");
	ck_assert_str_eq(c.secret_key, "envSecretDoNotPrint");
	ck_assert_str_eq(c.token, "envTokenDoNotPrint");
	ck_assert_str_eq(c.region, "eu-west-3");
	ck_assert_str_eq(c.creds_source, "environment");
	_cleanup_free_ char *d = aws_config_describe(&c);
	ck_assert_ptr_null(strstr(d, "DoNotPrint"));
	ck_assert_ptr_null(strstr(d, "AKIAENVEXAMPLE"));
	ck_assert_ptr_nonnull(strstr(d, "1234"));
	/* AWS_REGION wins over AWS_DEFAULT_REGION, --region over both. */
	aws_config_release(&c);
	setenv("AWS_REGION", "us-west-2", 1);
	ck_assert_int_eq(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.region, "us-west-2");
	aws_config_release(&c);
	o.region = "ap-south-1";
	ck_assert_int_eq(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.region, "ap-south-1");
	/* Redaction hides the secret and the token wherever they appear. */
	char line[] = "Authorization: x envSecretDoNotPrint y; token=envTokenDoNotPrint";
	aws_redact(&c, line);
	ck_assert_ptr_null(strstr(line, "DoNotPrint"));
	ck_assert_ptr_nonnull(strstr(line, "Authorization: x *"));
	aws_config_release(&c);
}
END_TEST

static const char *const CREDS_FILE = "# shared credentials\n"
                                      "[default]\n"
                                      "aws_access_key_id = AKIADEFAULT00000001\n"
                                      "aws_secret_access_key = defaultSecret\n"
                                      "\n"
                                      "[dev]\n"
                                      "; a comment\n"
                                      "aws_access_key_id=AKIADEV000000000002\n"
                                      "aws_secret_access_key =   devSecret  \n"
                                      "aws_session_token = devToken\n";

static const char *const CONFIG_FILE = "[default]\n"
                                       "region = eu-central-1\n"
                                       "[profile dev]\n"
                                       "region = us-east-2\n"
                                       "s3 =\n"
                                       "  max_concurrent_requests = 20\n"
                                       "[profile cfgonly]\n"
                                       "aws_access_key_id = AKIACFGONLY00000003\n"
                                       "aws_secret_access_key = cfgSecret\n"
                                       "region = sa-east-1\n"
                                       "endpoint_url = http://127.0.0.1:5999/\n"
                                       "[dev]\n"
                                       "region = wrong-section-ignored\n";

START_TEST(test_profiles)
{
	tu_write(".aws/credentials", CREDS_FILE);
	tu_write(".aws/config", CONFIG_FILE);
	struct aws_config_opts o = {0};
	struct aws_config c;
	char err[2048];
	/* The default profile: credentials file, region from [default] in config. */
	ck_assert_int_eq(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.access_key, "AKIADEFAULT00000001");
	ck_assert_str_eq(c.region, "eu-central-1");
	ck_assert_ptr_null(c.token);
	aws_config_release(&c);
	/* AWS_PROFILE: [dev] in credentials, [profile dev] in config (not [dev]). */
	setenv("AWS_PROFILE", "dev", 1);
	ck_assert_int_eq(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.access_key, "AKIADEV000000000002");
	ck_assert_str_eq(c.secret_key, "devSecret");
	ck_assert_str_eq(c.token, "devToken");
	ck_assert_str_eq(c.region, "us-east-2");
	ck_assert_ptr_nonnull(strstr(c.creds_source, "profile 'dev'"));
	aws_config_release(&c);
	/* Environment keys win over AWS_PROFILE's... */
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envSecret", 1);
	ck_assert_int_eq(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.access_key, "AKIAENV");
	ck_assert_str_eq(c.region, "us-east-2");
	aws_config_release(&c);
	/* ...but not over --profile; keys in the config file count; endpoint_url too. */
	o.profile = "cfgonly";
	ck_assert_int_eq(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.access_key, "AKIACFGONLY00000003");
	ck_assert_str_eq(c.region, "sa-east-1");
	_cleanup_free_ char *ep = aws_endpoint(&c, "ebs");
	ck_assert_str_eq(ep, "http://127.0.0.1:5999");
	aws_config_release(&c);
	/* A profile that assumes a role: not supported, and said so. */
	o.profile = "assumer";
	tu_write(".aws/config", "[profile assumer]\nrole_arn = arn:aws:iam::1:role/x\n"
	                        "source_profile = default\nregion = eu-west-1\n");
	ck_assert_int_lt(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "gets its credentials through role_arn"));
	/* A profile that exists nowhere is an error naming it and the files. */
	o.profile = "nosuch";
	ck_assert_int_lt(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "AWS profile 'nosuch' not found"));
}
END_TEST

START_TEST(test_files_from_env)
{
	tu_write("elsewhere/creds", "[p]\naws_access_key_id=AKIAELSE\naws_secret_access_key=s\n");
	tu_write("elsewhere/conf", "[profile p]\nregion=ca-central-1\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "elsewhere/creds", 1);
	setenv("AWS_CONFIG_FILE", "elsewhere/conf", 1);
	struct aws_config_opts o = {.profile = "p"};
	struct aws_config c;
	char err[2048];
	ck_assert_int_eq(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.access_key, "AKIAELSE");
	ck_assert_str_eq(c.region, "ca-central-1");
	aws_config_release(&c);
	/* A malformed file is an error naming file and line. */
	tu_write("elsewhere/conf", "[profile p]\nregion ca-central-1\n");
	ck_assert_int_lt(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "elsewhere/conf:2: expected 'key = value'"));
}
END_TEST

START_TEST(test_missing)
{
	struct aws_config_opts o = {0};
	struct aws_config c;
	char err[2048];
	ck_assert_int_lt(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "no AWS credentials"));
	setenv("AWS_ACCESS_KEY_ID", "AKIA", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
	ck_assert_int_lt(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "no AWS region"));
	o.region = "eu-west-1;rm";
	ck_assert_int_lt(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "bad AWS region"));
	/* A dry run may go on without credentials. */
	unsetenv("AWS_ACCESS_KEY_ID");
	o.region = "eu-west-1";
	o.allow_no_creds = 1;
	ck_assert_int_eq(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_ptr_null(c.access_key);
	aws_config_release(&c);
}
END_TEST

START_TEST(test_endpoints)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIA", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
	setenv("AWS_REGION", "eu-west-1", 1);
	struct aws_config_opts o = {0};
	struct aws_config c;
	char err[2048];
	ck_assert_int_eq(load(&o, &c, err, sizeof(err)), 0);
	_cleanup_free_ char *a = aws_endpoint(&c, "ec2");
	ck_assert_str_eq(a, "https://ec2.eu-west-1.amazonaws.com");
	aws_config_release(&c);
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1234/", 1);
	setenv("AWS_ENDPOINT_URL_EBS", "http://127.0.0.1:4321", 1);
	ck_assert_int_eq(load(&o, &c, err, sizeof(err)), 0);
	_cleanup_free_ char *b = aws_endpoint(&c, "ec2");
	_cleanup_free_ char *e = aws_endpoint(&c, "ebs");
	ck_assert_str_eq(b, "http://127.0.0.1:1234");
	ck_assert_str_eq(e, "http://127.0.0.1:4321");
	aws_config_release(&c);
	/* --endpoint-url is for every service. */
	o.endpoint_url = "http://localhost:9";
	ck_assert_int_eq(load(&o, &c, err, sizeof(err)), 0);
	_cleanup_free_ char *f = aws_endpoint(&c, "ebs");
	ck_assert_str_eq(f, "http://localhost:9");
	aws_config_release(&c);
	o.endpoint_url = "ftp://x";
	ck_assert_int_lt(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "bad endpoint URL"));
}
END_TEST

/* Start fakeimds.py (extra: "--stall" or NULL); AWS_EC2_METADATA_SERVICE_ENDPOINT names it. */
static void imds_start(const char *extra)
{
	const char *top = getenv("IMGBUILD_SRCDIR");
	_cleanup_free_ char *script =
	        xasprintf("%s/tests/servers/fakeimds.py", top && *top ? top : tu_oldcwd);
	ck_assert_msg(ib_exists(script), "cannot find %s (set IMGBUILD_SRCDIR)", script);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execlp("python3", "python3", script, "--port-file", "imds.port", "--log",
		       "imds.log", extra ? extra : "--region=eu-north-1", (char *)NULL);
		_exit(127);
	}
	imds_pid = pid;
	for (int i = 0; i < 500 && !ib_exists("imds.port"); i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
		ck_assert_msg(waitpid(pid, NULL, WNOHANG) == 0, "fakeimds.py exited");
	}
	int port = 0;
	FILE *f = fopen("imds.port", "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%d", &port), 1);
	fclose(f);
	_cleanup_free_ char *ep = xasprintf("http://127.0.0.1:%d", port);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep, 1);
	unsetenv("AWS_EC2_METADATA_DISABLED");
}

START_TEST(test_imds)
{
	imds_start(NULL);
	struct aws_config_opts o = {0};
	struct aws_config c;
	char err[2048];
	ck_assert_msg(load(&o, &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(c.access_key, "ASIAIMDSEXAMPLE0001");
	ck_assert_str_eq(c.secret_key, "imdsSecretKeyExampleDoNotPrint");
	ck_assert_str_eq(c.token, "imdsSessionTokenExampleDoNotPrint");
	ck_assert_str_eq(c.region, "eu-north-1"); /* no region configured: the instance's */
	ck_assert_int_eq((long long)c.expiration, 1893456000LL);
	ck_assert_ptr_nonnull(strstr(c.creds_source, "instance metadata"));
	_cleanup_free_ char *d = aws_config_describe(&c);
	ck_assert_ptr_null(strstr(d, "DoNotPrint"));
	aws_config_release(&c);
	/* IMDSv2: a token PUT first, and every GET carries it. */
	_cleanup_free_ char *log = tu_sh("cat imds.log");
	ck_assert_msg(startswith(log, "PUT /latest/api/token token=-\n"), "%s", log);
	ck_assert_ptr_null(strstr(log, "GET /latest/meta-data/iam/security-credentials/ token=-"));
	ck_assert_ptr_nonnull(strstr(log, "GET /latest/meta-data/iam/security-credentials/ "
	                                  "token=imds-token-123"));
	/* Disabled: not asked at all. */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_REGION", "eu-west-1", 1);
	ck_assert_int_lt(load(&o, &c, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "no AWS credentials"));
}
END_TEST

START_TEST(test_imds_stall)
{
	imds_start("--stall");
	setenv("AWS_REGION", "eu-west-1", 1);
	struct aws_config_opts o = {.imds_timeout_ms = 300};
	struct aws_config c;
	char err[2048];
	double t0 = ib_now();
	ck_assert_int_lt(load(&o, &c, err, sizeof(err)), 0);
	double took = ib_now() - t0;
	ck_assert_ptr_nonnull(strstr(err, "no AWS credentials"));
	ck_assert_msg(took < 3.0, "a silent metadata service held us %.1fs", took);
}
END_TEST

static Suite *creds_suite(void)
{
	Suite *s = suite_create("aws_creds");
	const struct {
		const char *name;
		const TTest *fn;
	} t[] = {{"environment", test_environment}, {"profiles", test_profiles},
	         {"files", test_files_from_env},    {"missing", test_missing},
	         {"endpoints", test_endpoints},     {"imds", test_imds},
	         {"imds_stall", test_imds_stall}};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		TCase *tc = tcase_create(t[i].name);
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, t[i].fn);
		suite_add_tcase(s, tc);
	}
	return s;
}

TU_MAIN(creds_suite)
