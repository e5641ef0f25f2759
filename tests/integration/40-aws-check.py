#!/usr/bin/env python3
"""40-aws-check.py: read back what `imgbuild publish` left in moto, with boto3 (independent of
imgbuild's own client), for tests/integration/40-aws.sh. One check per subcommand; prints
"ok: ..." and exits 0, or prints what differs and exits 1.

  image ENDPOINT REGION DIGEST AMI ROLE      the AMI found by its digest tag, with its tags
  blocks ENDPOINT SNAPSHOT RAW               every block read back equals the image's bytes
  template ENDPOINT NAME AMI ITYPE           the launch template's latest version as sent
  recording RECORDING SUMMARY_JSON ROLE      what moto recorded of RegisterImage, the blocks
                                             and CompleteSnapshot (fields moto itself drops)
  quiet RECORDING ACTION...                  none of these calls in the recording
  terraform OUT_AWS_DIR SUMMARY_JSON ROLE    the .tf.json files say what was sent
  no-orphans ENDPOINT REGION DIGEST          no snapshot and no image carry this digest
"""

import base64
import hashlib
import json
import sys
import urllib.parse

import boto3

BLOCK = 524288


def client(service, endpoint, region="us-east-1"):
    return boto3.client(service, endpoint_url=endpoint, region_name=region)


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def tags_of(obj):
    return {t["Key"]: t["Value"] for t in obj.get("Tags", [])}


def cmd_image(endpoint, region, digest, ami, role):
    ec2 = client("ec2", endpoint, region)
    imgs = ec2.describe_images(Owners=["self"], Filters=[
        {"Name": "tag:imgbuild:manifest-sha256", "Values": [digest]}])["Images"]
    check(len(imgs) == 1, "%d images tagged with digest %s in %s" % (len(imgs), digest, region))
    im = imgs[0]
    check(im["ImageId"] == ami, "found %s, summary says %s" % (im["ImageId"], ami))
    check(im["State"] == "available", "image state %s" % im["State"])
    t = tags_of(im)
    check(t.get("imgbuild:role") == role, "role tag %r" % t.get("imgbuild:role"))
    check(t.get("Name", "").endswith("-" + role), "Name tag %r" % t.get("Name"))
    check("imgbuild:inputs-digest" in t, "no inputs digest tag: %r" % t)
    print("ok: %s in %s found by its digest tag, tags %s" % (ami, region, sorted(t)))


def cmd_blocks(endpoint, snap, raw):
    ebs = client("ebs", endpoint)
    blocks, token = [], None
    while True:
        kw = {"SnapshotId": snap, "MaxResults": 10000}
        if token:
            kw["NextToken"] = token
        r = ebs.list_snapshot_blocks(**kw)
        blocks += r["Blocks"]
        token = r.get("NextToken")
        if not token:
            break
    data = open(raw, "rb").read()
    n = (len(data) + BLOCK - 1) // BLOCK
    idx = sorted(b["BlockIndex"] for b in blocks)
    check(idx == list(range(n)), "snapshot has blocks %s..., want 0..%d (%d vs %d)" % (
        idx[:5], n - 1, len(idx), n))
    for b in blocks:
        i = b["BlockIndex"]
        got = ebs.get_snapshot_block(SnapshotId=snap, BlockIndex=i,
                                     BlockToken=b["BlockToken"])["BlockData"].read()
        want = data[i * BLOCK:(i + 1) * BLOCK]
        want += b"\0" * (BLOCK - len(want))
        check(got == want, "block %d differs (%d bytes back)" % (i, len(got)))
    print("ok: all %d blocks of %s read back equal %s" % (n, snap, raw))


def cmd_template(endpoint, name, ami, itype):
    ec2 = client("ec2", endpoint)
    v = ec2.describe_launch_template_versions(LaunchTemplateName=name,
                                              Versions=["$Latest"])["LaunchTemplateVersions"][0]
    d = v["LaunchTemplateData"]
    check(d.get("ImageId") == ami, "ImageId %r, want %s" % (d.get("ImageId"), ami))
    check(d.get("InstanceType") == itype, "InstanceType %r" % d.get("InstanceType"))
    ud = base64.b64decode(d.get("UserData", "")).decode()
    check(ud.startswith("#cloud-config"), "user-data is not cloud-config: %r" % ud[:40])
    check(d["MetadataOptions"]["HttpTokens"] == "required", "HttpTokens %r" % d["MetadataOptions"])
    bdm = d["BlockDeviceMappings"][0]
    check(bdm["DeviceName"] == "/dev/xvda", "BDM %r" % bdm)
    check(bdm["Ebs"].get("Encrypted") is True, "root volume not encrypted: %r" % bdm)
    check(bdm["Ebs"].get("VolumeType") == "gp3", "root volume type %r" % bdm)
    specs = {s["ResourceType"]: tags_of(s) for s in d.get("TagSpecifications", [])}
    for rt in ("instance", "volume"):
        check(specs.get(rt, {}).get("imgbuild:backup") == "daily",
              "no backup tag on %s: %r" % (rt, specs))
    print("ok: launch template %s v%s: %s %s, user-data %d bytes, IMDSv2, encrypted gp3, "
          "backup tags" % (name, v["VersionNumber"], ami, itype, len(ud)))


def records(path):
    text = open(path).read()
    dec = json.JSONDecoder()
    i, out = 0, []
    while i < len(text):
        while i < len(text) and text[i] in " \r\n\t":
            i += 1
        if i >= len(text):
            break
        obj, i = dec.raw_decode(text, i)
        out.append(obj)
    return out


def body_of(r):
    b = r.get("body") or ""
    if r.get("body_encoded"):
        return base64.b64decode(b)
    return b.encode() if isinstance(b, str) else b


def action_of(r):
    if r["method"] == "POST" and urllib.parse.urlsplit(r["url"]).path == "/":
        q = urllib.parse.parse_qs(body_of(r).decode(), keep_blank_values=True)
        return q.get("Action", [None])[0], q
    return None, None


def hdr(r, name):
    for k, v in (r.get("headers") or {}).items():
        if k.lower() == name.lower():
            return v
    return None


def summary_role(summary, role):
    s = json.load(open(summary)) if not summary.startswith("{") else json.loads(summary)
    for r in s["roles"]:
        if r["role"] == role:
            return r
    fail("no role %s in the summary" % role)


def cmd_recording(path, summary, role):
    r = summary_role(summary, role)
    snap, ami = r["snapshot"], r["ami"]
    recs = records(path)
    reg = [q for a, q in map(action_of, recs) if a == "RegisterImage"
           and q.get("BlockDeviceMapping.1.Ebs.SnapshotId", [""])[0] == snap]
    check(len(reg) == 1, "%d RegisterImage calls for %s" % (len(reg), snap))
    q = {k: v[0] for k, v in reg[0].items()}
    want = {"Architecture": "x86_64", "VirtualizationType": "hvm", "EnaSupport": "true",
            "BootMode": "uefi-preferred", "ImdsSupport": "v2.0", "RootDeviceName": "/dev/xvda",
            "BlockDeviceMapping.1.DeviceName": "/dev/xvda",
            "BlockDeviceMapping.1.Ebs.VolumeType": "gp3"}
    for k, v in want.items():
        check(q.get(k) == v, "RegisterImage %s=%r, want %r" % (k, q.get(k), v))
    tags = {q[k]: q[k[:-3] + "Value"] for k in q
            if k.startswith("TagSpecification.1.Tag.") and k.endswith(".Key")}
    check(q.get("TagSpecification.1.ResourceType") == "image", "no image TagSpecification")
    check(tags.get("imgbuild:manifest-sha256") == r["manifest_sha256"], "digest tag %r" % tags)
    check(tags.get("imgbuild:role") == role, "role tag %r" % tags)
    # The blocks: every one with the checksum of what it carried, and the aggregate.
    puts = {}
    for rec in recs:
        p = urllib.parse.urlsplit(rec["url"]).path
        if rec["method"] == "PUT" and p.startswith("/snapshots/%s/blocks/" % snap):
            i = int(p.rsplit("/", 1)[1])
            body = body_of(rec)
            check(len(body) == BLOCK, "block %d has %d bytes" % (i, len(body)))
            digest = hashlib.sha256(body).digest()
            check(hdr(rec, "x-amz-Checksum") == base64.b64encode(digest).decode(),
                  "block %d: x-amz-Checksum does not match its data" % i)
            check(hdr(rec, "x-amz-Data-Length") == str(BLOCK), "block %d length header" % i)
            puts[i] = digest
    check(len(puts) == r["blocks_uploaded"], "%d distinct blocks PUT, summary says %d" % (
        len(puts), r["blocks_uploaded"]))
    comp = [rec for rec in recs if urllib.parse.urlsplit(rec["url"]).path ==
            "/snapshots/completion/%s" % snap]
    check(len(comp) == 1, "%d CompleteSnapshot calls" % len(comp))
    linear = base64.b64encode(hashlib.sha256(
        b"".join(puts[i] for i in sorted(puts))).digest()).decode()
    check(hdr(comp[0], "x-amz-Checksum") == linear, "aggregate checksum %r, want %r" % (
        hdr(comp[0], "x-amz-Checksum"), linear))
    check(hdr(comp[0], "x-amz-ChangedBlocksCount") == str(len(puts)), "ChangedBlocksCount")
    check(hdr(comp[0], "x-amz-Checksum-Aggregation-Method") == "LINEAR", "aggregation")
    print("ok: RegisterImage sent %s; %d blocks with their checksums; LINEAR aggregate %s" % (
        ", ".join("%s=%s" % kv for kv in sorted(want.items())[:6]), len(puts), linear))


def cmd_quiet(path, *actions):
    recs = records(path)
    seen = []
    for rec in recs:
        a, _ = action_of(rec)
        p = urllib.parse.urlsplit(rec["url"]).path
        name = a or ("StartSnapshot" if p == "/snapshots" else
                     "PutSnapshotBlock" if "/blocks/" in p else
                     "CompleteSnapshot" if "/completion/" in p else p)
        if name in actions:
            seen.append(name)
    check(not seen, "unexpected calls: %s" % sorted(set(seen)))
    print("ok: %d requests recorded, none of %s" % (len(recs), ", ".join(actions)))


def cmd_terraform(d, summary, role):
    r = summary_role(summary, role)
    lt = json.load(open(d + "/launch-templates.tf.json"))["resource"]["aws_launch_template"]
    t = lt[role]
    check(t["image_id"] == r["ami"], "tf image_id %r" % t["image_id"])
    check(t["name"] == r["launch_template_name"], "tf name %r" % t["name"])
    check(t["metadata_options"]["http_tokens"] == "required", "tf http_tokens")
    check(t["block_device_mappings"][0]["ebs"]["encrypted"] == "true", "tf encrypted")
    specs = {s["resource_type"]: s["tags"] for s in t["tag_specifications"]}
    bk = json.load(open(d + "/backup-plan.tf.json"))["resource"]
    sel = bk["aws_backup_selection"]["imgbuild"]["selection_tag"][0]
    check(sel["key"] == "imgbuild:backup", "selection key %r" % sel)
    for rt in ("instance", "volume"):
        check(specs[rt].get(sel["key"]) == sel["value"], "%s tags lack the backup tag" % rt)
    check("aws_backup_plan" in bk and "aws_backup_vault" in bk and "aws_iam_role" in bk,
          "backup plan resources: %s" % sorted(bk))
    print("ok: launch-templates.tf.json has %s -> %s; backup plan selects %s=%s" % (
        role, t["image_id"], sel["key"], sel["value"]))



def cmd_template_tf(endpoint, d, role, name):
    t = json.load(open(d + "/launch-templates.tf.json"))["resource"]["aws_launch_template"][role]
    ec2 = client("ec2", endpoint)
    v = ec2.describe_launch_template_versions(LaunchTemplateName=name,
                                              Versions=["$Latest"])["LaunchTemplateVersions"][0]
    data = v["LaunchTemplateData"]
    check(data["UserData"] == t["user_data"], "tf user_data differs from the API's")
    check(data["InstanceType"] == t["instance_type"], "tf instance_type differs")
    check(data["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] ==
          t["block_device_mappings"][0]["ebs"]["volume_size"], "tf volume_size differs")
    print("ok: the Terraform template of %s says what the API was sent" % role)


def cmd_no_orphans(endpoint, region, digest):
    ec2 = client("ec2", endpoint, region)
    f = [{"Name": "tag:imgbuild:manifest-sha256", "Values": [digest]}]
    snaps = ec2.describe_snapshots(OwnerIds=["self"], Filters=f)["Snapshots"]
    check(not snaps, "orphaned snapshots: %s" % [s["SnapshotId"] for s in snaps])
    imgs = ec2.describe_images(Owners=["self"], Filters=f)["Images"]
    check(not imgs, "images left: %s" % [i["ImageId"] for i in imgs])
    print("ok: no snapshot and no image tagged %s" % digest[:16])


def cmd_snapshots_tagged(endpoint, region, digest, want):
    ec2 = client("ec2", endpoint, region)
    f = [{"Name": "tag:imgbuild:manifest-sha256", "Values": [digest]}]
    snaps = ec2.describe_snapshots(OwnerIds=["self"], Filters=f)["Snapshots"]
    check(len(snaps) == int(want), "%d snapshots tagged %s, want %s" % (len(snaps), digest, want))
    print("ok: %d snapshot(s) tagged %s" % (len(snaps), digest[:16]))


CMDS = {"image": cmd_image, "blocks": cmd_blocks, "template": cmd_template,
        "recording": cmd_recording, "quiet": cmd_quiet, "terraform": cmd_terraform,
        "template-tf": cmd_template_tf, "no-orphans": cmd_no_orphans,
        "snapshots-tagged": cmd_snapshots_tagged}

if __name__ == "__main__":
    CMDS[sys.argv[1]](*sys.argv[2:])
