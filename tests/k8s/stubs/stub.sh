#!/bin/sh
# stub.sh: stand-ins for the commands the imgbuild-k8s-* scripts run, for
# tests/integration/42-k8s-node.sh. Installed as symlinks named after each command; every
# call is appended to $STUB_DIR/calls as "<command> <args...>", state lives in $STUB_DIR,
# and $IMGBUILD_ROOT is the node's root, as for the scripts.
#
#   logger     appends its arguments to $STUB_DIR/journal
#   systemctl  exits $STUB_SYSTEMCTL_RC (0)
#   ip         `ip -4 route get ...`: a default route with source $STUB_IP_SRC (10.0.2.15)
#   hostname   prints $STUB_HOSTNAME (Node-A)
#   kubeadm    init/join write kubelet.conf (and admin.conf for init) under $IMGBUILD_ROOT,
#              copy the --config file to $STUB_DIR/kubeadm-<init|join>.yaml;
#              exits 1 when $STUB_KUBEADM_FAIL is set
#   kubectl    fails while $STUB_DIR/kubectl-fails holds a count above 0 (decremented)
#              or when $STUB_KUBECTL_FAIL is set
#   ctr        `version` fails when $STUB_DIR/ctr-down exists; `images ls [-q]`, `images
#              import FILE`, `images label NAME K=V` on a store in $STUB_DIR/ctr-store
#              ("name digest labels" a line). A fake archive FILE holds "name digest"
#              lines; one whose first line is FAIL fails the import.
#   crictl     `ps` prints $STUB_ETCD_ID (etcd0123) unless it is empty; `exec ... snapshot
#              save PATH` writes $IMGBUILD_ROOT/PATH
#   istioctl, aws, swapoff, anything else: recorded, exit 0
set -eu
me=${0##*/}
: "${STUB_DIR:?STUB_DIR must be set}"
R=${IMGBUILD_ROOT:-}
printf '%s %s\n' "$me" "$*" >>"$STUB_DIR/calls"

store=$STUB_DIR/ctr-store

case $me in
logger)
	printf '%s\n' "$*" >>"$STUB_DIR/journal"
	;;
systemctl)
	exit "${STUB_SYSTEMCTL_RC:-0}"
	;;
ip)
	if [ "$*" = "-4 route get 1.1.1.1" ]; then
		printf '1.1.1.1 via 10.0.2.2 dev eth0 src %s uid 0 \n    cache \n' "${STUB_IP_SRC:-10.0.2.15}"
	else
		echo "ip stub: unexpected arguments: $*" >&2
		exit 2
	fi
	;;
hostname)
	printf '%s\n' "${STUB_HOSTNAME:-Node-A}"
	;;
kubeadm)
	[ -z "${STUB_KUBEADM_FAIL:-}" ] || {
		echo "[preflight] stub failure" >&2
		exit 1
	}
	sub=$1
	shift
	cfg=""
	while [ $# -gt 0 ]; do
		case $1 in
		--config) cfg=$2; shift ;;
		--config=*) cfg=${1#--config=} ;;
		esac
		shift
	done
	[ -n "$cfg" ] && cp "$cfg" "$STUB_DIR/kubeadm-$sub.yaml"
	mkdir -p "$R/etc/kubernetes"
	case $sub in
	init)
		echo "apiVersion: v1" >"$R/etc/kubernetes/admin.conf"
		echo "apiVersion: v1" >"$R/etc/kubernetes/kubelet.conf"
		echo "Your Kubernetes control-plane has initialized successfully!"
		;;
	join)
		echo "apiVersion: v1" >"$R/etc/kubernetes/kubelet.conf"
		echo "This node has joined the cluster"
		;;
	esac
	;;
kubectl)
	[ -z "${STUB_KUBECTL_FAIL:-}" ] || {
		echo "error: stub says no" >&2
		exit 1
	}
	if [ -f "$STUB_DIR/kubectl-fails" ]; then
		n=$(cat "$STUB_DIR/kubectl-fails")
		if [ "$n" -gt 0 ]; then
			echo $((n - 1)) >"$STUB_DIR/kubectl-fails"
			echo "The connection to the server 10.77.0.10:6443 was refused - did you specify the right host or port?" >&2
			exit 1
		fi
	fi
	echo "configured (stub)"
	;;
ctr)
	ns=default
	while [ $# -gt 0 ]; do
		case $1 in
		-n | --namespace) ns=$2; shift 2 ;;
		-*) shift ;;
		*) break ;;
		esac
	done
	case ${1:-} in
	version)
		[ ! -e "$STUB_DIR/ctr-down" ] || {
			echo "ctr: failed to dial \"/run/containerd/containerd.sock\": connection refused" >&2
			exit 1
		}
		echo "Server: Version: 1.7.18 (stub)"
		exit 0
		;;
	esac
	[ "$ns" = k8s.io ] || {
		echo "ctr stub: namespace $ns, not k8s.io" >&2
		exit 2
	}
	[ "${1:-}" = images ] || {
		echo "ctr stub: unexpected: $*" >&2
		exit 2
	}
	touch "$store"
	case ${2:-} in
	ls | list)
		if [ "${3:-}" = -q ]; then
			awk '{ print $1 }' "$store"
		else
			printf 'REF TYPE DIGEST SIZE PLATFORMS LABELS \n'
			awk '{ printf "%s application/vnd.oci.image.manifest.v1+json %s 1.2 MiB linux/amd64 %s \n", $1, $2, $3 }' "$store"
		fi
		;;
	import)
		f=$3
		[ -f "$f" ] || {
			echo "ctr: open $f: no such file or directory" >&2
			exit 1
		}
		if [ "$(head -n 1 "$f")" = FAIL ]; then
			echo "ctr: failed to import: unexpected EOF" >&2
			exit 1
		fi
		while read -r name digest; do
			labels=$(awk -v n="$name" '$1 == n { print $3 }' "$store")
			awk -v n="$name" '$1 != n' "$store" >"$store.new"
			printf '%s %s %s\n' "$name" "$digest" "${labels:--}" >>"$store.new"
			mv "$store.new" "$store"
			echo "unpacking $name ($digest)...done"
		done <"$f"
		;;
	label)
		name=$3 kv=$4
		awk -v n="$name" '$1 == n { f = 1 } END { exit !f }' "$store" || {
			echo "ctr: image \"$name\": not found" >&2
			exit 1
		}
		awk -v n="$name" -v kv="$kv" '$1 == n { $3 = ($3 == "-" ? kv : $3 "," kv) } { print }' "$store" >"$store.new"
		mv "$store.new" "$store"
		echo "$name"
		;;
	*)
		echo "ctr stub: unexpected: $*" >&2
		exit 2
		;;
	esac
	;;
crictl)
	case ${1:-} in
	ps) [ -z "${STUB_ETCD_ID-etcd0123}" ] || echo "${STUB_ETCD_ID-etcd0123}" ;;
	exec)
		for last in "$@"; do :; done
		mkdir -p "$(dirname "$R$last")"
		echo "etcd snapshot (stub)" >"$R$last"
		echo "Snapshot saved at $last"
		;;
	esac
	;;
esac
exit 0
