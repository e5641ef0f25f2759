#!/bin/sh
# The master and worker images 10-build made, opened read-only with libguestfs (one
# guestfish session each) and held against the kubeadm node checklist: binaries and modes,
# unit symlinks, sysctl and module files, containerd's configuration keys, the rendered
# templates (no placeholder left; pause tag and pod CIDR as the spec says), the manifests
# on the master, the preloaded archives with the digests the mirror served, and nothing
# secret baked, and /etc/imgbuild/manifest.json the same as the manifest beside the image
# less its outputs. Then `imgbuild verify --role master` (the spec's checks, in one launch;
# 10-build makes the master with --no-verify).
# lane: images (reads what 10-build makes; tests/run-integration.sh)
. "$(dirname "$0")/../lib.sh"
t_init 43-k8s-image
IMG=$TOP/tests/tmp/images
OUT=$IMG/out
for r in master worker; do
	[ -f "$OUT/$r.qcow2" ] || skip "no $OUT/$r.qcow2: 10-build makes it"
done
command -v guestfish >/dev/null || skip "guestfish is missing (make deps)"
[ "$(qemu_accel)" = tcg ] && export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
PAY=$TOP/tests/tmp/10-build/payloads.txt
[ -f "$PAY" ] || fail "no $PAY: 10-build writes it"

# Everything read in one appliance launch per image, into $T/<role>/.
read_image() {
	d=$T/$1
	mkdir -p "$d"
	guestfish --ro -a "$OUT/$1.qcow2" -i >"$d/gf.out" 2>"$d/gf.err" <<EOF || { cat "$d/gf.err"; fail "$1: guestfish"; }
echo "== stat"
-stat /usr/bin/kubeadm
-stat /usr/bin/kubelet
-stat /usr/bin/kubectl
-stat /usr/local/bin/containerd
-stat /usr/local/bin/ctr
-stat /usr/local/sbin/runc
-stat /usr/local/bin/crictl
-stat /opt/cni/bin/bridge
-stat /opt/cni/bin/portmap
echo "== links"
-readlink /etc/systemd/system/multi-user.target.wants/containerd.service
-readlink /etc/systemd/system/multi-user.target.wants/kubelet.service
-readlink /etc/systemd/system/multi-user.target.wants/imgbuild-k8s-images.service
-readlink /etc/systemd/system/timers.target.wants/imgbuild-etcd-snapshot.timer
download /etc/containerd/config.toml $d/config.toml
download /etc/crictl.yaml $d/crictl.yaml
download /etc/modules-load.d/k8s.conf $d/modules.conf
download /etc/sysctl.d/90-kubernetes.conf $d/sysctl.conf
download /etc/imgbuild/kubernetes.env $d/kubernetes.env
download /etc/kubernetes-version $d/kubernetes-version
download /etc/systemd/system/kubelet.service.d/10-kubeadm.conf $d/10-kubeadm.conf
download /var/lib/imgbuild/images/index.tsv $d/index.tsv
download /etc/imgbuild/manifest.json $d/manifest.json
copy-out /var/lib/imgbuild/images $d
-copy-out /etc/kubernetes/addons $d
-copy-out /etc/kubernetes/addons.d $d
echo "== secrets"
-ls /etc/kubernetes/pki
-is-file /etc/imgbuild/cluster.env
-is-file /etc/kubernetes/admin.conf
echo "== swap"
-cat /etc/fstab
EOF
}

for r in master worker; do
	read_image $r
	d=$T/$r
	# guestfish prints "mode: 33261" (0100755) and "uid: 0" per stat.
	n=$(grep -c '^mode: 33261$' "$d/gf.out")
	[ "$n" = 9 ] || { cat "$d/gf.out"; fail "$r: $n of 9 binaries are regular 0755 files"; }
	[ "$(grep -c '^uid: 0$' "$d/gf.out")" = 9 ] || fail "$r: a binary is not owned by root"
	for u in containerd kubelet imgbuild-k8s-images; do
		grep -qx "/etc/systemd/system/$u.service" "$d/gf.out" || fail "$r: $u.service is not enabled"
	done
	grep -q 'SystemdCgroup = true' "$d/config.toml" || fail "$r: containerd without SystemdCgroup"
	grep -q 'sandbox_image = "registry.k8s.io/pause:3.9"' "$d/config.toml" || fail "$r: sandbox image"
	grep -q 'config_path = "/etc/containerd/certs.d"' "$d/config.toml" || fail "$r: certs.d"
	grep -q 'disabled_plugins.*cri' "$d/config.toml" && fail "$r: the CRI plugin is disabled"
	grep -q 'runtime-endpoint: unix:///var/run/containerd/containerd.sock' "$d/crictl.yaml" || fail "$r: crictl.yaml"
	[ "$(grep -v '^#' "$d/modules.conf" | grep -v '^$' | sort | tr '\n' ' ')" = "br_netfilter overlay " ] ||
		fail "$r: modules-load: $(cat "$d/modules.conf")"
	for kv in net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1; do
		tr -d ' ' <"$d/sysctl.conf" | grep -qx "$kv" || fail "$r: sysctl $kv missing"
	done
	sed -n '/^== swap$/,$p' "$d/gf.out" | grep -v '^#' | awk '$3 == "swap"' | grep -q . && fail "$r: a swap entry in fstab"
	grep -q '{{' "$d/config.toml" "$d/kubernetes.env" "$d/kubernetes-version" && fail "$r: a placeholder was left"
	grep -qx 'K8S_VERSION=v1.30.2' "$d/kubernetes.env" || fail "$r: kubernetes.env: $(cat "$d/kubernetes.env")"
	grep -qx 'K8S_POD_CIDR=10.244.0.0/16' "$d/kubernetes.env" || fail "$r: pod CIDR"
	[ "$(cat "$d/kubernetes-version")" = v1.30.2 ] || fail "$r: /etc/kubernetes-version"
	grep -q 'config=/var/lib/kubelet/config.yaml' "$d/10-kubeadm.conf" || fail "$r: kubelet drop-in"
	# The manifest inside is the one beside, less what no image can hold about itself.
	python3 - "$d/manifest.json" "$OUT/$r.manifest.json" <<'PY' || fail "$r: /etc/imgbuild/manifest.json"
import json, sys
inside, beside = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert "outputs" not in inside and set(beside["outputs"]) == {"raw", "qcow2"}, (inside.keys(), beside.keys())
del beside["outputs"]
assert inside == beside, [k for k in beside if inside.get(k) != beside[k]]
assert inside["images"] and inside["artifacts"] and len(inside["packages"]) > 100, inside
print(f"in-image manifest: {len(inside['packages'])} packages, {len(inside['artifacts'])} artifacts, "
      f"{len(inside['images'])} images, digest {inside['inputs']['digest'][:12]}, as beside")
PY
	# No secret: no pki, no cluster.env, no admin.conf.
	sed -n '/== secrets/,/== swap/p' "$d/gf.out" | grep -qx true && fail "$r: a cluster secret is baked"
	# Preloaded archives: the index, the manifest and what the mirror served agree, and
	# each archive's index.json names that digest.
	# promtail is also a tooling image: tests/tooling/mkimages.py, run after mkpayloads.py,
	# wrote the mirror's manifest for it last.
	python3 - "$d/index.tsv" "$OUT/$r.manifest.json" "$PAY" "$d/images" "${PAY%/*}/tooling-images.txt" <<'PY' || fail "$r: preloaded images"
import json, os, re, sys, tarfile
index = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if not l.startswith("#")]
man = {i["ref"]: i["manifest_digest"] for i in json.load(open(sys.argv[2]))["images"]}
served = {}
for l in open(sys.argv[3]):
    p = l.split()
    if p[0] == "image":
        served[p[1]] = p[3]
if os.path.exists(sys.argv[5]):
    for l in open(sys.argv[5]):
        m = re.fullmatch(r"image (\S+) .*sha256:([0-9a-f]{64})\)", l.strip())
        if m:
            ref = m.group(1)
            if "/" not in ref:
                ref = "docker.io/library/" + ref
            elif "." not in ref.split("/")[0]:
                ref = "docker.io/" + ref
            served[ref] = "sha256:" + m.group(2)
assert {ref: dg for ref, dg, _ in index} == man, (index, man)
for ref, dg, archive in index:
    assert served[ref] == dg, (ref, dg, served.get(ref))
    with tarfile.open(os.path.join(sys.argv[4], archive)) as t:
        idx = json.load(t.extractfile("index.json"))
    assert dg in [m["digest"] for m in idx["manifests"]], (archive, idx)
print(f"{len(index)} archives, digests as pinned and served")
PY
done
ok "master and worker: binaries 0755 root, units enabled, containerd keys, modules, sysctls, no swap, templates rendered, no secret, archives with the served digests, the manifest inside as beside"

# What only the master has: every control-plane image, the manifests rendered.
for img in kube-apiserver:v1.30.2 kube-controller-manager:v1.30.2 kube-scheduler:v1.30.2 kube-proxy:v1.30.2 \
	etcd:3.5.12-0 coredns/coredns:v1.11.1 pause:3.9; do
	grep -q "^registry.k8s.io/$img	" "$T/master/index.tsv" || fail "master lacks registry.k8s.io/$img"
done
grep -q kube-apiserver "$T/worker/index.tsv" && fail "the worker carries control-plane images"
grep -q 'registry.k8s.io/kube-proxy:v1.30.2' "$T/worker/index.tsv" || fail "the worker lacks kube-proxy"
grep -qx '/etc/systemd/system/imgbuild-etcd-snapshot.timer' "$T/master/gf.out" || fail "the etcd snapshot timer is not enabled"
[ -d "$T/worker/addons" ] && fail "the worker carries the manifests"
[ -f "$T/master/addons.d/istio/kiali.yaml" ] || fail "the master lacks the Istio add-on's Kiali manifest"
[ -f "$T/master/addons.d/logs/promtail.yaml" ] || fail "the master lacks the logs add-on's promtail manifest"
for h in master worker; do
	grep -q '^docker.io/grafana/promtail:2.9.8	' "$T/$h/index.tsv" || fail "$h does not preload promtail (the logs add-on)"
done
python3 "$TOP/tests/k8s/check-manifests.py" --images "$TOP/stacks/kubernetes/images.txt" \
	--var pod_cidr=10.244.0.0/16 --var app_image=docker.io/quodesre/final-project-application:1.0 "$T/master" >"$T/check.out" 2>&1 ||
	{ cat "$T/check.out"; fail "the master's rendered manifests fail the checks"; }
grep -q '"Network": "10.244.0.0/16"' "$T/master/addons/10-flannel.yaml" || fail "Flannel's network is not the pod CIDR"
ok "master: the seven kubeadm images, the etcd snapshot timer, the manifests rendered and checked; the worker has none of them"

bin=${IMGBUILD_SAN:-$IMGBUILD}
[ -x "$bin" ] || bin=$IMGBUILD
"$bin" -C "$IMG" verify --role master "$OUT/master.qcow2" >"$T/verify.out" 2>&1 || { cat "$T/verify.out"; fail "verify master"; }
grep -q 'master.qcow2: [0-9]* checks, all passed' "$T/verify.out" || fail "verify: $(tail -3 "$T/verify.out")"
ok "imgbuild verify --role master: $(grep -o '[0-9]* checks, all passed' "$T/verify.out")"
