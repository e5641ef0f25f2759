#!/bin/sh
# imgbuild-etcd-snapshot: snapshot the control plane's etcd to
# /var/backups/etcd/etcd-<UTC timestamp>.db (0600), keep the newest IMGBUILD_BACKUP_KEEP (7),
# and upload the new one to S3 when /etc/imgbuild/backup.env sets BACKUP_S3_BUCKET (optional
# BACKUP_S3_PREFIX, default etcd/<host name>/; AWS_* variables there reach the aws CLI).
# Run daily by imgbuild-etcd-snapshot.timer; does nothing on a node without the etcd static pod.
#
# etcdctl on the host is used when installed; else it runs in the etcd container
# (`crictl exec`: the etcd image has etcdctl, no shell), writing into /var/lib/etcd, the
# static pod's hostPath, from where the snapshot is moved.
#
# The outcome is reported as the tooling stack's backup metric (stacks/tooling/README.md,
# "Backup metric"), in /var/lib/node-exporter/textfile/imgbuild_backup_etcd.prom, read by
# the node-exporter DaemonSet (stacks/kubernetes/addons/20-node-exporter.yaml):
#   imgbuild_backup_last_success_timestamp_seconds{kind="etcd",db="etcd"} <unix time>
# written atomically once the snapshot is on disk and, with a bucket, uploaded; 0 until
# the first success; a failed run leaves the previous value, so BackupMissing fires.
set -eu
k8s_prog=imgbuild-etcd-snapshot
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

manifest=$R/etc/kubernetes/manifests/etcd.yaml
backups=$R/var/backups/etcd
backup_env=$R/etc/imgbuild/backup.env
keep=${IMGBUILD_BACKUP_KEEP:-7}
pki=/etc/kubernetes/pki/etcd
timeout=${IMGBUILD_ETCD_SNAPSHOT_TIMEOUT:-300}
textfile_dir=$R${IMGBUILD_TEXTFILE_DIR:-/var/lib/node-exporter/textfile}
metric=imgbuild_backup_last_success_timestamp_seconds
prom=$textfile_dir/imgbuild_backup_etcd.prom

# write_metric TIME: the textfile, atomically (a temporary name node_exporter does not read,
# then rename).
write_metric() {
	mkdir -p "$textfile_dir" || die "cannot create $textfile_dir"
	{
		echo "# HELP $metric Unix time of the last successful backup."
		echo "# TYPE $metric gauge"
		echo "$metric{kind=\"etcd\",db=\"etcd\"} $1"
	} >"$prom.tmp" || die "cannot write $prom.tmp"
	chmod 0644 "$prom.tmp"
	mv -f "$prom.tmp" "$prom" || die "cannot write $prom"
}

log "starting"
if [ ! -f "$manifest" ]; then
	log "no $manifest: not a control-plane node with a local etcd; nothing to do"
	exit 0
fi
ib_match "$keep" '[1-9][0-9]{0,3}' || die "IMGBUILD_BACKUP_KEEP='$keep' is not a number from 1 to 9999"
# Never succeeded yet: 0, so the series exists and BackupMissing can fire.
[ -f "$prom" ] || write_metric 0

if [ -f "$backup_env" ]; then
	k8s_check_trusted "$backup_env"
	set -a
	k8s_source "$backup_env"
	set +a
fi
bucket=${BACKUP_S3_BUCKET:-}
[ -z "$bucket" ] || ib_match "$bucket" '[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]' ||
	die "BACKUP_S3_BUCKET='$bucket' in $backup_env is not an S3 bucket name"

(umask 077 && mkdir -p "$backups") || die "cannot create $backups"
chmod 0700 "$backups"
ts=$(date -u +%Y%m%dT%H%M%SZ)
name=etcd-$ts.db
dest=$backups/$name
part=$backups/.$name.part
rm -f "$part"

if command -v etcdctl >/dev/null 2>&1; then
	log "snapshot with the host's etcdctl"
	ib_run env ETCDCTL_API=3 timeout "$timeout" etcdctl --endpoints https://127.0.0.1:2379 \
		--cacert "$R$pki/ca.crt" --cert "$R$pki/healthcheck-client.crt" \
		--key "$R$pki/healthcheck-client.key" snapshot save "$part" ||
		die "etcdctl snapshot save failed"
else
	command -v crictl >/dev/null 2>&1 || die "neither etcdctl nor crictl is installed: cannot reach etcd"
	cid=$(crictl ps --name '^etcd$' --state running -q 2>"$ib_tmp/crictl.err" | head -n 1) || cid=""
	if [ -z "$cid" ]; then
		ib_log_file err "$ib_tmp/crictl.err"
		die "no running etcd container (crictl ps --name '^etcd$' --state running): is the control plane up?"
	fi
	# /var/lib/etcd is the same path in the container and on the host.
	inside=/var/lib/etcd/imgbuild-snapshot.db
	rm -f "$R$inside" "$R$inside.part"
	log "snapshot in the etcd container $cid"
	ib_run crictl exec -s --timeout "$timeout" "$cid" etcdctl --endpoints https://127.0.0.1:2379 \
		--cacert "$pki/ca.crt" --cert "$pki/healthcheck-client.crt" \
		--key "$pki/healthcheck-client.key" snapshot save "$inside" ||
		die "etcdctl snapshot save in the etcd container failed"
	[ -f "$R$inside" ] || die "the snapshot $R$inside is not on the host after etcdctl wrote it"
	mv -f "$R$inside" "$part" || die "cannot move $R$inside to $part"
fi
[ -s "$part" ] || die "the snapshot is empty"
chmod 0600 "$part"
mv -f "$part" "$dest"
log "snapshot $dest ($(wc -c <"$dest") bytes)"

# Keep the newest $keep (the names sort by time).
for f in "$backups"/etcd-*.db; do
	f=${f##*/}
	! ib_match "$f" 'etcd-[0-9]{8}T[0-9]{6}Z\.db' || printf '%s\n' "$f"
done | sort >"$ib_tmp/snapshots"
n=$(wc -l <"$ib_tmp/snapshots")
if [ "$n" -gt "$keep" ]; then
	head -n $((n - keep)) "$ib_tmp/snapshots" | while IFS= read -r old; do
		rm -f "$backups/$old"
		log "removed the old snapshot $backups/$old"
	done
fi
log "$backups holds the newest $((n > keep ? keep : n)) snapshots (IMGBUILD_BACKUP_KEEP=$keep)"

if [ -z "$bucket" ]; then
	log "no BACKUP_S3_BUCKET in $backup_env: the snapshot stays on this host"
elif ! command -v aws >/dev/null 2>&1; then
	warn "BACKUP_S3_BUCKET is set but the aws CLI is not installed: $dest was not uploaded"
else
	prefix=${BACKUP_S3_PREFIX-etcd/$(hostname)/}
	ib_run aws s3 cp --only-show-errors "$dest" "s3://$bucket/$prefix$name" ||
		die "uploading $dest to s3://$bucket/$prefix$name failed (the snapshot is kept here)"
	log "uploaded $dest to s3://$bucket/$prefix$name"
fi
write_metric "$(date +%s)"
log "wrote $prom"
log "done"
