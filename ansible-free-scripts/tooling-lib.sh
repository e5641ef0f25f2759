# shellcheck shell=sh
# tooling-lib.sh: what the tooling host's scripts (imgbuild-tooling-images,
# imgbuild-pg-backup, imgbuild-pg-restore) share. Baked to
# /usr/local/lib/imgbuild/tooling-lib.sh and sourced.
#
# Every message goes to stderr and to the journal (logger -t imgbuild-tooling), prefixed with
# the script's name ($tl_prog, set before sourcing).
#
# Environment (for tests; a booted host sets none of them):
#   TOOLING_ENV_FILE        the stack's env file (/etc/imgbuild/tooling.env)
#   IMGBUILD_TOOLING_PROJECT  the compose project name (tooling), whose containers the
#                           scripts find by their compose labels
#   PATH                    commands (docker, logger, aws, ...)

: "${tl_prog:=imgbuild-tooling}"
# Used by the scripts that source this file.
# shellcheck disable=SC2034
TL_ENV_FILE=${TOOLING_ENV_FILE:-/etc/imgbuild/tooling.env}
TL_PROJECT=${IMGBUILD_TOOLING_PROJECT:-tooling}

# The common part (messages, scratch directory, ib_run, ib_match), from beside this file;
# $tl_lib is where the sourcing script found this one.
# shellcheck disable=SC2034 # read by imgbuild-lib.sh
ib_prog=$tl_prog ib_tag=imgbuild-tooling
# shellcheck source-path=SCRIPTDIR source=imgbuild-lib.sh
. "$(dirname "${tl_lib:-/usr/local/lib/imgbuild/tooling-lib.sh}")/imgbuild-lib.sh"

# tl_env_value FILE KEY: KEY's value in a KEY=value file (compose's env-file syntax: no
# quotes, no expansion; the last line wins). Nothing is executed.
tl_env_value() {
	[ -r "$1" ] || return 0
	sed -n "s/^$2=//p" "$1" | tail -n 1
}

# tl_read_assignments FILE NAME_ERE: export every NAME=value line of FILE whose NAME matches
# NAME_ERE; a value may be quoted with ' or ". Other lines are ignored, nothing is
# executed. FILE must be root's and writable by no one else.
tl_read_assignments() {
	tl_uid=$(stat -c %u "$1") || die "cannot stat $1"
	tl_mode=$(stat -c %a "$1") || die "cannot stat $1"
	[ "$tl_uid" = "${IMGBUILD_TOOLING_TRUSTED_UID:-0}" ] ||
		die "$1 is owned by uid $tl_uid, not root: refusing to use it"
	case $tl_mode in
	*[2367]? | *[2367]) die "$1 has mode 0$tl_mode: refusing a file others can write" ;;
	esac
	grep -E "^($2)=" "$1" >"$ib_tmp/assign" || :
	while IFS= read -r tl_line; do
		tl_name=${tl_line%%=*}
		tl_val=${tl_line#*=}
		case $tl_val in
		\"*\") tl_val=${tl_val#\"} tl_val=${tl_val%\"} ;;
		\'*\') tl_val=${tl_val#\'} tl_val=${tl_val%\'} ;;
		esac
		export "$tl_name=$tl_val"
	done <"$ib_tmp/assign"
}

# tl_container SERVICE: the id of the running container of the compose service SERVICE
# (compose v1 and v2 label their containers alike), or nothing.
tl_container() {
	docker ps -q --filter "label=com.docker.compose.project=$TL_PROJECT" \
		--filter "label=com.docker.compose.service=$1" --filter status=running 2>"$ib_tmp/ps.err" |
		head -n 1
}

# tl_lock NAME: hold an exclusive lock for the rest of the script (flock from util-linux);
# fails if another run holds it.
tl_lock() {
	command -v flock >/dev/null 2>&1 || return 0
	tl_lockdir=${IMGBUILD_TOOLING_LOCK_DIR:-/run/lock}
	[ -d "$tl_lockdir" ] || tl_lockdir=$ib_tmp
	exec 9>"$tl_lockdir/$1.lock"
	flock -n 9 || die "another $1 is running (lock $tl_lockdir/$1.lock)"
}
