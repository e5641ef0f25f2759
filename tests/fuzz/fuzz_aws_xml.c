/* fuzz_aws_xml.c: an EC2 Query API answer: the strict XML reader with tight limits, the
 * path lookups the EC2 calls make, and the error-answer judge (code and message out of an
 * <Response><Errors><Error> body). */
#include <stdint.h>

#include "aws/client.h"
#include "aws/xml.h"

static size_t walk(const struct xml_node *n)
{
	size_t total = n->text_len;
	for (size_t i = 0; i < n->n; i++)
		total += walk(&n->children[i]);
	return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xml_limits lim = {.max_size = 1 << 16, .max_depth = 16, .max_nodes = 4096};
	struct xml_error err;
	_cleanup_xml_ struct xml_node *x = NULL;
	if (xml_parse_ex((const char *)data, size, &lim, &x, &err) == 0) {
		(void)walk(x);
		(void)xml_text(x, "imagesSet/item/imageId");
		(void)xml_text(x, "snapshotSet/item/status");
		(void)xml_path(x, "Errors/Error/Code");
		(void)xml_child(x, "requestId");
	}

	struct aws_call call = {.service = "ec2", .method = "POST", .path = "/", .what = "fuzz"};
	struct aws_resp resp = {0};
	char why[256];
	aws_judge(&call, CURLE_OK, 400, "HTTP/1.1 400 Bad Request\r\n", (const char *)data, size,
	          &resp, why, sizeof(why));
	aws_resp_release(&resp);
	return 0;
}
