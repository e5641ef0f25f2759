#!/bin/sh
# First boot of a tooling host (imgbuild-firstboot.service, once). The stack itself is
# brought up at every boot by imgbuild-tooling.service (images loaded by
# imgbuild-docker-images.service, /etc/imgbuild/tooling.env completed by tooling-init);
# this only records the role's first boot and says where things are. It must not run
# tooling-init itself: the two would race on the generated secrets.
set -eu
mkdir -p /var/lib/imgbuild
printf '%s\n' "tooling" >/var/lib/imgbuild/tooling.ready
echo "imgbuild-tooling: tooling first-boot script ran; the stack is imgbuild-tooling.service (/opt/imgbuild/tooling), backups imgbuild-pg-backup.timer (/var/backups/postgres)"
