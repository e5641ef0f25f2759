# shellcheck shell=sh
# imgbuild-lib.sh: what every imgbuild host script shares: messages, a scratch directory,
# running a command with its output logged, matching a value, reading the baked images'
# index. Baked to
# /usr/local/lib/imgbuild/imgbuild-lib.sh and sourced by k8s-lib.sh and tooling-lib.sh,
# which set before sourcing it:
#   ib_prog   the script's name, prefixed to every message
#   ib_tag    the journal tag (logger -t), also the scratch directory's prefix
# Every message goes to stderr and to the journal.

: "${ib_prog:=imgbuild}" "${ib_tag:=imgbuild}"
ib_nl='
'
ib_tab=$(printf '\t')

# ib_log PRIORITY MESSAGE...
ib_log() {
	ib_pri=$1
	shift
	printf '%s: %s\n' "$ib_prog" "$*" >&2
	logger -t "$ib_tag" -p "user.$ib_pri" -- "$ib_prog: $*" 2>/dev/null || :
}
log() { ib_log info "$@"; }
warn() { ib_log warning "warning: $*"; }
die() {
	ib_log err "error: $*"
	exit 1
}

# A private scratch directory, removed on exit.
ib_tmp=$(mktemp -d "${TMPDIR:-/tmp}/$ib_tag.XXXXXX") || {
	echo "$ib_prog: cannot create a temporary directory" >&2
	exit 1
}
trap 'rm -rf "$ib_tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ib_log_file PRIORITY FILE: log each line of a command's captured output.
ib_log_file() {
	[ -s "$2" ] || return 0
	while IFS= read -r ib_line || [ -n "$ib_line" ]; do
		ib_log "$1" "  $ib_line"
	done <"$2"
}

# ib_run COMMAND...: log it, run it with its output logged; its exit status is returned.
ib_run() {
	log "running: $*"
	ib_rc=0
	"$@" </dev/null >"$ib_tmp/run.out" 2>&1 || ib_rc=$?
	ib_log_file info "$ib_tmp/run.out"
	[ "$ib_rc" = 0 ] || warn "'$1' exited $ib_rc"
	return "$ib_rc"
}

# ib_match VALUE ERE: VALUE is one line and matches ERE as a whole.
ib_match() {
	case $1 in *"$ib_nl"*) return 1 ;; esac
	printf '%s\n' "$1" | grep -Eqx -- "$2"
}

# ib_index_entry WHERE LINE: one line of the baked images' index.tsv,
# "reference<TAB>sha256:digest<TAB>archive file name" (columns after the third, if a later
# imgbuild adds any, are ignored), into ib_ref, ib_digest and ib_file. Returns 1 with a
# warning naming WHERE ("index.tsv:3") when it is not one, or when the file name could
# leave the index's directory.
ib_index_entry() {
	IFS=$ib_tab read -r ib_ref ib_digest ib_file _ <<EOF
$2
EOF
	if [ -z "${ib_ref:-}" ] || [ -z "${ib_file:-}" ] ||
		! ib_match "$ib_digest" 'sha256:[0-9a-f]{64}' || ! ib_match "$ib_file" '[A-Za-z0-9._-]+' ||
		[ "$ib_file" = . ] || [ "$ib_file" = .. ]; then
		warn "$1: not 'reference<TAB>sha256:digest<TAB>archive': $2"
		return 1
	fi
}
