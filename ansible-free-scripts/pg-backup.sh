#!/bin/sh
# imgbuild-pg-backup: back up the tooling host's two PostgreSQL databases, prod and dev.
# Run daily by imgbuild-pg-backup.timer; `systemctl start imgbuild-pg-backup.service` runs it
# now.
#
# Usage: imgbuild-pg-backup [prod] [dev]     (no argument: both)
#
# For each, in the running container of the compose service postgres-<env> (found by its
# compose labels), `pg_dump -Fc` of POSTGRES_<ENV>_DB as POSTGRES_<ENV>_USER (from
# /etc/imgbuild/tooling.env, default quode; the official image trusts its local socket, so
# no password is used). The custom format is compressed, is read back by pg_restore (its
# table of contents is listed before the dump is kept) and restores selectively or whole:
# imgbuild-pg-restore restores one into a fresh database.
#
#   /var/backups/postgres/postgres-<env>-<UTC YYYYmmddTHHMMSSZ>.dump   mode 0600, dir 0700
#
# The newest IMGBUILD_BACKUP_KEEP (default 7) of each are kept. When /etc/imgbuild/backup.env
# sets BACKUP_S3_BUCKET (optional BACKUP_S3_PREFIX, default postgres/<host name>/; AWS_*
# lines there reach the aws CLI), the new dump is uploaded with `aws s3 cp`; without the
# aws CLI that is a warning and the dump stays here. A failed upload fails that database's
# backup (the local dump is kept).
#
# Then /var/lib/node-exporter/textfile/imgbuild_backup_postgres.prom is written atomically
# (stacks/tooling/README.md, "Backup metric"): imgbuild_backup_last_success_timestamp_seconds
# {kind="postgres",db="prod"|"dev"}, the end of the last successful backup of each; a failed
# one keeps its previous value, one that never succeeded is 0. Exits 1 if any failed.
#
# Environment: IMGBUILD_BACKUP_KEEP, IMGBUILD_BACKUP_DIR, IMGBUILD_TEXTFILE_DIR,
# IMGBUILD_BACKUP_ENV (/etc/imgbuild/backup.env), TOOLING_ENV_FILE, IMGBUILD_PG_DUMP_TIMEOUT
# (seconds, 3600) and those of tooling-lib.sh; set by tests only.
set -eu
tl_prog=imgbuild-pg-backup
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

backups=${IMGBUILD_BACKUP_DIR:-/var/backups/postgres}
textfile_dir=${IMGBUILD_TEXTFILE_DIR:-/var/lib/node-exporter/textfile}
backup_env=${IMGBUILD_BACKUP_ENV:-/etc/imgbuild/backup.env}
keep=${IMGBUILD_BACKUP_KEEP:-7}
timeout=${IMGBUILD_PG_DUMP_TIMEOUT:-3600}
metric=imgbuild_backup_last_success_timestamp_seconds
prom=$textfile_dir/imgbuild_backup_postgres.prom

envs=""
for arg in "$@"; do
	case $arg in
	prod | dev) envs="$envs $arg" ;;
	-h | --help)
		sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "$tl_prog: unknown argument '$arg' (usage: $tl_prog [prod] [dev])" >&2
		exit 2
		;;
	esac
done
[ -n "$envs" ] || envs="prod dev"

log "starting ($envs )"
ib_match "$keep" '[1-9][0-9]{0,3}' || die "IMGBUILD_BACKUP_KEEP='$keep' is not a number from 1 to 9999"
ib_match "$timeout" '[1-9][0-9]*' || die "IMGBUILD_PG_DUMP_TIMEOUT='$timeout' is not a number of seconds"
command -v docker >/dev/null 2>&1 || die "docker is not installed"
tl_lock imgbuild-pg-backup

if [ -f "$backup_env" ]; then
	tl_read_assignments "$backup_env" 'BACKUP_S3_BUCKET|BACKUP_S3_PREFIX|AWS_[A-Z0-9_]+'
fi
bucket=${BACKUP_S3_BUCKET:-}
[ -z "$bucket" ] || ib_match "$bucket" '[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]' ||
	die "BACKUP_S3_BUCKET='$bucket' in $backup_env is not an S3 bucket name"

(umask 077 && mkdir -p "$backups") || die "cannot create $backups"
chmod 0700 "$backups"

# The previous values of the metric: a failed backup keeps its own.
previous() {
	[ -f "$prom" ] || { echo 0; return 0; }
	v=$(sed -n "s/^$metric{kind=\"postgres\",db=\"$1\"} \\([0-9][0-9]*\\)\$/\\1/p" "$prom" | tail -n 1)
	echo "${v:-0}"
}
last_prod=$(previous prod)
last_dev=$(previous dev)

# backup ENV: one database; returns non-zero on failure (logged).
backup() {
	env=$1
	ENV=$(echo "$env" | tr '[:lower:]' '[:upper:]')
	db=$(tl_env_value "$TL_ENV_FILE" "POSTGRES_${ENV}_DB")
	user=$(tl_env_value "$TL_ENV_FILE" "POSTGRES_${ENV}_USER")
	db=${db:-quode} user=${user:-quode}
	service=postgres-$env
	cid=$(tl_container "$service")
	if [ -z "$cid" ]; then
		ib_log_file err "$ib_tmp/ps.err"
		warn "$env: no running container of the compose service $service (project $TL_PROJECT): is imgbuild-tooling.service up?"
		return 1
	fi
	name=postgres-$env-$(date -u +%Y%m%dT%H%M%SZ).dump
	dest=$backups/$name
	part=$backups/.$name.part
	rm -f "$part"
	log "$env: pg_dump -Fc of database '$db' as '$user' in container $cid ($service)"
	if ! (umask 077 && timeout "$timeout" docker exec "$cid" pg_dump -U "$user" -Fc -Z 6 "$db" \
		>"$part" 2>"$ib_tmp/dump.err"); then
		ib_log_file err "$ib_tmp/dump.err"
		rm -f "$part"
		warn "$env: pg_dump of '$db' failed (or took more than ${timeout}s)"
		return 1
	fi
	ib_log_file info "$ib_tmp/dump.err"
	# Read it back before keeping it: the archive's table of contents lists.
	if [ ! -s "$part" ] ||
		! docker exec -i "$cid" pg_restore --list <"$part" >"$ib_tmp/toc" 2>"$ib_tmp/toc.err"; then
		ib_log_file err "$ib_tmp/toc.err"
		rm -f "$part"
		warn "$env: the dump of '$db' is empty or pg_restore cannot read it back"
		return 1
	fi
	chmod 0600 "$part"
	mv -f "$part" "$dest"
	log "$env: wrote $dest ($(wc -c <"$dest") bytes, $(grep -c '^[0-9]' "$ib_tmp/toc") archive entries)"

	# Keep the newest $keep (the names sort by time).
	for f in "$backups"/postgres-"$env"-*.dump; do
		f=${f##*/}
		! ib_match "$f" "postgres-$env-[0-9]{8}T[0-9]{6}Z\\.dump" || printf '%s\n' "$f"
	done | sort >"$ib_tmp/dumps"
	n=$(wc -l <"$ib_tmp/dumps")
	if [ "$n" -gt "$keep" ]; then
		head -n $((n - keep)) "$ib_tmp/dumps" | while IFS= read -r old; do
			rm -f "$backups/$old"
			log "$env: removed the old dump $backups/$old"
		done
	fi

	if [ -z "$bucket" ]; then
		log "$env: no BACKUP_S3_BUCKET in $backup_env: the dump stays on this host"
	elif ! command -v aws >/dev/null 2>&1; then
		warn "$env: BACKUP_S3_BUCKET is set but the aws CLI is not installed: $dest was NOT uploaded to S3 (install awscli, or copy it yourself)"
	else
		prefix=${BACKUP_S3_PREFIX-postgres/$(hostname)/}
		if ! ib_run aws s3 cp --only-show-errors "$dest" "s3://$bucket/$prefix$name"; then
			warn "$env: uploading $dest to s3://$bucket/$prefix$name failed (the dump is kept here)"
			return 1
		fi
		log "$env: uploaded $dest to s3://$bucket/$prefix$name"
	fi
	return 0
}

failed=""
for env in $envs; do
	if backup "$env"; then
		eval "last_$env=\$(date +%s)"
	else
		failed="$failed $env"
	fi
done

# The metric, atomically: a temporary file in the same directory (not *.prom, which
# node_exporter would read), then rename.
mkdir -p "$textfile_dir" || die "cannot create $textfile_dir"
{
	echo "# HELP $metric Unix time of the last successful backup."
	echo "# TYPE $metric gauge"
	echo "$metric{kind=\"postgres\",db=\"prod\"} $last_prod"
	echo "$metric{kind=\"postgres\",db=\"dev\"} $last_dev"
} >"$prom.tmp" || die "cannot write $prom.tmp"
chmod 0644 "$prom.tmp"
mv -f "$prom.tmp" "$prom" || die "cannot write $prom"
log "wrote $prom (prod $last_prod, dev $last_dev)"

[ -z "$failed" ] || die "backup FAILED for:$failed (the metric keeps their previous time)"
log "done: $envs backed up to $backups (newest $keep of each kept)"
