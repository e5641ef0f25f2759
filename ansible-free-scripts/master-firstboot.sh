#!/bin/sh
# First boot of a master host. For now it records its role; the role's own issue fills it.
set -eu
printf '%s\n' "master" > /var/lib/imgbuild/master.ready
echo "imgbuild-master: master first-boot script ran"
