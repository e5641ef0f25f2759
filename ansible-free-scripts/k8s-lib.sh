# shellcheck shell=sh
# k8s-lib.sh: what the imgbuild-k8s-* host scripts share. Baked to
# /usr/local/lib/imgbuild/k8s-lib.sh and sourced (see doc/kubernetes.md).
#
# Environment (for tests; a booted node sets none of them):
#   IMGBUILD_ROOT          prefix of every /etc, /var and /proc path the scripts read or write
#                          (not of paths written into configuration files, nor of commands)
#   IMGBUILD_K8S_ENV_UID   owner cluster.env must have; honoured only with IMGBUILD_ROOT set,
#                          else root (0) is required
#   IMGBUILD_K8S_RETRY_SLEEP, IMGBUILD_K8S_APPLY_TIMEOUT, IMGBUILD_K8S_CONTAINERD_WAIT
#                          seconds between retries / to keep retrying / to wait for containerd
#   PATH                   commands (kubeadm, kubectl, ctr, crictl, systemctl, logger, ip, ...)
#   IMGBUILD_K8S_LIB       this file, when not at /usr/local/lib/imgbuild/ (nor next to the script)
# and, per script: IMGBUILD_K8S_JOIN_TIMEOUT (join), IMGBUILD_BACKUP_KEEP and
# IMGBUILD_ETCD_SNAPSHOT_TIMEOUT (etcd snapshot).
# Every message goes to stderr and to the journal (logger -t imgbuild-k8s), prefixed with the
# script's name ($k8s_prog, set before sourcing).

R=${IMGBUILD_ROOT:-}
: "${k8s_prog:=imgbuild-k8s}"
# These are for the scripts that source this file.
# shellcheck disable=SC2034
K8S_CRI_SOCKET=unix:///var/run/containerd/containerd.sock
# shellcheck disable=SC2034
K8S_ADMIN_CONF=$R/etc/kubernetes/admin.conf
# shellcheck disable=SC2034
K8S_STATE_DIR=$R/var/lib/imgbuild

# The common part (messages, scratch directory, ib_run, ib_match), from beside this file;
# $k8s_lib is where the sourcing script found this one.
# shellcheck disable=SC2034 # read by imgbuild-lib.sh
ib_prog=$k8s_prog ib_tag=imgbuild-k8s
# shellcheck source-path=SCRIPTDIR source=imgbuild-lib.sh
. "$(dirname "${k8s_lib:-/usr/local/lib/imgbuild/k8s-lib.sh}")/imgbuild-lib.sh"

k8s_now() { date +%s; }

# k8s_retry WHAT TIMEOUT COMMAND...: run COMMAND until it succeeds or TIMEOUT seconds
# have passed (the API server takes a while to come up; CRDs take a moment to be served).
k8s_retry() {
	k8s_what=$1 k8s_limit=$2
	shift 2
	k8s_deadline=$(($(k8s_now) + k8s_limit))
	k8s_try=1
	while :; do
		k8s_rc=0
		"$@" </dev/null >"$ib_tmp/retry.out" 2>&1 || k8s_rc=$?
		if [ "$k8s_rc" = 0 ]; then
			ib_log_file info "$ib_tmp/retry.out"
			log "$k8s_what: done (attempt $k8s_try)"
			return 0
		fi
		if [ "$(k8s_now)" -ge "$k8s_deadline" ]; then
			ib_log_file err "$ib_tmp/retry.out"
			die "$k8s_what: still failing (exit $k8s_rc) after ${k8s_limit}s and $k8s_try attempts"
		fi
		log "$k8s_what: attempt $k8s_try failed (exit $k8s_rc: $(tail -n 1 "$ib_tmp/retry.out")); retrying in ${IMGBUILD_K8S_RETRY_SLEEP:-5}s"
		sleep "${IMGBUILD_K8S_RETRY_SLEEP:-5}"
		k8s_try=$((k8s_try + 1))
	done
}

K8S_RE_OCTET='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
K8S_RE_IPV4="($K8S_RE_OCTET\\.){3}$K8S_RE_OCTET"
# shellcheck disable=SC2034
K8S_RE_CIDR="$K8S_RE_IPV4/([0-9]|[12][0-9]|3[0-2])"
K8S_RE_DNS='[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'
# shellcheck disable=SC2034
K8S_RE_LABEL='[a-z0-9]([-a-z0-9]*[a-z0-9])?'

# Validation problems are collected, then reported together by k8s_check_done.
k8s_problems=""
k8s_problem() { k8s_problems="$k8s_problems$ib_nl  - $*"; }
# k8s_need NAME ERE DESCRIPTION [secret]: $NAME must be set and match ERE. A secret's value
# is never shown.
k8s_need() {
	eval "k8s_v=\${$1:-}"
	if [ -z "$k8s_v" ]; then
		k8s_problem "$1 is missing or empty (expected $3)"
	elif ! ib_match "$k8s_v" "$2"; then
		if [ "${4:-}" = secret ]; then
			k8s_problem "$1 (value not shown: a secret) is not $3"
		else
			k8s_problem "$1='$k8s_v' is not $3"
		fi
	fi
}
# k8s_may NAME ERE DESCRIPTION: $NAME may be empty, else must match ERE.
k8s_may() {
	eval "k8s_v=\${$1:-}"
	[ -z "$k8s_v" ] || k8s_need "$@"
}
k8s_check_done() {
	[ -z "$k8s_problems" ] ||
		die "invalid configuration in $R/etc/imgbuild/kubernetes.env or $R/etc/imgbuild/cluster.env:$k8s_problems"
}

# k8s_check_private FILE: a regular root-owned file no one else can read or write, since it
# holds secrets and is sourced as root.
k8s_check_private() {
	if [ ! -f "$1" ] || [ -L "$1" ]; then
		die "$1 is not a regular file"
	fi
	k8s_want_uid=0
	[ -n "$R" ] && k8s_want_uid=${IMGBUILD_K8S_ENV_UID:-0}
	k8s_uid=$(stat -c %u "$1") || die "cannot stat $1"
	k8s_mode=$(stat -c %a "$1") || die "cannot stat $1"
	[ "$k8s_uid" = "$k8s_want_uid" ] ||
		die "$1 is owned by uid $k8s_uid, not root: refusing to use it (it holds secrets; chown root:root $1)"
	case $k8s_mode in
	600 | 400) ;;
	*) die "$1 has mode 0$k8s_mode: refusing to use it (it holds secrets and must be 0600; chmod 0600 $1)" ;;
	esac
}

# k8s_check_trusted FILE: sourced as root, so root's and writable by no one else.
k8s_check_trusted() {
	[ -f "$1" ] || die "$1 is not a regular file"
	k8s_want_uid=0
	[ -n "$R" ] && k8s_want_uid=${IMGBUILD_K8S_ENV_UID:-0}
	k8s_uid=$(stat -c %u "$1") || die "cannot stat $1"
	k8s_mode=$(stat -c %a "$1") || die "cannot stat $1"
	[ "$k8s_uid" = "$k8s_want_uid" ] || die "$1 is owned by uid $k8s_uid, not root: refusing to source it"
	case $k8s_mode in
	*[2367]? | *[2367]) die "$1 has mode 0$k8s_mode: refusing to source a file others can write" ;;
	esac
}

# k8s_source FILE: source FILE, once a trial run in a subshell has shown it is only
# assignments that run cleanly (an unquoted value with a space would run a command).
k8s_source() {
	log "reading $1"
	if ! (
		set -e
		# shellcheck disable=SC1090
		. "$1"
	) </dev/null >"$ib_tmp/source.out" 2>&1; then
		# Only the line numbers: the shell's words could be pieces of a secret.
		k8s_lines=$(sed -n 's/^.*: \([0-9][0-9]*\): .*$/\1/p' "$ib_tmp/source.out" | sort -un | tr '\n' ' ')
		k8s_lines=${k8s_lines% }
		die "$1 is not a list of shell assignments (line ${k8s_lines:-?}; NAME=value, one a line; quote values with spaces: K8S_ADDONS=\"a b\")"
	fi
	# shellcheck disable=SC1090
	. "$1"
}

# k8s_load_env: /etc/imgbuild/kubernetes.env (baked) then /etc/imgbuild/cluster.env (user-data,
# 0600). Empty values in cluster.env keep kubernetes.env's.
k8s_load_env() {
	k8s_kenv=$R/etc/imgbuild/kubernetes.env
	k8s_cenv=$R/etc/imgbuild/cluster.env
	# Only what the files say counts, not what the caller's environment held.
	unset K8S_VERSION K8S_PAUSE_IMAGE K8S_POD_CIDR K8S_SERVICE_CIDR K8S_NODEPORT_RANGE \
		K8S_CLUSTER_NAME K8S_MASTER_ADDRESS K8S_ADVERTISE_ADDRESS K8S_NODE_NAME K8S_TOKEN \
		K8S_CA_HASH K8S_CERT_KEY K8S_ADDONS
	[ -f "$k8s_kenv" ] || die "$k8s_kenv is missing: this image was not baked as a Kubernetes node"
	k8s_check_trusted "$k8s_kenv"
	k8s_source "$k8s_kenv"
	k8s_def_pod=${K8S_POD_CIDR:-} k8s_def_svc=${K8S_SERVICE_CIDR:-}
	k8s_def_np=${K8S_NODEPORT_RANGE:-} k8s_def_ver=${K8S_VERSION:-}
	[ -e "$k8s_cenv" ] ||
		die "$k8s_cenv is missing: the user-data must write it (write_files, permissions '0600'; see doc/kubernetes.md)"
	k8s_check_private "$k8s_cenv"
	k8s_source "$k8s_cenv"
	: "${K8S_POD_CIDR:=$k8s_def_pod}" "${K8S_SERVICE_CIDR:=$k8s_def_svc}"
	: "${K8S_NODEPORT_RANGE:=$k8s_def_np}" "${K8S_VERSION:=$k8s_def_ver}"
}

# k8s_node_name: K8S_NODE_NAME, else the host name (lower case, as the kubelet does).
k8s_node_name() {
	if [ -z "${K8S_NODE_NAME:-}" ]; then
		K8S_NODE_NAME=$(hostname | tr '[:upper:]' '[:lower:]') || K8S_NODE_NAME=""
		log "K8S_NODE_NAME is empty: using the host name '$K8S_NODE_NAME'"
	fi
	k8s_need K8S_NODE_NAME "$K8S_RE_DNS" "a lower-case DNS name (the node name)"
}

# k8s_wait_images: the baked images are in containerd before kubeadm looks for them.
k8s_wait_images() {
	log "waiting for imgbuild-k8s-images.service (the baked images imported into containerd)"
	ib_run systemctl start imgbuild-k8s-images.service ||
		die "imgbuild-k8s-images.service failed: the baked images are not all in containerd (journalctl -u imgbuild-k8s-images.service)"
}

# k8s_no_swap: the kubelet refuses to run with swap on. The image has none (imgbuild's fstab
# has no swap entry and no swap package is installed); something added later is turned off.
k8s_no_swap() {
	k8s_swaps=$R/proc/swaps
	[ -r "$k8s_swaps" ] || return 0
	if [ "$(wc -l <"$k8s_swaps")" -gt 1 ]; then
		warn "swap is on ($(tail -n +2 "$k8s_swaps" | awk '{print $1}' | tr '\n' ' ')): the kubelet refuses it; turning it off"
		ib_run swapoff -a || die "swapoff -a failed: the kubelet will not start with swap on"
	fi
}

# k8s_write_private FILE: stdin to FILE, mode 0600, in a 0700 directory, atomically.
k8s_write_private() {
	k8s_dir=$(dirname "$1")
	(umask 077 && mkdir -p "$k8s_dir") || die "cannot create $k8s_dir"
	chmod 0700 "$k8s_dir"
	(umask 077 && cat >"$1.tmp") || die "cannot write $1.tmp"
	chmod 0600 "$1.tmp" || die "cannot chmod $1.tmp"
	mv -f "$1.tmp" "$1" || die "cannot write $1"
	log "wrote $1 (0600)"
}
