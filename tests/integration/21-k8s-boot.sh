#!/bin/sh
# A master and a worker boot together with the seeds `imgbuild cluster plan` writes, joined
# by a private network (a QEMU socket link, static addresses from the plan's
# network-config) plus a user-mode NIC each for SSH from the test. Then, over SSH:
# binaries at their pinned paths and modes, modules and sysctls active, containerd running
# with the baked configuration, every preloaded image imported into k8s.io and pinned,
# kubeadm invoked with the configuration rendered from user-data (init on the master, join
# on the worker with the master's address, token and CA hash), the add-ons applied, and
# the secrets' files mode 0600.
#
# Upstream kubeadm, kubelet, kubectl and the control-plane images cannot be downloaded
# here: 10-build baked stand-ins for them (tests/k8s/mkpayloads.py). With
# IMGBUILD_K8S_REAL=1 (images built from a cache holding the real payloads, after
# `imgbuild fetch` on a connected machine) the same test requires `kubectl get nodes` to
# show every node Ready instead.
. "$(dirname "$0")/../lib.sh"
t_init 21-k8s-boot
OUT=$TOP/tests/tmp/images/out
P=$TOP/tests/tmp/images
[ -f "$OUT/master.qcow2" ] && [ -f "$OUT/worker.qcow2" ] || fail "no images: run 10-build first"
command -v ssh >/dev/null || skip "ssh is not installed (make deps)"
LIMIT=${IMGBUILD_BOOT_TIMEOUT:-900}
REAL=${IMGBUILD_K8S_REAL:-0}

cleanup() {
	for f in "$T"/*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	sleep 1
	for f in "$T"/*.pid; do
		[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
}
trap cleanup EXIT
trap 'exit 1' INT TERM
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ssh-keygen -q -t ed25519 -N '' -f "$T/key" || fail "ssh-keygen"
"$IMGBUILD" -C "$P" cluster plan --dir "$T/plan" --master-address 10.77.0.10 --workers 1 \
	--network 10.77.0.0/24 --ssh-key "$T/key.pub" >"$T/plan.out" 2>&1 || { cat "$T/plan.out"; fail "cluster plan"; }
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$T/plan/plan.json")
CAHASH=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ca_hash"])' "$T/plan/plan.json")
[ -n "$TOKEN" ] && [ -n "$CAHASH" ] || fail "plan.json has no token or CA hash"

# The plan's network-config finds each NIC by MAC: the private one is 52:54 then the
# address's four bytes, the uplink 52:55 then the same (doc/kubernetes.md).
mac() { printf '%s:%02x:%02x:%02x:%02x' "$1" $(echo "$2" | tr . ' '); }
LINK=$(free_port)
SSH_M=$(free_port)
SSH_W=$(free_port)
net() { # net ADDRESS SSH_PORT listen|connect
	echo "-netdev user,id=n0,hostfwd=tcp:127.0.0.1:$2-:22 -device virtio-net-pci,netdev=n0,mac=$(mac 52:55 "$1") -netdev socket,id=n1,$3=127.0.0.1:$LINK -device virtio-net-pci,netdev=n1,mac=$(mac 52:54 "$1")"
}

boot() { # boot NAME ROLE ADDRESS SSH_PORT listen|connect FIRMWARE
	qemu-img create -q -f qcow2 -F qcow2 -b "$OUT/$2.qcow2" "$T/$1.disk.qcow2" 4G
	BOOT_KEEP=1 BOOT_NET=$(net "$3" "$4" "$5") boot_wait "$1" "$T/$1.disk.qcow2" \
		"$T/plan/$1.seed.iso" "$6" "$LIMIT" "imgbuild: cloud-init finished on $1"
}

# The master by BIOS, the worker by UEFI: both firmwares with the Kubernetes images.
boot master master 10.77.0.10 "$SSH_M" listen bios & pm=$!
sleep 2 # the worker's socket NIC connects to the master's
boot worker-1 worker 10.77.0.11 "$SSH_W" connect uefi & pw=$!
failed=0
wait $pm || { failed=1; echo "--- master serial (tail)"; tail -60 "$T/master.serial"; }
wait $pw || { failed=1; echo "--- worker-1 serial (tail)"; tail -60 "$T/worker-1.serial"; }
[ $failed = 0 ] || fail "master or worker did not finish cloud-init"
ok "master and worker-1 booted from the plan's seeds: cloud-init finished"

on() { # on PORT COMMAND: run as root in the guest
	port=$1
	shift
	ssh -q -i "$T/key" -p "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o ConnectTimeout=20 -o BatchMode=yes debian@127.0.0.1 "sudo sh -c '$*'"
}
on "$SSH_M" true || fail "no SSH to the master with the plan's key"
on "$SSH_W" true || fail "no SSH to the worker with the plan's key"

for port in "$SSH_M" "$SSH_W"; do
	h=$(on "$port" hostname)
	# Pinned paths and modes.
	on "$port" 'stat -c "%n %a %U" /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl /usr/local/bin/containerd /usr/local/bin/ctr /usr/local/sbin/runc /usr/local/bin/crictl /opt/cni/bin/bridge /opt/cni/bin/host-local /opt/cni/bin/loopback /opt/cni/bin/portmap' >"$T/$h.stat" ||
		{ cat "$T/$h.stat"; fail "$h: a binary is missing"; }
	awk '$2 != "755" || $3 != "root" { bad = 1; print } END { exit bad }' "$T/$h.stat" ||
		fail "$h: binaries must be 0755 root"
	# Modules and sysctls active.
	on "$port" 'grep -E "^(overlay|br_netfilter) " /proc/modules | cut -d" " -f1 | sort | tr "\n" " "' >"$T/$h.mods"
	[ "$(cat "$T/$h.mods")" = "br_netfilter overlay " ] || fail "$h: modules loaded: $(cat "$T/$h.mods")"
	on "$port" 'sysctl -n net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables | tr "\n" " "' >"$T/$h.sysctl"
	[ "$(cat "$T/$h.sysctl")" = "1 1 1 " ] || fail "$h: sysctls: $(cat "$T/$h.sysctl")"
	on "$port" 'swapon --show --noheadings | wc -l' >"$T/$h.swap"
	[ "$(cat "$T/$h.swap")" = 0 ] || fail "$h: swap is on"
	# containerd running, with the baked configuration as it understood it.
	[ "$(on "$port" systemctl is-active containerd)" = active ] || fail "$h: containerd is not running"
	on "$port" '/usr/local/bin/containerd config dump' >"$T/$h.containerd" || fail "$h: containerd config dump"
	grep -q 'SystemdCgroup = true' "$T/$h.containerd" || fail "$h: containerd runs without SystemdCgroup"
	grep -q 'sandbox_image = "registry.k8s.io/pause:3.9"' "$T/$h.containerd" || fail "$h: wrong sandbox image"
	grep -q 'config_path = "/etc/containerd/certs.d"' "$T/$h.containerd" || fail "$h: no registry config_path"
	# Every preloaded image in k8s.io, with the baked digest, pinned.
	on "$port" 'ctr -n k8s.io images ls' >"$T/$h.images" || fail "$h: ctr images ls"
	on "$port" 'grep -v "^#" /var/lib/imgbuild/images/index.tsv' >"$T/$h.index"
	[ -s "$T/$h.index" ] || fail "$h: no preloaded images"
	while IFS="$(printf '\t')" read -r ref digest _; do
		line=$(awk -v r="$ref" '$1 == r' "$T/$h.images")
		[ -n "$line" ] || fail "$h: $ref is not in k8s.io"
		echo "$line" | grep -q "$digest" || fail "$h: $ref has another digest than $digest"
		echo "$line" | grep -q 'io.cri-containerd.pinned=pinned' || fail "$h: $ref is not pinned"
	done <"$T/$h.index"
	echo "$h: $(wc -l <"$T/$h.index") images imported into k8s.io with their digests and pinned"
	on "$port" 'stat -c "%a" /etc/imgbuild/cluster.env' >"$T/$h.envmode"
	[ "$(cat "$T/$h.envmode")" = 600 ] || fail "$h: cluster.env is mode $(cat "$T/$h.envmode")"
	[ "$(on "$port" systemctl is-enabled kubelet)" = enabled ] || fail "$h: kubelet is not enabled"
done
ok "both nodes: pinned binaries, overlay and br_netfilter loaded, sysctls on, no swap, containerd with SystemdCgroup and pause:3.9, preloaded images in k8s.io pinned"

on "$SSH_W" 'ping -c 1 -W 5 10.77.0.10' >/dev/null || fail "the worker cannot reach the master on the private network"
[ "$(on "$SSH_M" 'stat -c %a /etc/kubernetes/pki/ca.key')" = 600 ] || fail "ca.key is not 0600"
cmp -s "$T/plan/ca.crt" "$(on "$SSH_M" 'cat /etc/kubernetes/pki/ca.crt' >"$T/ca.crt"; echo "$T/ca.crt")" ||
	fail "the master's CA is not the plan's"
ok "private network up, the master holds the plan's CA (key 0600)"

if [ "$REAL" = 1 ]; then
	i=0
	until on "$SSH_M" 'kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes --no-headers' >"$T/nodes" &&
		[ "$(grep -c ' Ready ' "$T/nodes")" = 2 ]; do
		i=$((i + 1))
		[ $i -lt 90 ] || { cat "$T/nodes"; fail "not every node is Ready after 15 minutes"; }
		sleep 10
	done
	ok "real kubeadm: kubectl get nodes shows master and worker-1 Ready"
	exit 0
fi

# Stand-ins: what kubeadm and kubectl were asked to do.
on "$SSH_M" 'cat /var/log/imgbuild-test/kubeadm.args' >"$T/m.kubeadm" || fail "kubeadm never ran on the master"
grep -q '^init --config /etc/kubernetes/imgbuild/kubeadm.yaml .*--upload-certs' "$T/m.kubeadm" ||
	{ cat "$T/m.kubeadm"; fail "kubeadm init was not run with the rendered configuration"; }
on "$SSH_M" 'cat /var/log/imgbuild-test/kubeadm-init.yaml' >"$T/m.kubeadm.yaml"
for want in "advertiseAddress: \"\\{0,1\\}10.77.0.10" "token: \"\\{0,1\\}$TOKEN" "podSubnet: \"\\{0,1\\}10.244.0.0/16" \
	"kubernetesVersion: \"\\{0,1\\}v1.30.2" 'node-ip: "10.77.0.10"' "cgroupDriver: \"\\{0,1\\}systemd" "service-node-port-range" "name: \"\\{0,1\\}master"; do
	grep -q "$want" "$T/m.kubeadm.yaml" || { cat "$T/m.kubeadm.yaml"; fail "kubeadm.yaml lacks $want"; }
done
[ "$(on "$SSH_M" 'stat -c %a /etc/kubernetes/imgbuild/kubeadm.yaml')" = 600 ] || fail "kubeadm.yaml is not 0600"
on "$SSH_M" 'cat /var/log/imgbuild-test/kubectl.args' >"$T/m.kubectl" || fail "kubectl never ran on the master"
for f in 10-flannel 20-node-exporter 30-app-prod 31-app-dev; do
	grep -q "apply -f /etc/kubernetes/addons/$f.yaml" "$T/m.kubectl" || { cat "$T/m.kubectl"; fail "$f was not applied"; }
done
grep -q istio "$T/m.kubectl" && fail "the Istio add-on was applied though it is off"
ok "master: kubeadm init ran with the rendered configuration (address, node name, token, pod CIDR, version), add-ons applied in order"

on "$SSH_W" 'cat /var/log/imgbuild-test/kubeadm.args' >"$T/w.kubeadm" || fail "kubeadm never ran on the worker"
grep -q '^join --config /etc/kubernetes/imgbuild/join.yaml' "$T/w.kubeadm" || { cat "$T/w.kubeadm"; fail "kubeadm join was not run"; }
on "$SSH_W" 'cat /var/log/imgbuild-test/kubeadm-join.yaml' >"$T/w.join.yaml"
for want in "10.77.0.10:6443" "$TOKEN" "$CAHASH" 'node-ip: "10.77.0.11"'; do
	grep -q "$want" "$T/w.join.yaml" || { cat "$T/w.join.yaml"; fail "join.yaml lacks $want"; }
done
ok "worker: kubeadm join ran with the master's address, the token and the CA hash from the plan"
echo "NOTE: no real control plane was started: kubeadm, kubelet, kubectl and the images were stand-ins (set IMGBUILD_K8S_REAL=1 with real payloads)"
exit 0
