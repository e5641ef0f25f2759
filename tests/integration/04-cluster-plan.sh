#!/bin/sh
# `imgbuild cluster plan`: the plan directory and its modes, the CA read back with openssl,
# the seeds read back with xorriso, every user-data accepted by cloud-init's own schema and
# every network-config rendered by cloud-init into what Debian 12 uses (ENI), reuse and
# --rotate, `seed` with and without a plan, and bad input: exit 2, one exact line, nothing
# written.
. "$(dirname "$0")/../lib.sh"
t_init 04-cluster-plan
command -v xorriso >/dev/null || skip "xorriso is not installed (make deps)"
command -v cloud-init >/dev/null || skip "cloud-init is not installed (make deps)"

# A project of its own, with the repository's user-data templates: the cluster plan needs
# only the roles' names, not what the other roles bake.
P=$T/p
mkdir -p "$P/images"
cp -r "$TOP/cloud-init" "$P/"
cat >"$P/imgbuild.yaml" <<'EOF'
project: quode-sre
debian:
  suite: bookworm
  mirror: http://deb.debian.org/debian
  architecture: amd64
output:
  dir: out
EOF
echo 'description: base' >"$P/images/base.yaml"
printf 'description: control plane\nextends: base\n' >"$P/images/master.yaml"
printf 'description: node\nextends: base\n' >"$P/images/worker.yaml"
printf 'description: tooling\nextends: base\n' >"$P/images/tooling.yaml"
ssh-keygen -q -t ed25519 -N '' -f "$T/key" 2>/dev/null || printf 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ+test test@imgbuild\n' >"$T/key.pub"

json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
# The base64 content of a write_files entry, decoded.
wf() { sed -n "\\|path: $2\$|,/content:/s/^ *content: //p" "$1" | base64 -d; }
# expect_error CODE MESSAGE CMD...: exit CODE and exactly that one error line.
expect_error() {
	code=$1 msg=$2
	shift 2
	expect_exit "$code" "$@"
	[ "$(cat "$T/err")" = "imgbuild: error: $msg" ] || fail "'$*': got '$(cat "$T/err")', expected '$msg'"
}

for bin in $(binaries); do
	rm -rf "$P/out" "$T/seeds"
	D=$P/out/cluster

	# ---- a first plan ----
	expect_exit 0 "$bin" -C "$P" cluster plan --master-address 10.77.0.10 --network 10.77.0.0/24 \
		--ssh-key "$T/key.pub" --addons istio --memory tooling=4096 --cpus master=2
	HASH=$(json "$D/plan.json" ca_hash)
	[ "$(cat "$T/out")" = "$D: cluster quode-sre, master 10.77.0.10 and 2 workers, tooling 10.77.0.13, CA $HASH (new CA, token and certificate key)" ] \
		|| fail "stdout: $(cat "$T/out")"
	[ "$(stat -c %a "$P/out")" = 755 ] || fail "output dir mode $(stat -c %a "$P/out")"
	got=$(cd "$D" && stat -c '%a %n' . ./* | sed 's|\./||' | sort -k2 | tr '\n' ' ')
	want="700 . 644 ca.crt 600 ca.key 600 master.seed.iso 600 master.user-data 600 plan.json 600 tooling.seed.iso 600 tooling.user-data 600 worker-1.seed.iso 600 worker-1.user-data 600 worker-2.seed.iso 600 worker-2.user-data "
	[ "$got" = "$want" ] || fail "files and modes: $got"
	TOKEN=$(json "$D/plan.json" token)
	CKEY=$(json "$D/plan.json" certificate_key)
	echo "$TOKEN" | grep -qxE '[a-z0-9]{6}\.[a-z0-9]{16}' || fail "token '$TOKEN'"
	echo "$CKEY" | grep -qxE '[0-9a-f]{64}' || fail "certificate key '$CKEY'"
	python3 - "$D/plan.json" <<'PY' || fail "plan.json: $(cat "$D/plan.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["cluster_name"] == "quode-sre" and d["master_address"] == "10.77.0.10", d
assert d["workers"] == 2 and d["pod_cidr"] is None and d["addons"] == ["istio"], d
assert d["network"] == "10.77.0.0/24", d
hosts = [(h["name"], h["role"], h["address"], h["user_data"], h["seed"]) for h in d["hosts"]]
assert hosts == [("master", "master", "10.77.0.10", "master.user-data", "master.seed.iso"),
                 ("worker-1", "worker", "10.77.0.11", "worker-1.user-data", "worker-1.seed.iso"),
                 ("worker-2", "worker", "10.77.0.12", "worker-2.user-data", "worker-2.seed.iso")], hosts
macs = [(h["mac"], h["uplink_mac"]) for h in d["hosts"]]
assert macs == [("52:54:0a:4d:00:0a", "52:55:0a:4d:00:0a"), ("52:54:0a:4d:00:0b", "52:55:0a:4d:00:0b"),
                ("52:54:0a:4d:00:0c", "52:55:0a:4d:00:0c")], macs
t = d["tooling"]
assert (t["name"], t["role"], t["address"], t["mac"], t["uplink_mac"], t["user_data"], t["seed"]) == \
    ("tooling", "tooling", "10.77.0.13", "52:54:0a:4d:00:0d", "52:55:0a:4d:00:0d", "tooling.user-data",
     "tooling.seed.iso"), t
assert d["machines"] == {"master": {"memory": 2048, "cpus": 2}, "worker": {"memory": 1024, "cpus": 1},
                         "tooling": {"memory": 4096, "cpus": 1}}, d["machines"]
PY
	ok "plan directory: files, modes, plan.json ($bin)"

	# ---- the CA, as openssl and kubeadm see it ----
	cli=$(openssl x509 -pubkey -noout -in "$D/ca.crt" | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)
	[ "$HASH" = "sha256:$cli" ] || fail "CA hash $HASH, openssl says $cli"
	openssl verify -CAfile "$D/ca.crt" "$D/ca.crt" >/dev/null || fail "CA does not verify itself"
	[ "$(openssl x509 -in "$D/ca.crt" -noout -subject)" = "subject=CN = kubernetes" ] || fail "subject"
	text=$(openssl x509 -in "$D/ca.crt" -noout -text)
	echo "$text" | grep -q 'Public-Key: (2048 bit)' || fail "not RSA 2048"
	echo "$text" | grep -A1 'Basic Constraints: critical' | grep -q 'CA:TRUE' || fail "basicConstraints"
	echo "$text" | grep -A1 'Key Usage: critical' | grep -qx ' *Digital Signature, Key Encipherment, Certificate Sign' || fail "keyUsage"
	echo "$text" | grep -q 'Subject Key Identifier' || fail "no subjectKeyIdentifier"
	[ "$(openssl pkey -in "$D/ca.key" -pubout | sha256sum)" = "$(openssl x509 -in "$D/ca.crt" -noout -pubkey | sha256sum)" ] \
		|| fail "ca.key does not belong to ca.crt"
	ok "CA: hash as kubeadm computes it, fields, key pair"

	# ---- seeds and user-data ----
	for h in master worker-1 worker-2 tooling; do
		iso=$D/$h.seed.iso
		label=$(blkid -o value -s LABEL "$iso")
		case "$label" in cidata|CIDATA) ;; *) fail "$h: seed label '$label'" ;; esac
		ls=$(xorriso -indev "$iso" -ls / 2>/dev/null | tr '\n' ' ')
		[ "$ls" = "'meta-data' 'network-config' 'user-data' " ] || fail "$h: seed holds $ls"
		rm -rf "$T/x" && mkdir "$T/x"
		xorriso -osirrox on -indev "$iso" -extract / "$T/x" >/dev/null 2>&1 || fail "$h: cannot read the seed"
		cmp -s "$T/x/user-data" "$D/$h.user-data" || fail "$h: seed user-data differs from $h.user-data"
		[ "$(cat "$T/x/meta-data")" = "instance-id: quode-sre-$h
local-hostname: $h" ] || fail "$h: meta-data $(cat "$T/x/meta-data")"
		cloud-init schema --config-file "$D/$h.user-data" >"$T/schema.out" 2>&1 || { cat "$T/schema.out"; fail "$h: cloud-init schema rejects the user-data"; }
		# What cloud-init makes of the network-config on Debian 12 (ENI and a udev rule).
		rm -rf "$T/nc"
		cloud-init devel net-convert -p "$T/x/network-config" -k yaml -d "$T/nc" -D debian -O eni >/dev/null 2>&1 \
			|| fail "$h: cloud-init cannot convert the network-config"
		addr=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([x["address"] for x in d["hosts"] + [d["tooling"]] if x["name"]==sys.argv[2]][0])' "$D/plan.json" "$h")
		# shellcheck disable=SC2046,SC2183 # the address's four numbers
		mac=$(printf '%02x:%02x:%02x:%02x' $(echo "$addr" | tr . ' '))
		eni=$T/nc/etc/network/interfaces.d/50-cloud-init
		grep -A1 '^iface cluster0 inet static$' "$eni" | grep -qx "    address $addr/24" || fail "$h: ENI: $(cat "$eni")"
		grep -qx 'iface uplink0 inet dhcp' "$eni" || fail "$h: ENI: $(cat "$eni")"
		grep -q 'gateway' "$eni" && fail "$h: a gateway on the cluster network"
		rules=$T/nc/etc/udev/rules.d/70-persistent-net.rules
		grep -q "ATTR{address}==\"52:54:$mac\", NAME=\"cluster0\"" "$rules" || fail "$h: udev rules: $(cat "$rules")"
		grep -q "ATTR{address}==\"52:55:$mac\", NAME=\"uplink0\"" "$rules" || fail "$h: udev rules: $(cat "$rules")"
		grep -q "$(cut -d' ' -f2 "$T/key.pub")" "$D/$h.user-data" || fail "$h: no SSH key"
		grep -q "^hostname: $h\$" "$D/$h.user-data" || fail "$h: hostname"
	done
	# The checker is live: a broken copy is refused.
	sed 's/encoding: b64/encoding: b65/' "$D/worker-1.user-data" >"$T/broken.user-data"
	cloud-init schema --config-file "$T/broken.user-data" >/dev/null 2>&1 && fail "cloud-init schema accepts a broken user-data"
	ok "seeds: cidata, user-data, meta-data, network-config; cloud-init accepts every one"

	# The master gets the CA and its key, and cluster.env with every secret; workers the
	# token and the CA hash only.
	m=$D/master.user-data
	wf "$m" /etc/kubernetes/pki/ca.crt | cmp -s - "$D/ca.crt" || fail "master: ca.crt"
	wf "$m" /etc/kubernetes/pki/ca.key | cmp -s - "$D/ca.key" || fail "master: ca.key"
	grep -q '^  - \[/usr/local/sbin/imgbuild-k8s-master\]$' "$m" || fail "master: runcmd"
	wf "$m" /etc/imgbuild/cluster.env >"$T/m.env"
	got=$(sh -c '. "$1"; echo "$K8S_CLUSTER_NAME $K8S_MASTER_ADDRESS $K8S_ADVERTISE_ADDRESS $K8S_NODE_NAME $K8S_TOKEN $K8S_CA_HASH $K8S_CERT_KEY ${K8S_POD_CIDR-unset} $K8S_ADDONS"' sh "$T/m.env")
	[ "$got" = "quode-sre 10.77.0.10 10.77.0.10 master $TOKEN $HASH $CKEY unset istio" ] || fail "master cluster.env: $got"
	python3 - "$m" <<'PY' || fail "master write_files"
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
files = {f["path"]: (f["permissions"], f["owner"], f["encoding"]) for f in d["write_files"]}
assert files == {"/etc/kubernetes/pki/ca.crt": ("0644", "root:root", "b64"),
                 "/etc/kubernetes/pki/ca.key": ("0600", "root:root", "b64"),
                 "/etc/imgbuild/cluster.env": ("0600", "root:root", "b64")}, files
PY
	for w in worker-1 worker-2; do
		u=$D/$w.user-data
		grep -q 'ca\.key' "$u" && fail "$w: user-data names the CA key"
		grep -qF "$(base64 -w0 "$D/ca.key" | cut -c1-200)" "$u" && fail "$w: user-data holds the CA key"
		grep -q '^  - \[/usr/local/sbin/imgbuild-k8s-join\]$' "$u" || fail "$w: runcmd"
		wf "$u" /etc/imgbuild/cluster.env >"$T/w.env"
		grep -q "$CKEY" "$T/w.env" && fail "$w: cluster.env holds the certificate key"
		got=$(sh -c '. "$1"; echo "$K8S_MASTER_ADDRESS $K8S_NODE_NAME $K8S_TOKEN $K8S_CA_HASH ${K8S_CERT_KEY-none} ${K8S_ADVERTISE_ADDRESS-none}"' sh "$T/w.env")
		[ "$got" = "10.77.0.10 $w $TOKEN $HASH none none" ] || fail "$w cluster.env: $got"
	done
	ok "user-data: the master has the CA and every secret, workers neither key"

	# The tooling host: the nodes to scrape and its private address in tooling.env; no
	# secret of the cluster. The nodes know where it is.
	u=$D/tooling.user-data
	for s in "$TOKEN" "$CKEY" "$(base64 -w0 "$D/ca.key" | cut -c1-200)"; do
		grep -qF "$s" "$u" && fail "tooling: user-data holds a secret of the cluster"
	done
	python3 - "$u" >"$T/tooling.env" <<'PY' || fail "tooling write_files"
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
f = [f for f in d["write_files"] if f["path"] == "/etc/imgbuild/tooling.env"][0]
assert f["permissions"] == "0600", f
print(f["content"], end="")
PY
	# As the stack's tooling-init reads it: the last KEY= line wins.
	[ "$(sed -n 's/^TOOLING_NODES=//p' "$T/tooling.env" | tail -n 1)" = "master=10.77.0.10 worker-1=10.77.0.11 worker-2=10.77.0.12" ] ||
		fail "TOOLING_NODES in tooling.env: $(cat "$T/tooling.env")"
	[ "$(sed -n 's/^TOOLING_PRIVATE_ADDR=//p' "$T/tooling.env" | tail -n 1)" = 10.77.0.13 ] ||
		fail "TOOLING_PRIVATE_ADDR in tooling.env: $(cat "$T/tooling.env")"
	for h in master worker-1 worker-2; do
		wf "$D/$h.user-data" /etc/imgbuild/cluster.env | grep -qx 'K8S_TOOLING_ADDRESS=10.77.0.13' || fail "$h: K8S_TOOLING_ADDRESS"
	done
	ok "tooling host: 10.77.0.13 after the workers, TOOLING_NODES and its address in tooling.env, K8S_TOOLING_ADDRESS on every node, machine sizes in plan.json"

	# ---- reuse, fewer workers, rotation ----
	(cd "$D" && sha256sum ./*) >"$T/sums1"
	expect_exit 0 "$bin" -C "$P" cluster plan --master-address 10.77.0.10 --network 10.77.0.0/24 \
		--ssh-key "$T/key.pub" --addons istio --memory tooling=4096 --cpus master=2
	grep -q '(CA, token and certificate key kept)$' "$T/out" || fail "second run: $(cat "$T/out")"
	(cd "$D" && sha256sum ./*) | diff "$T/sums1" - >/dev/null || fail "the same options gave other files"
	expect_exit 0 "$bin" -C "$P" cluster plan --master-address 10.77.0.10 --workers 1 --pod-cidr 10.200.0.0/16
	[ "$(json "$D/plan.json" token)" = "$TOKEN" ] || fail "token changed without --rotate"
	[ "$(json "$D/plan.json" ca_hash)" = "$HASH" ] || fail "CA changed without --rotate"
	if [ -e "$D/worker-2.user-data" ] || [ -e "$D/worker-2.seed.iso" ]; then fail "worker-2's files stayed"; fi
	# No network: no address for a tooling host, so none in the plan and none on the nodes.
	if [ -e "$D/tooling.user-data" ] || [ -e "$D/tooling.seed.iso" ]; then fail "the tooling host's files stayed"; fi
	wf "$D/worker-1.user-data" /etc/imgbuild/cluster.env | grep -qx 'K8S_TOOLING_ADDRESS=' || fail "K8S_TOOLING_ADDRESS without a tooling host"
	[ "$(json "$D/plan.json" tooling)" = None ] || fail "plan.json: tooling without a network"
	[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["machines"]["tooling"]["memory"])' "$D/plan.json")" = 3072 ] ||
		fail "machines: not the defaults"
	wf "$D/master.user-data" /etc/imgbuild/cluster.env | grep -qx 'K8S_POD_CIDR=10.200.0.0/16' || fail "pod cidr"
	wf "$D/master.user-data" /etc/imgbuild/cluster.env | grep -qx 'K8S_ADVERTISE_ADDRESS=' || fail "advertise address without a network"
	[ "$(xorriso -indev "$D/worker-1.seed.iso" -ls / 2>/dev/null | tr '\n' ' ')" = "'meta-data' 'user-data' " ] \
		|| fail "a network-config without --network"
	cp "$D/ca.key" "$T/old.key"
	expect_exit 0 "$bin" -C "$P" cluster plan --master-address 10.77.0.10 --rotate
	grep -q '(new CA, token and certificate key)$' "$T/out" || fail "rotate: $(cat "$T/out")"
	[ "$(json "$D/plan.json" token)" != "$TOKEN" ] || fail "--rotate kept the token"
	[ "$(json "$D/plan.json" ca_hash)" != "$HASH" ] || fail "--rotate kept the CA"
	[ "$(json "$D/plan.json" certificate_key)" != "$CKEY" ] || fail "--rotate kept the certificate key"
	cmp -s "$T/old.key" "$D/ca.key" && fail "--rotate kept ca.key"
	for f in "$D"/.[!.]* "$D"/*tmp*; do
		[ -e "$f" ] && fail "temporary file left: $f"
	done
	ok "reuse keeps CA, token and key (same options: same bytes); --rotate replaces them"

	# Secrets stay in the plan's 0600 files: the most verbose logs of plan and seed name
	# neither the token, nor the certificate key, nor any line of the CA's private key.
	expect_exit 0 "$bin" -C "$P" -vv cluster plan --master-address 10.77.0.10 --rotate
	cat "$T/out" "$T/err" >"$T/vv.log"
	expect_exit 0 "$bin" -C "$P" -vv seed worker --plan "$D" --hostname worker-4
	cat "$T/out" "$T/err" >>"$T/vv.log"
	[ -s "$T/vv.log" ] || fail "-vv printed nothing"
	for s in "$(json "$D/plan.json" token)" "$(json "$D/plan.json" certificate_key)" \
		"$(json "$D/plan.json" token | cut -d. -f2)"; do
		! grep -qF -- "$s" "$T/vv.log" || fail "a secret is in the -vv log: $(cat "$T/vv.log")"
	done
	grep -v -- '-----' "$D/ca.key" >"$T/ca.lines"
	! grep -qF -f "$T/ca.lines" "$T/vv.log" || fail "a line of ca.key is in the -vv log"
	ok "plan and seed at -vv log no token, certificate key or CA key"

	# ---- seed ----
	for r in master worker; do
		expect_error 2 "the $r user-data needs a cluster plan: run 'imgbuild cluster plan --master-address ADDR' (it writes every host's seed), or add --plan DIR" \
			"$bin" -C "$P" seed "$r" -o "$T/seeds"
		[ ! -e "$T/seeds" ] || fail "seed $r without a plan wrote something"
	done
	expect_exit 0 "$bin" -C "$P" cluster plan --master-address 10.77.0.10 --network 10.77.0.0/24 -q
	expect_exit 0 "$bin" -C "$P" seed worker --plan "$D" --hostname worker-3
	[ "$(cat "$T/out")" = "$D/worker-3.seed.iso" ] || fail "seed --plan: $(cat "$T/out")"
	[ "$(stat -c %a "$D/worker-3.seed.iso")" = 600 ] || fail "seed --plan mode"
	rm -rf "$T/x" && mkdir "$T/x"
	xorriso -osirrox on -indev "$D/worker-3.seed.iso" -extract / "$T/x" >/dev/null 2>&1 || fail "read worker-3 seed"
	grep -q 'addresses: \[10.77.0.13/24\]' "$T/x/network-config" || fail "worker-3 network-config: $(cat "$T/x/network-config")"
	grep -q '^local-hostname: worker-3$' "$T/x/meta-data" || fail "worker-3 meta-data"
	cloud-init schema --config-file "$T/x/user-data" >/dev/null 2>&1 || fail "worker-3 user-data"
	# A planned host's seed from `seed --plan` is the one `cluster plan` wrote.
	expect_exit 0 "$bin" -C "$P" seed worker --plan "$D" --hostname worker-2 -o "$T/seeds"
	cmp -s "$T/seeds/worker-2.seed.iso" "$D/worker-2.seed.iso" || fail "seed --plan differs from the plan's seed"
	expect_error 2 "worker 'node-a' has no address in the plan's network 10.77.0.0/24: name it worker-N" \
		"$bin" -C "$P" seed worker --plan "$D" --hostname node-a
	expect_error 2 "no cluster plan in '$T/none': run 'imgbuild cluster plan --master-address ADDR' first" \
		"$bin" -C "$P" seed worker --plan "$T/none"
	expect_exit 0 "$bin" -C "$P" seed base -o "$T/seeds" -q
	# Without a plan the tooling host's seed leaves the nodes to tooling.env's editor.
	expect_exit 0 "$bin" -C "$P" seed tooling -o "$T/seeds" -q
	rm -rf "$T/x" && mkdir "$T/x"
	xorriso -osirrox on -indev "$T/seeds/tooling.seed.iso" -extract / "$T/x" >/dev/null 2>&1 || fail "read tooling seed"
	grep -qx '      TOOLING_NODES=' "$T/x/user-data" || fail "seed tooling without a plan: $(grep TOOLING_NODES "$T/x/user-data")"
	# --no-tooling: a plan without the tooling host.
	expect_exit 0 "$bin" -C "$P" cluster plan --dir "$T/nt" --master-address 10.77.0.10 --network 10.77.0.0/24 --no-tooling
	grep -q 'and 2 workers, CA' "$T/out" || fail "--no-tooling: $(cat "$T/out")"
	[ ! -e "$T/nt/tooling.user-data" ] || fail "--no-tooling planned a tooling host"
	wf "$T/nt/master.user-data" /etc/imgbuild/cluster.env | grep -qx 'K8S_TOOLING_ADDRESS=' || fail "--no-tooling: K8S_TOOLING_ADDRESS"
	ok "seed: master and worker need a plan; --plan renders any worker-N"

	# ---- bad input: exit 2, one line, nothing written ----
	N=$T/none
	bad() {
		msg=$1
		shift
		expect_error 2 "$msg" "$bin" -C "$P" cluster plan --dir "$N" "$@"
		[ ! -e "$N" ] || fail "'$*' wrote $N"
	}
	bad "bad master address '10.77.0': expected an IPv4 address like 10.77.0.10" --master-address 10.77.0
	bad "bad master address '10.77.0.300': expected an IPv4 address like 10.77.0.10" --master-address 10.77.0.300
	bad "bad --network '10.77.0.0/33': expected an IPv4 network like 10.77.0.0/24" --master-address 10.77.0.10 --network 10.77.0.0/33
	bad "bad --network '10.77.0.1/24': host bits are set (the network is 10.77.0.0/24)" --master-address 10.77.0.10 --network 10.77.0.1/24
	bad "master address 10.78.0.10 is not in --network 10.77.0.0/24" --master-address 10.78.0.10 --network 10.77.0.0/24
	bad "bad value '0' for --workers: expected a number from 1 to 64" --master-address 10.77.0.10 --workers 0
	bad "bad value '65' for --workers: expected a number from 1 to 64" --master-address 10.77.0.10 --workers 65
	bad "--ssh-key: cannot open '$T/nokey.pub': No such file or directory" --master-address 10.77.0.10 --ssh-key "$T/nokey.pub"
	bad "'$P/imgbuild.yaml' does not look like an SSH public key" --master-address 10.77.0.10 --ssh-key "$P/imgbuild.yaml"
	bad "bad --pod-cidr '10.244.0.0': expected an IPv4 network like 10.244.0.0/16" --master-address 10.77.0.10 --pod-cidr 10.244.0.0
	bad "bad add-on name 'Istio' in --addons: use a-z, 0-9 and '-'" --master-address 10.77.0.10 --addons Istio
	bad "'cluster plan' needs --master-address ADDR (the master's IPv4 address, which workers join)"
	bad "bad value 'db=1024' for --memory: expected a number from 256 to 1048576, or ROLE=N items (master, worker, tooling) separated by commas" \
		--master-address 10.77.0.10 --memory db=1024
	bad "bad value 'worker=0' for --cpus: expected a number from 1 to 64, or ROLE=N items (master, worker, tooling) separated by commas" \
		--master-address 10.77.0.10 --cpus worker=0
	bad "bad value 'efi' for --firmware: expected bios or uefi" --master-address 10.77.0.10 --firmware efi
	bad "--network has no address left for the tooling host after 4 workers (a larger network, or --no-tooling)" \
		--master-address 10.77.0.1 --network 10.77.0.0/28 --workers 4
	bad "master address 10.77.0.13 is the tooling host's (the one after the workers'): another master address, or --no-tooling" \
		--master-address 10.77.0.13 --network 10.77.0.0/24
	# A bad option leaves an existing plan as it was.
	(cd "$D" && sha256sum ./*) >"$T/sums2"
	expect_exit 2 "$bin" -C "$P" cluster plan --master-address 10.77.0.10 --ssh-key "$T/nokey.pub" --rotate
	(cd "$D" && sha256sum ./*) | diff "$T/sums2" - >/dev/null || fail "a failed plan changed the directory"
	expect_exit 2 "$bin" -C "$P" cluster frobnicate
	grep -q '^usage: imgbuild cluster' "$T/err" || fail "no usage for an unknown subcommand"
	tail -1 "$T/err" | grep -qx "imgbuild: error: unknown 'cluster' subcommand 'frobnicate' (expected: plan, up, status, ssh, logs or down)" || fail "unknown subcommand: $(cat "$T/err")"
	expect_exit 2 "$bin" -C "$P" cluster
	expect_error 2 "option '--rotate' does not apply to 'seed'" "$bin" -C "$P" seed worker --rotate
	ok "bad input: exit 2, one exact line, nothing written ($bin)"
done
