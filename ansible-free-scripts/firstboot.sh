#!/bin/sh
# imgbuild-firstboot: run the role's first-boot scripts once, in order, and remember that.
# A failing script stops the run and is retried at the next boot.
set -eu

dir=/usr/lib/imgbuild/firstboot.d
state=/var/lib/imgbuild
role=$(cat /etc/imgbuild/role 2>/dev/null || echo unknown)

mkdir -p "$state"
for script in "$dir"/*; do
	[ -x "$script" ] || continue
	name=$(basename "$script")
	if [ -e "$state/done.$name" ]; then
		continue
	fi
	echo "imgbuild-firstboot: role $role: running $name"
	"$script"
	: > "$state/done.$name"
done
: > "$state/firstboot.done"
echo "imgbuild-firstboot: role $role: all first-boot scripts done"
