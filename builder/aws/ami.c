/* ami.c: RegisterImage with every field that must not be left to its default, and CopyImage. */
#include "ec2.h"
#include "publish.h"

static void add_tags(struct strbuf *form, const char *resource_type, const char *const *tags,
                     size_t n)
{
	if (n == 0)
		return;
	aws_form_add(form, "TagSpecification.1.ResourceType", resource_type);
	for (size_t i = 0; i < n; i++) {
		aws_form_addf(form, tags[2 * i], "TagSpecification.1.Tag.%zu.Key", i + 1);
		aws_form_addf(form, tags[2 * i + 1], "TagSpecification.1.Tag.%zu.Value", i + 1);
	}
}

int aws_register_image(struct ib_ctx *ctx, struct aws_client *c, const char *name,
                       const char *description, const char *snapshot, uint64_t volume_gib,
                       const char *const *tags, size_t n_tags, char **ret_ami)
{
	char gib[32];
	snprintf(gib, sizeof(gib), "%llu", (unsigned long long)volume_gib);
	struct strbuf f = STRBUF_INIT;
	aws_form_add(&f, "Name", name);
	aws_form_add(&f, "Description", description);
	/* The defaults are i386 and paravirtual: always say what the image is. */
	aws_form_add(&f, "Architecture", "x86_64");
	aws_form_add(&f, "VirtualizationType", "hvm");
	aws_form_add(&f, "RootDeviceName", "/dev/xvda");
	aws_form_add(&f, "EnaSupport", "true");
	aws_form_add(&f, "SriovNetSupport", "simple");
	/* The images boot by BIOS and UEFI: UEFI where the instance type has it. */
	aws_form_add(&f, "BootMode", "uefi-preferred");
	/* Instances from this AMI default to IMDSv2 only (HttpTokens=required). */
	aws_form_add(&f, "ImdsSupport", "v2.0");
	aws_form_add(&f, "BlockDeviceMapping.1.DeviceName", "/dev/xvda");
	aws_form_add(&f, "BlockDeviceMapping.1.Ebs.SnapshotId", snapshot);
	aws_form_add(&f, "BlockDeviceMapping.1.Ebs.VolumeSize", gib);
	aws_form_add(&f, "BlockDeviceMapping.1.Ebs.VolumeType", "gp3");
	aws_form_add(&f, "BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true");
	add_tags(&f, "image", tags, n_tags);
	_cleanup_xml_ struct xml_node *x = NULL;
	_cleanup_free_ char *code = NULL;
	int r = aws_ec2(ctx, c, "RegisterImage", &f, 1, &x, &code);
	sb_release(&f);
	if (r < 0)
		return r;
	if (r == 1) {
		/* RegisterImage has no client token: after an ambiguous failure (a retry whose
		 * first attempt did register) the name is taken; that image is ours. */
		if (code && streq(code, "InvalidAMIName.Duplicate")) {
			struct aws_image im;
			r = aws_find_image_by_name(ctx, c, name, &im);
			if (r == 0 && im.id) {
				*ret_ami = TAKE_PTR(im.id);
				aws_image_release(&im);
				return 0;
			}
			aws_image_release(&im);
		}
		return ib_error(ctx, IB_E_NETWORK, "RegisterImage %s: %s", name,
		                code ? code : "failed");
	}
	if (c->dry_run) {
		*ret_ami = xstrdup("ami-dry-run");
		return 0;
	}
	const char *ami = xml_text(x, "imageId");
	if (!ami || !startswith(ami, "ami-"))
		return ib_error(ctx, IB_E_NETWORK, "RegisterImage answer has no imageId");
	*ret_ami = xstrdup(ami);
	return 0;
}

int aws_copy_image(struct ib_ctx *ctx, struct aws_client *c, const char *src_region,
                   const char *ami, const char *name, const char *const *tags, size_t n_tags,
                   double timeout_s, double poll_s, char **ret_ami)
{
	struct strbuf f = STRBUF_INIT;
	aws_form_add(&f, "SourceRegion", src_region);
	aws_form_add(&f, "SourceImageId", ami);
	aws_form_add(&f, "Name", name);
	add_tags(&f, "image", tags, n_tags);
	_cleanup_xml_ struct xml_node *x = NULL;
	int r = aws_ec2(ctx, c, "CopyImage", &f, 0, &x, NULL);
	sb_release(&f);
	if (r < 0)
		return r;
	_cleanup_free_ char *copy =
	        c->dry_run ? xstrdup("ami-dry-run-copy") : xstrdup(xml_text(x, "imageId") ?: "");
	if (!startswith(copy, "ami-"))
		return ib_error(ctx, IB_E_NETWORK, "CopyImage answer has no imageId");
	/* Tagged again: the identity tag is how the next run finds this copy, and not every
	 * endpoint honours TagSpecification on CopyImage. */
	r = aws_create_tags(ctx, c, copy, tags, n_tags);
	if (r == 0)
		r = aws_wait_image(ctx, c, copy, timeout_s, poll_s);
	if (r < 0)
		return r;
	*ret_ami = TAKE_PTR(copy);
	return 0;
}
