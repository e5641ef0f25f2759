/* ec2.h: the EC2 Query API (POST form, XML answers) and the calls publishing needs. */
#pragma once

#include "aws/client.h"
#include "aws/xml.h"

#define AWS_EC2_VERSION "2016-11-15"

/* Append "&name=value" (both percent-encoded) to a form. */
void aws_form_add(struct strbuf *form, const char *name, const char *value);
void aws_form_addf(struct strbuf *form, const char *value, const char *namefmt, ...) _printf_(3, 4);

/* Call action with the form's parameters. 0 and *ret (the parsed answer; NULL in a dry
 * run); 1 with soft and an error answer (*ret NULL, *ret_code the code, caller frees); or a
 * recorded error. */
int aws_ec2(struct ib_ctx *ctx, struct aws_client *c, const char *action, const struct strbuf *form,
            int soft, struct xml_node **ret, char **ret_code);

struct aws_image {
	char *id, *state, *name, *snapshot;
};
void aws_image_release(struct aws_image *im);

/* Our own image tagged key=value, if any: 0 with im->id set, or with im->id NULL. */
int aws_find_image_by_tag(struct ib_ctx *ctx, struct aws_client *c, const char *key,
                          const char *value, struct aws_image *im);
/* Our own image named name, if any. */
int aws_find_image_by_name(struct ib_ctx *ctx, struct aws_client *c, const char *name,
                           struct aws_image *im);
/* Poll DescribeImages until the image is available (fails on failed/invalid/error...). */
int aws_wait_image(struct ib_ctx *ctx, struct aws_client *c, const char *ami, double timeout_s,
                   double interval_s);
/* Poll DescribeSnapshots until completed 3 times in a row (as coldsnap and Bottlerocket
 * do, for eventual consistency); fails on error. */
int aws_wait_snapshot(struct ib_ctx *ctx, struct aws_client *c, const char *snap, double timeout_s,
                      double interval_s);
int aws_delete_snapshot(struct ib_ctx *ctx, struct aws_client *c, const char *snap);
/* CreateTags on one resource: tags as key, value pairs. */
int aws_create_tags(struct ib_ctx *ctx, struct aws_client *c, const char *resource,
                    const char *const *kv, size_t n_pairs);
