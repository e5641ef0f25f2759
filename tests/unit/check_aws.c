/* check_aws.c: block checksums and their LINEAR aggregate, request building (dry runs), how
 * answers are judged and retried, redaction, and the Terraform files. No network. */
#include <fcntl.h>
#include <openssl/evp.h>

#include "aws/ebs.h"
#include "aws/ec2.h"
#include "aws/publish.h"
#include "testutil.h"
#include "util/jsonr.h"

/* A dry-run client whose requests land in `captured`. */
static struct strbuf captured = STRBUF_INIT;
static unsigned n_captured;

static void capture(void *data, const char *text)
{
	sb_adds(&captured, text);
	sb_adds(&captured, "\n=====\n");
	n_captured++;
}

static struct aws_config test_cfg(void)
{
	struct aws_config c = {0};
	c.access_key = xstrdup("AKIAUNITTEST00001234");
	c.secret_key = xstrdup("unitSecretDoNotPrint");
	c.token = xstrdup("unitTokenDoNotPrint");
	c.region = xstrdup("eu-west-1");
	c.endpoint_url = xstrdup("http://127.0.0.1:9");
	c.creds_source = xstrdup("test");
	return c;
}

static void dry_client(struct aws_client *cl, const struct aws_config *cfg)
{
	aws_client_init(cl, cfg);
	cl->dry_run = 1;
	cl->on_request = capture;
	sb_reset(&captured);
	n_captured = 0;
}

START_TEST(test_block_digests)
{
	unsigned char *zero = xcalloc(1, AWS_EBS_BLOCK), *ones = xmalloc(AWS_EBS_BLOCK);
	memset(ones, 0xff, AWS_EBS_BLOCK);
	unsigned char d1[32], d2[32];
	char b1[45], b2[45], agg[45];
	/* Expected values from Python's hashlib, independently. */
	aws_block_digest(zero, AWS_EBS_BLOCK, d1, b1);
	aws_block_digest(ones, AWS_EBS_BLOCK, d2, b2);
	ck_assert_str_eq(b1, "B4VNL+8pega6gWheZgwzLeNtXRjVRpJ9MNqtbX/aFUE=");
	ck_assert_str_eq(b2, "BD4jinZffPvGJZalDlPI/7axiKmTV7Dr7eJRcl1nWJ8=");
	/* LINEAR: sha256 over the raw 32-byte digests in index order (not their base64). */
	struct aws_linear l;
	aws_linear_init(&l);
	aws_linear_add(&l, d1);
	aws_linear_add(&l, d2);
	aws_linear_final(&l, agg);
	ck_assert_str_eq(agg, "QuWhAEV7Qid0i9uuVwexaWSfKmFKH0P/+Oi8JqIj0tc=");
	/* Order matters. */
	aws_linear_init(&l);
	aws_linear_add(&l, d2);
	aws_linear_add(&l, d1);
	aws_linear_final(&l, agg);
	ck_assert_str_ne(agg, "QuWhAEV7Qid0i9uuVwexaWSfKmFKH0P/+Oi8JqIj0tc=");
	free(zero);
	free(ones);
}
END_TEST

/* A sparse file: block 0 data, block 1 written zeros, blocks 2-5 a hole, block 6 data,
 * then a partial block 7 of data. Returns its size. */
static off_t make_image(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	unsigned char *b = xmalloc(AWS_EBS_BLOCK);
	for (size_t i = 0; i < AWS_EBS_BLOCK; i++)
		b[i] = (unsigned char)(i % 251);
	ck_assert_int_eq(pwrite(fd, b, AWS_EBS_BLOCK, 0), AWS_EBS_BLOCK);
	memset(b, 0, AWS_EBS_BLOCK);
	ck_assert_int_eq(pwrite(fd, b, AWS_EBS_BLOCK, AWS_EBS_BLOCK), AWS_EBS_BLOCK);
	for (size_t i = 0; i < AWS_EBS_BLOCK; i++)
		b[i] = (unsigned char)(i % 13 + 1);
	ck_assert_int_eq(pwrite(fd, b, AWS_EBS_BLOCK, 6 * (off_t)AWS_EBS_BLOCK), AWS_EBS_BLOCK);
	ck_assert_int_eq(pwrite(fd, b, 1000, 7 * (off_t)AWS_EBS_BLOCK), 1000);
	close(fd);
	free(b);
	return 7 * (off_t)AWS_EBS_BLOCK + 1000;
}

/* The aggregate of the listed blocks of path, computed here with EVP directly. */
static void expected_linear(const char *path, const int *blocks, size_t n, char out[45])
{
	int fd = open(path, O_RDONLY);
	unsigned char *b = xmalloc(AWS_EBS_BLOCK);
	EVP_MD_CTX *agg = EVP_MD_CTX_new();
	EVP_DigestInit_ex(agg, EVP_sha256(), NULL);
	for (size_t i = 0; i < n; i++) {
		memset(b, 0, AWS_EBS_BLOCK);
		ck_assert_int_ge(pread(fd, b, AWS_EBS_BLOCK, (off_t)blocks[i] * AWS_EBS_BLOCK), 0);
		unsigned char md[32];
		unsigned int l;
		EVP_Digest(b, AWS_EBS_BLOCK, md, &l, EVP_sha256(), NULL);
		EVP_DigestUpdate(agg, md, 32);
	}
	unsigned char md[32];
	unsigned int l;
	EVP_DigestFinal_ex(agg, md, &l);
	EVP_MD_CTX_free(agg);
	EVP_EncodeBlock((unsigned char *)out, md, 32);
	close(fd);
	free(b);
}

START_TEST(test_upload_dry_run)
{
	make_image("img.raw");
	struct aws_config cfg = test_cfg();
	struct aws_client cl;
	dry_client(&cl, &cfg);
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	const char *tags[] = {"imgbuild:role", "worker"};
	struct aws_upload_opts o = {.path = "img.raw", .tags = tags, .n_tags = 1, .concurrency = 3};
	struct aws_upload_result res;
	ck_assert_msg(aws_ebs_upload(&ctx, &cl, &o, &res) == 0, "%s", ctx.err);
	/* Every block by default, zeros and holes included; the last one padded. */
	ck_assert_uint_eq(res.blocks_total, 8);
	ck_assert_uint_eq(res.blocks_uploaded, 8);
	ck_assert_uint_eq(res.blocks_skipped, 0);
	ck_assert_uint_eq(res.volume_gib, 1);
	const int all[] = {0, 1, 2, 3, 4, 5, 6, 7};
	char want[45];
	expected_linear("img.raw", all, 8, want);
	ck_assert_str_eq(res.checksum, want);
	/* StartSnapshot, 8 blocks, CompleteSnapshot: all shown, secrets redacted. */
	ck_assert_uint_eq(n_captured, 10);
	const char *t = sb_str(&captured);
	ck_assert_ptr_null(strstr(t, "DoNotPrint"));
	ck_assert_ptr_nonnull(strstr(t, "\"VolumeSize\":1"));
	ck_assert_ptr_nonnull(
	        strstr(t, "\"Tags\":[{\"Key\":\"imgbuild:role\",\"Value\":\"worker\"}]"));
	ck_assert_ptr_nonnull(
	        strstr(t, "PUT http://127.0.0.1:9/snapshots/snap-dry-run/blocks/7\n"));
	ck_assert_ptr_nonnull(strstr(t, "x-amz-Data-Length: 524288\n"));
	ck_assert_ptr_nonnull(strstr(t, "X-Amz-Content-SHA256: UNSIGNED-PAYLOAD\n"));
	ck_assert_ptr_nonnull(strstr(t, "x-amz-ChangedBlocksCount: 8\n"));
	ck_assert_ptr_nonnull(strstr(t, "x-amz-Checksum-Aggregation-Method: LINEAR\n"));
	_cleanup_free_ char *agg = xasprintf("x-amz-Checksum: %s\n", want);
	ck_assert_ptr_nonnull(strstr(t, agg));
	/* The written-zero block's checksum is that of zeros. */
	ck_assert_ptr_nonnull(
	        strstr(t, "x-amz-Checksum: B4VNL+8pega6gWheZgwzLeNtXRjVRpJ9MNqtbX/aFUE="));
	aws_upload_result_release(&res);

	/* --skip-holes: the hole (blocks 2-5) is left out, the written zeros are not. */
	int fd = open("img.raw", O_RDONLY);
	int holes = lseek(fd, 2 * (off_t)AWS_EBS_BLOCK, SEEK_DATA) == 6 * (off_t)AWS_EBS_BLOCK;
	close(fd);
	dry_client(&cl, &cfg);
	o.skip_holes = 1;
	ck_assert_int_eq(aws_ebs_upload(&ctx, &cl, &o, &res), 0);
	if (holes) {
		ck_assert_uint_eq(res.blocks_skipped, 4);
		ck_assert_uint_eq(res.blocks_uploaded, 4);
		const int some[] = {0, 1, 6, 7};
		expected_linear("img.raw", some, 4, want);
		ck_assert_str_eq(res.checksum, want);
		ck_assert_ptr_nonnull(strstr(sb_str(&captured), "x-amz-ChangedBlocksCount: 4\n"));
		ck_assert_ptr_null(strstr(sb_str(&captured), "/blocks/3\n"));
	}
	aws_upload_result_release(&res);
	aws_config_release(&cfg);
}
END_TEST

START_TEST(test_register_request)
{
	struct aws_config cfg = test_cfg();
	struct aws_client cl;
	dry_client(&cl, &cfg);
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	const char *tags[] = {"imgbuild:role", "worker", "Name", "a b&c"};
	char *ami = NULL;
	ck_assert_int_eq(
	        aws_register_image(&ctx, &cl, "p-worker-0123", "desc", "snap-1", 3, tags, 2, &ami),
	        0);
	ck_assert_str_eq(ami, "ami-dry-run");
	free(ami);
	ck_assert_msg(strstr(sb_str(&captured),
	                     "\n\nAction=RegisterImage&Version=2016-11-15&Name=p-worker-0123"
	                     "&Description=desc&Architecture=x86_64&VirtualizationType=hvm"
	                     "&RootDeviceName=%2Fdev%2Fxvda&EnaSupport=true&SriovNetSupport=simple"
	                     "&BootMode=uefi-preferred&ImdsSupport=v2.0"
	                     "&BlockDeviceMapping.1.DeviceName=%2Fdev%2Fxvda"
	                     "&BlockDeviceMapping.1.Ebs.SnapshotId=snap-1"
	                     "&BlockDeviceMapping.1.Ebs.VolumeSize=3"
	                     "&BlockDeviceMapping.1.Ebs.VolumeType=gp3"
	                     "&BlockDeviceMapping.1.Ebs.DeleteOnTermination=true"
	                     "&TagSpecification.1.ResourceType=image"
	                     "&TagSpecification.1.Tag.1.Key=imgbuild%3Arole"
	                     "&TagSpecification.1.Tag.1.Value=worker"
	                     "&TagSpecification.1.Tag.2.Key=Name"
	                     "&TagSpecification.1.Tag.2.Value=a%20b%26c\n") != NULL,
	              "%s", sb_str(&captured));
	ck_assert_ptr_nonnull(strstr(sb_str(&captured), "POST http://127.0.0.1:9/\n"));
	ck_assert_ptr_nonnull(
	        strstr(sb_str(&captured),
	               "Content-Type: application/x-www-form-urlencoded; charset=utf-8"));
	ck_assert_ptr_nonnull(strstr(sb_str(&captured), "/eu-west-1/ec2/aws4_request"));
	aws_config_release(&cfg);
}
END_TEST

START_TEST(test_launch_template_request)
{
	struct aws_config cfg = test_cfg();
	struct aws_client cl;
	dry_client(&cl, &cfg);
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct aws_lt_owned lt;
	aws_lt_owned_init(&lt, "proj", "worker", "daily", "proj-worker", "ami-1", "t3.large",
	                  "#cloud-config\n", 4);
	char *id = NULL;
	long ver = 0;
	int changed = 0;
	ck_assert_int_eq(aws_launch_template(&ctx, &cl, &lt.spec, &id, &ver, &changed), 0);
	ck_assert_str_eq(id, "lt-dry-run");
	free(id);
	/* Looked up first, then created (a dry run finds nothing). */
	const char *t = sb_str(&captured);
	const char *look = strstr(t, "Action=DescribeLaunchTemplates&");
	const char *create = strstr(t, "Action=CreateLaunchTemplate&");
	ck_assert_ptr_nonnull(look);
	ck_assert_ptr_nonnull(create);
	ck_assert(look < create);
	const char *want[] = {
	        "&LaunchTemplateName=proj-worker&",
	        "&LaunchTemplateData.ImageId=ami-1&",
	        "&LaunchTemplateData.InstanceType=t3.large&",
	        "&LaunchTemplateData.UserData=I2Nsb3VkLWNvbmZpZwo%3D&",
	        "&LaunchTemplateData.MetadataOptions.HttpTokens=required&",
	        "&LaunchTemplateData.BlockDeviceMapping.1.DeviceName=%2Fdev%2Fxvda&",
	        "&LaunchTemplateData.BlockDeviceMapping.1.Ebs.Encrypted=true&",
	        "&LaunchTemplateData.BlockDeviceMapping.1.Ebs.VolumeSize=4&",
	        "&LaunchTemplateData.BlockDeviceMapping.1.Ebs.VolumeType=gp3&",
	        "&LaunchTemplateData.TagSpecification.1.ResourceType=instance&",
	        "&LaunchTemplateData.TagSpecification.2.ResourceType=volume&",
	        "&LaunchTemplateData.TagSpecification.2.Tag.4.Key=imgbuild%3Abackup"
	        "&LaunchTemplateData.TagSpecification.2.Tag.4.Value=daily&",
	        "&TagSpecification.1.ResourceType=launch-template&",
	        "&ClientToken=",
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		ck_assert_msg(strstr(create, want[i]) != NULL, "missing %s in %s", want[i], create);
	aws_lt_owned_release(&lt);
	aws_config_release(&cfg);
}
END_TEST

START_TEST(test_judge)
{
	const struct {
		CURLcode res;
		long status;
		const char *headers, *body;
		int retry_not_found;
		enum aws_verdict want;
		const char *code;
	} cases[] = {
	        {CURLE_OK, 200, "", "<r/>", 0, AWS_DONE, NULL},
	        {CURLE_OK, 201, "", "{}", 0, AWS_DONE, NULL},
	        {CURLE_OK, 503, "", "", 0, AWS_RETRY, NULL},
	        {CURLE_OK, 500, "", "<html>oops</html>", 0, AWS_RETRY, NULL},
	        {CURLE_OK, 429, "", "", 0, AWS_RETRY, NULL},
	        {CURLE_OK, 400,
	         "x-amzn-ErrorType: ThrottlingException:http://internal.amazon.com/\n",
	         "{\"Message\":\"slow down\"}", 0, AWS_RETRY, "ThrottlingException"},
	        {CURLE_OK, 400, "",
	         "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>m</Message>"
	         "</Error></Errors></Response>",
	         0, AWS_RETRY, "RequestLimitExceeded"},
	        {CURLE_OK, 503, "", "<Error><Code>SlowDown</Code></Error>", 0, AWS_RETRY,
	         "SlowDown"},
	        {CURLE_OK, 400, "",
	         "<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>bad</Message>"
	         "</Error></Errors></Response>",
	         0, AWS_FAILED, "InvalidParameterValue"},
	        {CURLE_OK, 404, "", "{\"__type\":\"ResourceNotFoundException\",\"Message\":\"x\"}",
	         0, AWS_FAILED, "ResourceNotFoundException"},
	        {CURLE_OK, 404, "", "{\"__type\":\"ResourceNotFoundException\",\"Message\":\"x\"}",
	         1, AWS_RETRY, "ResourceNotFoundException"},
	        {CURLE_OK, 400, "", "{\"__type\":\"com.amazon.coral#ValidationException\"}", 0,
	         AWS_FAILED, "ValidationException"},
	        {CURLE_OK, 403, "", "<not xml", 0, AWS_FAILED, NULL},
	        {CURLE_OPERATION_TIMEDOUT, 0, "", "", 0, AWS_RETRY, NULL},
	        {CURLE_COULDNT_CONNECT, 0, "", "", 0, AWS_RETRY, NULL},
	        {CURLE_URL_MALFORMAT, 0, "", "", 0, AWS_FAILED, NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct aws_call call = {.what = "x", .retry_not_found = cases[i].retry_not_found};
		struct aws_resp out = {0};
		char why[512];
		enum aws_verdict v =
		        aws_judge(&call, cases[i].res, cases[i].status, cases[i].headers,
		                  cases[i].body, strlen(cases[i].body), &out, why, sizeof(why));
		ck_assert_msg(v == cases[i].want, "case %zu: verdict %d, want %d (%s)", i, v,
		              cases[i].want, why);
		if (cases[i].code)
			ck_assert_msg(out.code && streq(out.code, cases[i].code),
			              "case %zu: code %s", i, out.code ? out.code : "(none)");
		ck_assert_ptr_null(strchr(why, '\n'));
		aws_resp_release(&out);
	}
}
END_TEST

START_TEST(test_backoff_and_redaction)
{
	struct aws_config cfg = test_cfg();
	struct aws_client cl;
	aws_client_init(&cl, &cfg);
	for (int a = 1; a <= 12; a++) {
		long d = aws_backoff_ms(&cl, a, 0);
		long cap = 100L << (a - 1);
		if (cap > cl.retry_max_ms)
			cap = cl.retry_max_ms;
		ck_assert_int_ge(d, cap / 2);
		ck_assert_int_le(d, cap);
		ck_assert_int_ge(aws_backoff_ms(&cl, a, 1), (a == 1 ? 250 : d / 2));
	}
	struct curl_slist *h = NULL;
	h = curl_slist_append(h,
	                      "Authorization: AWS4-HMAC-SHA256 Credential=AKIAUNITTEST00001234/"
	                      "20260101/eu-west-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, "
	                      "Signature=0123456789abcdef");
	h = curl_slist_append(h, "X-Amz-Security-Token: unitTokenDoNotPrint");
	h = curl_slist_append(h, "Expect:");
	const char body[] = "Action=X&Secret=unitSecretDoNotPrint";
	_cleanup_free_ char *t =
	        aws_format_request(&cl, "POST", "http://h/", h, body, sizeof(body) - 1);
	curl_slist_free_all(h);
	ck_assert_ptr_null(strstr(t, "DoNotPrint"));
	ck_assert_ptr_null(strstr(t, "0123456789abcdef"));
	ck_assert_ptr_null(strstr(t, "AKIAUNITTEST"));
	ck_assert_ptr_null(strstr(t, "Expect"));
	ck_assert_ptr_nonnull(strstr(t, "Credential=****1234/20260101/eu-west-1/ec2/aws4_request, "
	                                "SignedHeaders=host;x-amz-date, Signature=<redacted>\n"));
	ck_assert_ptr_nonnull(strstr(t, "X-Amz-Security-Token: <redacted>\n"));
	aws_config_release(&cfg);
}
END_TEST

START_TEST(test_form_and_throttle_codes)
{
	struct strbuf f = STRBUF_INIT;
	aws_form_add(&f, "Filter.1.Name", "tag:imgbuild:manifest-sha256");
	aws_form_addf(&f, "v a/l", "Tag.%d.Value", 3);
	ck_assert_str_eq(sb_str(&f),
	                 "&Filter.1.Name=tag%3Aimgbuild%3Amanifest-sha256&Tag.3.Value=v%20a%2Fl");
	sb_release(&f);
	ck_assert(aws_is_throttle("RequestLimitExceeded"));
	ck_assert(aws_is_throttle("SlowDown"));
	ck_assert(!aws_is_throttle("InvalidParameterValue"));
	ck_assert(!aws_is_throttle(NULL));
}
END_TEST

START_TEST(test_terraform)
{
	struct aws_lt_owned a, b;
	aws_lt_owned_init(&a, "proj", "worker", "daily", "proj-worker", "ami-2", "t3.medium", "x",
	                  3);
	aws_lt_owned_init(&b, "proj", "2nd", "daily", "proj-2nd", "ami-3", "t3.medium", NULL, 1);
	struct aws_lt_spec specs[] = {a.spec, b.spec};
	const char *keys[] = {"worker", "2nd"};
	const char *previous = "{\"resource\":{\"aws_launch_template\":{\"worker\":{\"image_id\":"
	                       "\"ami-old\"},\"master\":{\"image_id\":\"ami-m\",\"n\":[1,true,null,"
	                       "2.5]}}}}";
	_cleanup_free_ char *text = aws_tf_launch_templates(specs, keys, 2, previous);
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	_cleanup_jsonr_ struct jsonr *j = NULL;
	ck_assert_msg(jsonr_parse(&ctx, IB_E_SPEC, "tf", text, strlen(text), &j) == 0, "%s\n%s",
	              ctx.err, text);
	const struct jsonr *lts = jsonr_get(jsonr_get(j, "resource"), "aws_launch_template");
	ck_assert_uint_eq(lts->n, 3);
	/* Replaced, kept as it was, added under a Terraform-safe name. */
	ck_assert_str_eq(jsonr_get_str(jsonr_get(lts, "worker"), "image_id"), "ami-2");
	ck_assert_str_eq(jsonr_get_str(jsonr_get(lts, "master"), "image_id"), "ami-m");
	ck_assert_uint_eq(jsonr_get(jsonr_get(lts, "master"), "n")->n, 4);
	const struct jsonr *w = jsonr_get(lts, "worker");
	ck_assert_str_eq(jsonr_get_str(w, "user_data"), "eA==");
	ck_assert_str_eq(jsonr_get_str(jsonr_get(w, "metadata_options"), "http_tokens"),
	                 "required");
	ck_assert_str_eq(
	        jsonr_get_str(jsonr_get(&jsonr_get(w, "block_device_mappings")->items[0], "ebs"),
	                      "encrypted"),
	        "true");
	ck_assert_str_eq(jsonr_get_str(jsonr_get(w, "tags"), AWS_TAG_BACKUP), "daily");
	ck_assert_ptr_nonnull(jsonr_get(lts, "r_2nd"));
	ck_assert_ptr_null(jsonr_get_str(jsonr_get(lts, "r_2nd"), "user_data"));
	aws_lt_owned_release(&a);
	aws_lt_owned_release(&b);

	_cleanup_free_ char *plan = aws_tf_backup_plan("proj", "daily", 30);
	_cleanup_jsonr_ struct jsonr *p = NULL;
	ck_assert_int_eq(jsonr_parse(&ctx, IB_E_SPEC, "plan", plan, strlen(plan), &p), 0);
	const struct jsonr *res = jsonr_get(p, "resource");
	const struct jsonr *sel =
	        &jsonr_get(jsonr_get(jsonr_get(res, "aws_backup_selection"), "imgbuild"),
	                   "selection_tag")
	                 ->items[0];
	ck_assert_str_eq(jsonr_get_str(sel, "key"), AWS_TAG_BACKUP);
	ck_assert_str_eq(jsonr_get_str(sel, "value"), "daily");
	ck_assert_ptr_nonnull(jsonr_get(res, "aws_backup_plan"));
	const struct jsonr *rule =
	        &jsonr_get(jsonr_get(jsonr_get(res, "aws_backup_plan"), "imgbuild"), "rule")->items[0];
	const struct jsonr *del = jsonr_get(jsonr_get(rule, "lifecycle"), "delete_after");
	ck_assert(del && del->is_int && del->integer == 30);
	ck_assert_ptr_nonnull(jsonr_get(res, "aws_iam_role_policy_attachment"));
	/* The role's trust policy is itself valid JSON. */
	const char *trust = jsonr_get_str(
	        jsonr_get(jsonr_get(res, "aws_iam_role"), "imgbuild_backup"), "assume_role_policy");
	_cleanup_jsonr_ struct jsonr *tj = NULL;
	ck_assert_int_eq(jsonr_parse(&ctx, IB_E_SPEC, "trust", trust, strlen(trust), &tj), 0);
}
END_TEST

static Suite *aws_suite(void)
{
	Suite *s = suite_create("aws");
	TU_CASE(s, "block_digests", test_block_digests);
	TU_CASE(s, "upload_dry_run", test_upload_dry_run);
	TU_CASE(s, "register_request", test_register_request);
	TU_CASE(s, "launch_template_request", test_launch_template_request);
	TU_CASE(s, "judge", test_judge);
	TU_CASE(s, "backoff_redaction", test_backoff_and_redaction);
	TU_CASE(s, "form", test_form_and_throttle_codes);
	TU_CASE(s, "terraform", test_terraform);
	return s;
}

TU_MAIN(aws_suite)
