/* xml.h: a small, strict, bounded XML reader for AWS responses (EC2 Query API, errors).
 *
 * The subset AWS speaks: one root element, nested elements with attributes (read and
 * checked, then dropped: only xmlns appears), character data with the five predefined
 * entities and character references, CDATA sections, comments, processing instructions and
 * the XML declaration. Refused: DOCTYPE (so no DTD, no external or custom entities), bad
 * names, mismatched or unclosed tags, duplicate attributes, '<' or '&' out of place, invalid
 * UTF-8, control characters, text outside the root. Bounded: input size, depth and the number
 * of nodes have limits, so a hostile answer costs bounded memory and time.
 */
#pragma once

#include "util/ctx.h"

struct xml_node {
	char *name; /* as written, prefix included ("Response", "ns:x") */
	char *text; /* character data directly inside, decoded; never NULL */
	size_t text_len;
	struct xml_node *children; /* child elements in document order */
	size_t n;
};

struct xml_limits {
	size_t max_size;    /* 0: 16 MiB */
	unsigned max_depth; /* 0: 64 */
	size_t max_nodes;   /* 0: 1 << 20 */
};

struct xml_error {
	size_t offset;
	unsigned line, col; /* 1-based, col in bytes */
	char msg[128];
};

/* Parse data[0..len). 0 and *ret (free with xml_free), or -1 with err filled. */
int xml_parse_ex(const char *data, size_t len, const struct xml_limits *lim, struct xml_node **ret,
                 struct xml_error *err);
/* The same with default limits, recording "<what>: invalid XML at line L, column C: <msg>". */
int xml_parse(struct ib_ctx *ctx, ib_code code, const char *what, const char *data, size_t len,
              struct xml_node **ret);
void xml_free(struct xml_node *n);
static inline void xml_freep(struct xml_node **n)
{
	xml_free(*n);
}
#define _cleanup_xml_ _cleanup_(xml_freep)

/* The first child element named name (ignoring any "prefix:"), or NULL (n may be NULL). */
const struct xml_node *xml_child(const struct xml_node *n, const char *name);
/* Follow a '/'-separated path of child names: "imagesSet/item/imageId". */
const struct xml_node *xml_path(const struct xml_node *n, const char *path);
/* The text of xml_path(n, path), or NULL. */
const char *xml_text(const struct xml_node *n, const char *path);
