#!/bin/sh
# First boot of a worker host. For now it records its role; the role's own issue fills it.
set -eu
printf '%s\n' "worker" > /var/lib/imgbuild/worker.ready
echo "imgbuild-worker: worker first-boot script ran"
