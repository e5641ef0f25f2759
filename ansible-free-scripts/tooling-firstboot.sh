#!/bin/sh
# First boot of a tooling host. For now it records its role; the role's own issue fills it.
set -eu
printf '%s\n' "tooling" > /var/lib/imgbuild/tooling.ready
echo "imgbuild-tooling: tooling first-boot script ran"
