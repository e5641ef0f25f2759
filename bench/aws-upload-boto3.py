#!/usr/bin/env python3
"""aws-upload-boto3.py: the reference uploader for bench/aws-upload.sh: the same EBS direct
API calls imgbuild makes (StartSnapshot, PutSnapshotBlock for every 512 KiB block with its
SHA-256, CompleteSnapshot with the LINEAR aggregate), with boto3 and a thread pool of the
same concurrency. Prints one JSON line: snapshot, blocks, seconds, peak RSS.

  aws-upload-boto3.py ENDPOINT RAW CONCURRENCY
"""

import base64
import concurrent.futures
import hashlib
import json
import os
import resource
import sys
import time

import boto3
import botocore.config

BLOCK = 524288


def main():
    endpoint, raw, conc = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cfg = botocore.config.Config(max_pool_connections=conc, retries={"mode": "standard"})
    ebs = boto3.client("ebs", endpoint_url=endpoint, config=cfg)
    size = os.path.getsize(raw)
    n = (size + BLOCK - 1) // BLOCK
    fd = os.open(raw, os.O_RDONLY)
    t0 = time.monotonic()
    snap = ebs.start_snapshot(VolumeSize=max(1, (size + 2**30 - 1) // 2**30),
                              Description="boto3 reference")["SnapshotId"]
    digests = [None] * n

    def put(i):
        data = os.pread(fd, BLOCK, i * BLOCK)
        data += b"\0" * (BLOCK - len(data))
        d = hashlib.sha256(data).digest()
        digests[i] = d
        ebs.put_snapshot_block(SnapshotId=snap, BlockIndex=i, BlockData=data,
                               DataLength=BLOCK, Checksum=base64.b64encode(d).decode(),
                               ChecksumAlgorithm="SHA256")

    # Bounded like imgbuild: at most `conc` blocks read and in flight at once.
    with concurrent.futures.ThreadPoolExecutor(max_workers=conc) as pool:
        pending = set()
        for i in range(n):
            if len(pending) >= conc:
                done, pending = concurrent.futures.wait(
                    pending, return_when=concurrent.futures.FIRST_COMPLETED)
                for f in done:
                    f.result()
            pending.add(pool.submit(put, i))
        for f in concurrent.futures.as_completed(pending):
            f.result()
    agg = base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode()
    ebs.complete_snapshot(SnapshotId=snap, ChangedBlocksCount=n, Checksum=agg,
                          ChecksumAlgorithm="SHA256", ChecksumAggregationMethod="LINEAR")
    secs = time.monotonic() - t0
    print(json.dumps({"snapshot": snap, "blocks": n, "bytes": n * BLOCK, "seconds": secs,
                      "checksum": agg,
                      "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


if __name__ == "__main__":
    main()
