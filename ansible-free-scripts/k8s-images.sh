#!/bin/sh
# imgbuild-k8s-images: import the container images baked in /var/lib/imgbuild/images/ into
# containerd's k8s.io namespace and pin them (doc/kubernetes.md). Run by
# imgbuild-k8s-images.service after containerd.service and before kubelet.service.
#
# index.tsv: "reference<TAB>manifest digest<TAB>archive file name" a line ('#' lines are
# comments), the archives next to it. Each archive names the image (annotation
# io.containerd.image.name) as containerd spells the reference: name:tag, and name@digest when
# the reference is pinned by digest. An image already listed under every such name with the
# manifest digest is not imported again; each is labelled io.cri-containerd.pinned=pinned so
# the kubelet's image garbage collection never removes it (the node cannot pull it back).
#
# `ctr images import ARCHIVE` with no flag: containerd 1.6 and 1.7 both import and unpack (into
# the default snapshotter, the CRI's) an archive whose index entries are single-platform
# manifests. (1.7 also has --local, on by default; 2.0 changes it: not used.)
# Exits non-zero, naming them, when any archive fails.
set -eu
k8s_prog=imgbuild-k8s-images
k8s_lib=${IMGBUILD_K8S_LIB:-/usr/local/lib/imgbuild/k8s-lib.sh}
[ -r "$k8s_lib" ] || k8s_lib=$(dirname "$0")/k8s-lib.sh
if [ ! -r "$k8s_lib" ]; then
	k8s_msg="$k8s_prog: error: /usr/local/lib/imgbuild/k8s-lib.sh is missing (bake ansible-free-scripts/k8s-lib.sh there)"
	echo "$k8s_msg" >&2
	logger -t imgbuild-k8s -p user.err -- "$k8s_msg" 2>/dev/null || :
	exit 1
fi
# shellcheck source-path=SCRIPTDIR source=k8s-lib.sh
. "$k8s_lib"
LC_ALL=C
export LC_ALL

dir=$R/var/lib/imgbuild/images
index=$dir/index.tsv
wait_limit=${IMGBUILD_K8S_CONTAINERD_WAIT:-60}
pinned=io.cri-containerd.pinned=pinned

log "starting"
if [ ! -f "$index" ]; then
	log "no $index: this image has no baked container images; nothing to do"
	exit 0
fi

# containerd's socket answers (bounded: it is started just before us).
log "waiting for containerd (at most ${wait_limit}s)"
start=$(k8s_now)
until ctr version >/dev/null 2>&1; do
	[ $(($(k8s_now) - start)) -lt "$wait_limit" ] ||
		die "containerd did not answer within ${wait_limit}s (systemctl status containerd.service)"
	sleep 1
done
log "containerd is up"

ctr_k8s() { ctr -n k8s.io "$@"; }

# The images containerd holds: "name digest labels" a line. `ctr images ls` prints REF TYPE
# DIGEST SIZE PLATFORMS LABELS, SIZE as two words ("3.2 MiB"): the digest is the third
# field, the labels ("-" or k=v,k=v) the last.
list_images() {
	ctr_k8s images ls </dev/null >"$ib_tmp/ls.out" 2>&1 || {
		ib_log_file err "$ib_tmp/ls.out"
		die "ctr -n k8s.io images ls failed"
	}
	awk 'NR > 1 && NF >= 3 { print $1, $3, $NF }' "$ib_tmp/ls.out" >"$ib_tmp/images"
}

# names REFERENCE: the names the archive gives the image, one a line, normalised as
# containerd and docker spell them (builder/oci/ref.c): docker.io/library/x for x,
# docker.io/u/x for u/x, lower-case registry, tag "latest" when there is neither tag nor digest.
names() {
	printf '%s\n' "$1" | awk '{
		ref = $0; digest = ""; tag = ""
		at = index(ref, "@")
		if (at) { digest = substr(ref, at + 1); ref = substr(ref, 1, at - 1) }
		slash = 0
		for (i = length(ref); i > 0; i--) if (substr(ref, i, 1) == "/") { slash = i; break }
		colon = 0
		for (i = length(ref); i > slash; i--) if (substr(ref, i, 1) == ":") { colon = i; break }
		if (colon) { tag = substr(ref, colon + 1); ref = substr(ref, 1, colon - 1) }
		host = ""; path = ref
		first = index(ref, "/")
		if (first) {
			h = substr(ref, 1, first - 1)
			if (h ~ /[.:A-Z]/ || h == "localhost") { host = tolower(h); path = substr(ref, first + 1) }
		}
		if (host == "" || host == "index.docker.io") host = "docker.io"
		if (host == "docker.io" && index(path, "/") == 0) path = "library/" path
		if (tag == "" && digest == "") tag = "latest"
		if (tag != "") print host "/" path ":" tag
		if (digest != "") print host "/" path "@" digest
	}'
}

# present NAME DIGEST: containerd lists NAME with target DIGEST.
present() {
	awk -v n="$1" -v d="$2" '$1 == n && $2 == d { f = 1 } END { exit !f }' "$ib_tmp/images"
}
# is_pinned NAME: NAME carries the pinned label.
is_pinned() {
	awk -v n="$1" -v l="$pinned" '$1 == n { k = split($3, a, ","); for (i = 1; i <= k; i++) if (a[i] == l) f = 1 }
		END { exit !f }' "$ib_tmp/images"
}

list_images
failed="" total=0 imported=0 kept=0
line=0
while IFS= read -r entry <&3 || [ -n "$entry" ]; do
	line=$((line + 1))
	case $entry in '#'* | '') continue ;; esac
	total=$((total + 1))
	if ! ib_index_entry "$index:$line" "$entry"; then
		failed="$failed ${ib_file:-line-$line}"
		continue
	fi
	ref=$ib_ref digest=$ib_digest file=$ib_file
	archive=$dir/$file
	image_names=$(names "$ref")
	all=1
	for n in $image_names; do present "$n" "$digest" || all=0; done
	if [ "$all" = 1 ]; then
		status="already in containerd"
		kept=$((kept + 1))
	elif [ ! -f "$archive" ]; then
		warn "$ref: archive $archive is missing"
		failed="$failed $file"
		continue
	else
		log "$ref: importing $archive"
		if ! ib_run ctr -n k8s.io images import "$archive"; then
			warn "$ref: ctr images import $archive failed"
			failed="$failed $file"
			continue
		fi
		list_images
		bad=""
		for n in $image_names; do present "$n" "$digest" || bad="$bad $n"; done
		if [ -n "$bad" ]; then
			warn "$ref: after importing $archive, containerd does not list$bad with $digest"
			failed="$failed $file"
			continue
		fi
		status="imported"
		imported=$((imported + 1))
	fi
	for n in $image_names; do
		if ! is_pinned "$n"; then
			if ! ib_run ctr -n k8s.io images label "$n" "$pinned"; then
				warn "$ref: cannot label $n $pinned"
				failed="$failed $file"
				status=""
				break
			fi
			pin_changed=1
		fi
	done
	[ -z "${pin_changed:-}" ] || list_images
	pin_changed=""
	[ -z "$status" ] || log "image $ref: $status, pinned ($digest, $(echo "$image_names" | tr '\n' ' ' | sed 's/ $//'))"
done 3<"$index"

if [ -n "$failed" ]; then
	die "$total images listed, $imported imported, $kept already there; FAILED:$failed"
fi
log "done: $total images listed, $imported imported, $kept already there, all pinned"
