#!/bin/sh
# Record which role this host was built as, where operators and later scripts look.
set -eu
role=$(cat /etc/imgbuild/role)
mkdir -p /var/lib/imgbuild
printf '%s\n' "$role" > /var/lib/imgbuild/role
echo "imgbuild-role: this host is a '$role' (recorded in /var/lib/imgbuild/role)"
