#!/bin/sh
# imgbuild-tooling-images: load the container images baked in /var/lib/imgbuild/images/ into
# Docker, so that the tooling stack starts with no registry. Run at every boot by
# imgbuild-docker-images.service, after docker.service and before imgbuild-tooling.service.
#
# index.tsv: "reference<TAB>manifest digest<TAB>archive file name" a line ('#' lines are
# comments), the archives next to it. Each archive holds docker's manifest.json (docker load
# names the image by its RepoTags, the reference) and the image's config, whose digest is
# the image ID Docker gives it. An image Docker already has under the reference with that ID
# is not loaded again, so a reboot costs one `docker image ls`.
# Exits non-zero, naming them, when any image could not be loaded.
#
# The archives are loaded several at a time, largest first (IMGBUILD_LOAD_JOBS, default the
# number of CPUs, at most 4): on a small host most of a load is the daemon's own work
# (decompressing, hashing, unpacking layers) and one load at a time leaves CPUs idle.
#
# Environment (tests): IMGBUILD_IMAGES_DIR (/var/lib/imgbuild/images),
# IMGBUILD_DOCKER_WAIT (seconds to wait for the Docker daemon, 60), IMGBUILD_LOAD_JOBS.
set -eu
tl_prog=imgbuild-tooling-images
tl_lib=${IMGBUILD_TOOLING_LIB:-/usr/local/lib/imgbuild/tooling-lib.sh}
[ -r "$tl_lib" ] || tl_lib=$(dirname "$0")/tooling-lib.sh
if [ ! -r "$tl_lib" ]; then
	echo "$tl_prog: error: /usr/local/lib/imgbuild/tooling-lib.sh is missing" >&2
	exit 1
fi
# shellcheck source-path=SCRIPTDIR source=tooling-lib.sh
. "$tl_lib"
LC_ALL=C
export LC_ALL

dir=${IMGBUILD_IMAGES_DIR:-/var/lib/imgbuild/images}
index=$dir/index.tsv
wait_limit=${IMGBUILD_DOCKER_WAIT:-60}
jobs=${IMGBUILD_LOAD_JOBS:-$(nproc 2>/dev/null || echo 1)}
ib_match "$jobs" '[1-9][0-9]*' || die "IMGBUILD_LOAD_JOBS='$jobs' is not a positive number"
[ "$jobs" -le 4 ] || jobs=4

log "starting"
if [ ! -f "$index" ]; then
	log "no $index: this image has no baked container images; nothing to do"
	exit 0
fi
command -v docker >/dev/null 2>&1 || die "docker is not installed"
command -v jq >/dev/null 2>&1 || die "jq is not installed"

start=$(date +%s)
until docker version >/dev/null 2>&1; do
	[ $(($(date +%s) - start)) -lt "$wait_limit" ] ||
		die "the Docker daemon did not answer within ${wait_limit}s (systemctl status docker.service)"
	sleep 1
done

# image_id ARCHIVE: the ID docker load gives the image (the digest of its config, named by
# manifest.json). GNU tar seeks past the blobs: reading it costs little.
image_id() {
	hex=$(tar -xOf "$1" manifest.json 2>/dev/null | jq -r '.[0].Config // empty' 2>/dev/null |
		sed -n 's|^blobs/sha256/\([0-9a-f]\{64\}\)$|\1|p')
	[ -n "$hex" ] && echo "sha256:$hex"
}

# The images Docker has: "name:tag image-id" a line, names as Docker shows them (docker.io/
# and library/ left out). One call: the Docker CLI is slow to start on a small host.
list_images() {
	docker image ls --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}' >"$ib_tmp/images" 2>"$ib_tmp/ls.err" || {
		ib_log_file err "$ib_tmp/ls.err"
		die "docker image ls failed"
	}
}
# familiar REFERENCE: name:tag as `docker image ls` shows it (a digest cannot be given to
# docker load; no tag means latest).
familiar() {
	f=${1%%@*}
	case ${f##*/} in *:*) ;; *) f=$f:latest ;; esac
	case $f in docker.io/* | index.docker.io/*) f=${f#*/} ;; esac
	case $f in library/*/*) ;; library/*) f=${f#library/} ;; esac
	echo "$f"
}
# has NAME ID: Docker lists NAME with image ID ID.
has() {
	awk -v n="$1" -v i="$2" '$1 == n && $2 == i { f = 1 } END { exit !f }' "$ib_tmp/images"
}

list_images
failed="" total=0 loaded=0 kept=0 line=0 checks=""
while IFS= read -r entry <&3 || [ -n "$entry" ]; do
	line=$((line + 1))
	case $entry in '#'* | '') continue ;; esac
	total=$((total + 1))
	if ! ib_index_entry "$index:$line" "$entry"; then
		failed="$failed ${ib_file:-line-$line}"
		continue
	fi
	ref=$ib_ref file=$ib_file
	name=$(familiar "$ref")
	archive=$dir/$file
	if [ ! -f "$archive" ]; then
		warn "$ref: archive $archive is missing"
		failed="$failed $file"
		continue
	fi
	want=$(image_id "$archive") || want=""
	if [ -z "$want" ]; then
		warn "$ref: $archive has no docker manifest.json naming its config"
		failed="$failed $file"
		continue
	fi
	if has "$name" "$want"; then
		log "image $ref: already loaded ($want)"
		kept=$((kept + 1))
		continue
	fi
	printf '%s %s %s %s %s\n' "$(wc -c <"$archive")" "$ref" "$name" "$want" "$file" >>"$ib_tmp/todo"
done 3<"$index"

# Load what is missing, largest first, $jobs at a time; each load's output and exit status
# in $ib_tmp/load.N and rc.N, logged in the index's order once all are done.
if [ -s "$ib_tmp/todo" ]; then
	sort -k1,1nr "$ib_tmp/todo" | awk '{ print NR, $2, $3, $4, $5 }' >"$ib_tmp/queue"
	log "loading $(wc -l <"$ib_tmp/queue") archives, $jobs at a time: docker load -i $dir/<archive>"
	# shellcheck disable=SC2016 # $1, $2: the inner sh's arguments, from xargs
	awk '{ print $1, $5 }' "$ib_tmp/queue" |
		IMGBUILD_DIR=$dir IMGBUILD_TMP=$ib_tmp xargs -P "$jobs" -L 1 sh -c \
			'docker load -i "$IMGBUILD_DIR/$2" </dev/null >"$IMGBUILD_TMP/load.$1" 2>&1; echo $? >"$IMGBUILD_TMP/rc.$1"' sh ||
		warn "xargs reported a failure (each load's own status follows)"
	while read -r n ref name want file; do
		log "$ref: docker load -i $dir/$file"
		ib_log_file info "$ib_tmp/load.$n"
		rc=$(cat "$ib_tmp/rc.$n" 2>/dev/null) || rc=""
		if [ "$rc" != 0 ]; then
			warn "$ref: docker load -i $dir/$file failed (exit status ${rc:-unknown})"
			failed="$failed $file"
			continue
		fi
		checks="$checks$ref $name $want $file$ib_nl"
		loaded=$((loaded + 1))
	done <"$ib_tmp/queue"
fi

# What was loaded is listed under its name with its ID.
if [ -n "$checks" ]; then
	list_images
	printf '%s' "$checks" >"$ib_tmp/checks"
	while read -r ref name want file; do
		if has "$name" "$want"; then
			log "image $ref: loaded as $name ($want)"
		else
			warn "$ref: after loading $file, docker does not list $name with $want"
			failed="$failed $file"
			loaded=$((loaded - 1))
		fi
	done <"$ib_tmp/checks"
fi

if [ -n "$failed" ]; then
	die "$total images listed, $loaded loaded, $kept already there; FAILED:$failed"
fi
log "done: $total images listed, $loaded loaded, $kept already there"
