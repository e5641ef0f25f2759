/* fuzz_aws_json.c: a JSON answer (EBS direct API, instance metadata credentials, error
 * bodies): the strict JSON reader with tight limits walked in full, and the error-answer
 * judge reading __type/code/message out of it. */
#include <stdint.h>

#include "aws/client.h"
#include "util/jsonr.h"

static size_t walk(const struct jsonr *v)
{
	size_t total = v->len;
	if (v->type == JSONR_OBJECT)
		for (size_t i = 0; i < v->n; i++)
			total += strlen(v->keys[i]) + (jsonr_get(v, v->keys[i]) != NULL);
	if (v->type == JSONR_ARRAY || v->type == JSONR_OBJECT)
		for (size_t i = 0; i < v->n; i++)
			total += walk(&v->items[i]);
	return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jsonr_limits lim = {.max_size = 1 << 16, .max_depth = 16, .max_values = 4096};
	struct jsonr_error err;
	_cleanup_jsonr_ struct jsonr *j = NULL;
	if (jsonr_parse_ex((const char *)data, size, &lim, &j, &err) == 0) {
		(void)walk(j);
		(void)jsonr_type_name(j->type);
		(void)jsonr_get_str(j, "SnapshotId");
		(void)jsonr_get_type(j, "BlockSize", JSONR_NUMBER);
		(void)jsonr_get_str(j, "AccessKeyId");
	}

	struct aws_call call = {.service = "ebs", .method = "POST", .path = "/", .what = "fuzz"};
	struct aws_resp resp = {0};
	char why[256];
	aws_judge(&call, CURLE_OK, 400, "x-amzn-ErrorType: ValidationException:http\r\n",
	          (const char *)data, size, &resp, why, sizeof(why));
	aws_resp_release(&resp);
	return 0;
}
