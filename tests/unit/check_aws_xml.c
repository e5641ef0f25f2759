/* check_aws_xml.c: the strict XML reader on AWS answers, and everything it must refuse. */
#include "aws/xml.h"
#include "testutil.h"
#include "util/strbuf.h"

static struct xml_node *parse_ok(const char *doc)
{
	struct xml_node *n = NULL;
	struct xml_error e;
	int r = xml_parse_ex(doc, strlen(doc), NULL, &n, &e);
	ck_assert_msg(r == 0, "refused (%u:%u %s): %s", e.line, e.col, e.msg, doc);
	return n;
}

/* Refused, with a message containing want. */
static void parse_bad(const char *doc, size_t len, const struct xml_limits *lim, const char *want)
{
	struct xml_node *n = NULL;
	struct xml_error e;
	int r = xml_parse_ex(doc, len, lim, &n, &e);
	ck_assert_msg(r == -1, "accepted: %s", doc);
	ck_assert_ptr_null(n);
	ck_assert_msg(strstr(e.msg, want) != NULL, "message '%s' lacks '%s' for %s", e.msg, want,
	              doc);
}

START_TEST(test_describe_images)
{
	const char *doc =
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	        "<DescribeImagesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\n"
	        "  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>\n"
	        "  <imagesSet>\n"
	        "    <item>\n"
	        "      <imageId>ami-1a2b3c4d</imageId>\n"
	        "      <imageState>available</imageState>\n"
	        "      <name>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; "
	        "&#65;&#x42;&#xe9;</name>\n"
	        "      <description><![CDATA[<raw> & text]]></description>\n"
	        "      <!-- a comment -->\n"
	        "      <tagSet><item><key>role</key><value>worker</value></item>"
	        "<item><key>k2</key><value/></item></tagSet>\n"
	        "    </item>\n"
	        "    <item><imageId>ami-2</imageId></item>\n"
	        "  </imagesSet>\n"
	        "</DescribeImagesResponse>\n";
	struct xml_node *n = parse_ok(doc);
	ck_assert_str_eq(n->name, "DescribeImagesResponse");
	ck_assert_str_eq(xml_text(n, "requestId"), "59dbff89-35bd-4eac-99ed-be587EXAMPLE");
	const struct xml_node *set = xml_child(n, "imagesSet");
	ck_assert_uint_eq(set->n, 2);
	ck_assert_str_eq(xml_text(&set->children[0], "imageId"), "ami-1a2b3c4d");
	ck_assert_str_eq(xml_text(&set->children[1], "imageId"), "ami-2");
	ck_assert_str_eq(xml_text(n, "imagesSet/item/name"), "a & b <c> \"d\" 'e' AB\xc3\xa9");
	ck_assert_str_eq(xml_text(n, "imagesSet/item/description"), "<raw> & text");
	const struct xml_node *tags = xml_path(n, "imagesSet/item/tagSet");
	ck_assert_uint_eq(tags->n, 2);
	ck_assert_str_eq(xml_text(&tags->children[1], "value"), "");
	ck_assert_ptr_null(xml_path(n, "imagesSet/item/nosuch"));
	ck_assert_ptr_null(xml_text(NULL, "x"));
	xml_free(n);
}
END_TEST

START_TEST(test_error_response)
{
	const char *doc = "<Response><Errors><Error><Code>InvalidAMIID.NotFound</Code>"
	                  "<Message>The image id '[ami-1]' does not exist</Message></Error>"
	                  "</Errors><RequestID>ea966190</RequestID></Response>";
	struct xml_node *n = parse_ok(doc);
	ck_assert_str_eq(xml_text(n, "Errors/Error/Code"), "InvalidAMIID.NotFound");
	ck_assert_str_eq(xml_text(n, "RequestID"), "ea966190");
	xml_free(n);
	/* Prefixed names match by their local part; a BOM is fine; attributes with both quotes. */
	n = parse_ok("\xef\xbb\xbf<a:r xmlns:a='u' b = \"v\"><a:x>1</a:x></a:r>");
	ck_assert_str_eq(xml_text(n, "x"), "1");
	xml_free(n);
}
END_TEST

START_TEST(test_refused)
{
	const struct {
		const char *doc, *want;
	} bad[] = {
	        {"", "no root element"},
	        {"  <!-- only -->  ", "no root element"},
	        {"<!DOCTYPE r [<!ENTITY x \"y\">]><r>&x;</r>", "DOCTYPE"},
	        {"<r><!ENTITY x \"y\"></r>", "declarations are not accepted"},
	        {"<r>&x;</r>", "unknown entity"},
	        {"<r>a & b</r>", "'&' that starts no entity"},
	        {"<r>&#0;</r>", "forbidden character"},
	        {"<r>&#xD800;</r>", "forbidden character"},
	        {"<r>&#x110000;</r>", "out of range"},
	        {"<r>&#xZZ;</r>", "bad character reference"},
	        {"<r>&#;</r>", "empty character reference"},
	        {"<r><a></b></r>", "</b> closes <a>"},
	        {"<r><a>", "never closed"},
	        {"<r a='1' a='2'/>", "duplicate attribute"},
	        {"<r a=1/>", "quoted attribute value"},
	        {"<r a='<'/>", "'<' in an attribute value"},
	        {"<r a='1'b='2'/>", "whitespace before an attribute"},
	        {"<r a/>", "expected '='"},
	        {"<r a='1/>", "unterminated attribute value"},
	        {"text<r/>", "text outside the root element"},
	        {"<r/>tail", "content after the root element"},
	        {"<r/><r/>", "content after the root element"},
	        {"<1r/>", "expected a name"},
	        {"<r>]]></r>", "']]>' in character data"},
	        {"<r><![CDATA[x</r>", "unterminated CDATA"},
	        {"<r><!-- a -- b --></r>", "'--' inside a comment"},
	        {"<r><!-- a </r>", "unterminated comment"},
	        {" <?xml version='1.0'?><r/>", "XML declaration not at the start"},
	        {"<r><?pi never closed</r>", "unterminated processing instruction"},
	        {"<r>\x01</r>", "control character"},
	        {"<r>\xc3\x28</r>", "invalid UTF-8"},
	        {"<r>\xc0\xaf</r>", "invalid UTF-8"},     /* overlong */
	        {"<r>\xed\xa0\x80</r>", "invalid UTF-8"}, /* surrogate */
	        {"<r>\xe2\x82</r>", "invalid UTF-8"},
	        {"<r>\xe2", "truncated UTF-8"},
	        {"<r", "unterminated start tag"},
	        {"<r></r", "expected '>'"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		parse_bad(bad[i].doc, strlen(bad[i].doc), NULL, bad[i].want);
	/* A NUL inside the input is a control character, not the end of the text. */
	parse_bad("<r>\0</r>", 8, NULL, "control character");
}
END_TEST

START_TEST(test_limits)
{
	struct xml_limits lim = {.max_depth = 3};
	parse_bad("<a><b><c><d/></c></b></a>", 25, &lim, "nested deeper than 3");
	struct xml_node *n = NULL;
	ck_assert_int_eq(xml_parse_ex("<a><b><c/></b></a>", 18, &lim, &n, NULL), 0);
	xml_free(n);
	struct xml_limits lim2 = {.max_nodes = 3};
	parse_bad("<a><b/><c/><d/></a>", 19, &lim2, "more than 3 elements");
	struct xml_limits lim3 = {.max_size = 10};
	parse_bad("<a>0123456789</a>", 17, &lim3, "larger than 10 bytes");
	/* The default depth stops a deep document without exhausting the stack. */
	struct strbuf sb = STRBUF_INIT;
	for (int i = 0; i < 100000; i++)
		sb_adds(&sb, "<a>");
	parse_bad(sb.buf, sb.len, NULL, "nested deeper than 64");
	sb_release(&sb);
	/* The error position is line and column. */
	struct xml_error e;
	ck_assert_int_eq(xml_parse_ex("<r>\n  <a></b>\n</r>", 18, NULL, &n, &e), -1);
	ck_assert_uint_eq(e.line, 2);
	ck_assert_uint_eq(e.col, 6);
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(xml_parse(&ctx, IB_E_NETWORK, "DescribeImages", "<r>", 3, &n),
	                 -IB_E_NETWORK);
	ck_assert_str_eq(ctx.err,
	                 "DescribeImages: invalid XML at line 1, column 1: element <r> is never "
	                 "closed");
}
END_TEST

static Suite *xml_suite(void)
{
	Suite *s = suite_create("aws_xml");
	TU_CASE(s, "describe_images", test_describe_images);
	TU_CASE(s, "error_response", test_error_response);
	TU_CASE(s, "refused", test_refused);
	TU_CASE(s, "limits", test_limits);
	return s;
}

TU_MAIN(xml_suite)
