#!/bin/sh
# The tooling host's PostgreSQL backup and restore scripts (ansible-free-scripts/pg-backup.sh
# and pg-restore.sh) against a real PostgreSQL, without a VM or Docker: a throwaway cluster
# run as a normal user on a unix socket in a temporary directory, and a `docker` stub on
# PATH that runs `docker exec CONTAINER CMD...` as CMD on this machine (and answers `docker
# ps` with the compose service's name). Checked: both databases dumped (custom format, read
# back), file names and modes, rotation to IMGBUILD_BACKUP_KEEP, the textfile metric (format,
# atomic write, a failed database keeps its previous value), the S3 upload through an `aws`
# stub and the warning without the aws CLI, then a restore into a fresh database compared
# row for row, the refusal to overwrite a non-empty database without --force, --force, and
# a dump that is not one.
. "$(dirname "$0")/../lib.sh"
t_init 61-pg-backup
S=$TOP/ansible-free-scripts

PGBIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)
for p in initdb pg_ctl postgres pg_dump pg_restore psql; do
	[ -x "$PGBIN/$p" ] || skip "PostgreSQL is not installed (package postgresql; make deps)"
done
command -v flock >/dev/null || skip "flock is not installed (util-linux)"

# The cluster: run by a normal user (PostgreSQL refuses root), in a directory under /tmp that
# user can enter.
C=$(mktemp -d /tmp/imgbuild-61.XXXXXX) || fail "mktemp"
as_pg() { "$@"; }
if [ "$(id -u)" = 0 ]; then
	chown nobody "$C"
	as_pg() { runuser -u nobody -- "$@"; }
fi
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	as_pg "$PGBIN/pg_ctl" -D "$C/data" -m immediate -w stop >/dev/null 2>&1
	rm -rf "$C"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
as_pg mkdir "$C/sock"
as_pg "$PGBIN/initdb" -D "$C/data" -U t61 --auth=trust -E UTF8 --locale=C >"$T/initdb.log" 2>&1 ||
	{ cat "$T/initdb.log"; fail "initdb"; }
as_pg "$PGBIN/pg_ctl" -D "$C/data" -l "$C/server.log" -w -t 60 \
	-o "-c listen_addresses='' -c unix_socket_directories='$C/sock' -p 5432" start >"$T/pg_ctl.log" 2>&1 ||
	{ cat "$T/pg_ctl.log" "$C/server.log"; fail "pg_ctl start"; }
export PGHOST="$C/sock" PGPORT=5432
psql_() { "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -U t61 "$@"; }
psql_ -d postgres -c 'CREATE DATABASE t61prod' -c 'CREATE DATABASE t61dev' || fail "createdb"
psql_ -d t61prod >/dev/null <<'EOF' || fail "prod data"
CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(10,2),
                     note text, blob bytea, at timestamptz DEFAULT '2026-01-02 03:04:05+00');
INSERT INTO orders (customer, total, note, blob)
  SELECT 'customer ' || i, i * 1.25, CASE WHEN i % 3 = 0 THEN NULL ELSE 'ünïcödé ' || i || E'\ttab' END,
         decode(md5(i::text), 'hex')
  FROM generate_series(1, 500) AS i;
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 500;
CREATE FUNCTION order_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM orders';
EOF
psql_ -d t61dev -c 'CREATE TABLE t (x int)' -c 'INSERT INTO t SELECT generate_series(1, 10)' >/dev/null ||
	fail "dev data"
ok "a throwaway PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on $C/sock, databases t61prod and t61dev"

# The stubs. docker: `ps` prints "stub-<service>" for the compose service asked for (none
# when STUB_DOWN names it); `exec [-i] [-u U] CONTAINER CMD...` runs CMD here.
B=$T/bin
mkdir -p "$B" "$T/s3"
cat >"$B/docker" <<EOF
#!/bin/sh
# Test stub for docker (61-pg-backup): no Docker here; commands run on this machine.
printf '%s\n' "\$*" >>"$T/docker.calls"
case \$1 in
ps)
	for a; do
		case \$a in label=com.docker.compose.service=*)
			s=\${a##*=}
			[ "\$s" = "\${STUB_DOWN:-}" ] || echo "stub-\$s" ;;
		esac
	done ;;
exec)
	shift
	while :; do
		case \$1 in -i | -t | -it) shift ;; -u | -e | -w) shift 2 ;; *) break ;; esac
	done
	shift
	PATH=$PGBIN:\$PATH exec "\$@" ;;
*) echo "docker stub: unsupported: \$*" >&2; exit 1 ;;
esac
EOF
cat >"$B/aws" <<EOF
#!/bin/sh
# Test stub for the aws CLI (61-pg-backup): s3 cp into $T/s3.
printf '%s\n' "\$*" >>"$T/aws.calls"
[ "\${AWS_STUB_FAIL:-0}" = 0 ] || { echo "aws stub: simulated failure" >&2; exit 1; }
[ "\$1 \$2 \$3" = "s3 cp --only-show-errors" ] || exit 2
cp "\$4" "$T/s3/\${5##*/}"
EOF
chmod 0755 "$B/docker" "$B/aws"
echo "NOTE: a docker stub on PATH runs 'docker exec <container> <cmd>' as <cmd> on this machine; aws is a stub too"

# The host's files, moved into the test directory.
cat >"$T/tooling.env" <<EOF
POSTGRES_PROD_DB=t61prod
POSTGRES_PROD_USER=t61
POSTGRES_PROD_PASSWORD=not-used-by-the-scripts
POSTGRES_DEV_DB=t61dev
POSTGRES_DEV_USER=t61
EOF
chmod 0600 "$T/tooling.env"
printf 'BACKUP_S3_BUCKET=t61-bucket\nBACKUP_S3_PREFIX="pg/t61/"\nAWS_DEFAULT_REGION=eu-west-1\n' >"$T/backup.env"
chmod 0600 "$T/backup.env"
BK=$T/backups
TF=$T/textfile
PROM=$TF/imgbuild_backup_postgres.prom
CLEAN_PATH="$B:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
backup() { # backup [VAR=value...]: run pg-backup.sh $BARGS, output in $T/out and $T/err
	# shellcheck disable=SC2086
	env PATH="$CLEAN_PATH" TOOLING_ENV_FILE="$T/tooling.env" IMGBUILD_BACKUP_ENV="$T/backup.env" \
		IMGBUILD_BACKUP_DIR="$BK" IMGBUILD_TEXTFILE_DIR="$TF" IMGBUILD_TOOLING_LOCK_DIR="$T" \
		IMGBUILD_TOOLING_TRUSTED_UID="$(id -u)" IMGBUILD_BACKUP_KEEP=3 "$@" \
		sh "$S/pg-backup.sh" ${BARGS:-} >"$T/out" 2>"$T/err"
}
value() { sed -n "s/^imgbuild_backup_last_success_timestamp_seconds{kind=\"postgres\",db=\"$1\"} \\([0-9]*\\)\$/\\1/p" "$PROM"; }

# --- backups, rotation, modes, metric, upload
t0=$(date +%s)
for i in 1 2 3 4 5; do
	backup || { cat "$T/err"; fail "pg-backup.sh run $i failed"; }
	[ $i = 5 ] || sleep 1.1 # file names have a resolution of one second
done
t1=$(date +%s)
grep -qx "exec stub-postgres-prod pg_dump -U t61 -Fc -Z 6 t61prod" "$T/docker.calls" ||
	{ cat "$T/docker.calls"; fail "pg_dump was not run in the postgres-prod container as expected"; }
grep -qx "exec stub-postgres-dev pg_dump -U t61 -Fc -Z 6 t61dev" "$T/docker.calls" ||
	fail "pg_dump was not run in the postgres-dev container"
for env in prod dev; do
	n=$(find "$BK" -name "postgres-$env-*.dump" | grep -cE "/postgres-$env-[0-9]{8}T[0-9]{6}Z\\.dump\$")
	[ "$n" = 3 ] || { ls -la "$BK"; fail "$env: $n dumps kept, IMGBUILD_BACKUP_KEEP=3"; }
done
[ "$(find "$BK" -mindepth 1 | grep -vcE '/postgres-(prod|dev)-[0-9]{8}T[0-9]{6}Z\.dump$')" = 0 ] ||
	{ ls -la "$BK"; fail "other files left in $BK"; }
[ "$(stat -c %a "$BK")" = 700 ] || fail "$BK is mode $(stat -c %a "$BK"), not 0700"
for f in "$BK"/*.dump; do
	[ "$(stat -c %a "$f")" = 600 ] || fail "$f is mode $(stat -c %a "$f"), not 0600"
	head -c 5 "$f" | grep -q '^PGDMP' || fail "$f is not a pg_dump custom-format archive"
done
# The three kept are the three newest: run 5's name is the newest, run 1's and 2's are gone.
newest=$(find "$BK" -name 'postgres-prod-*' | sort | tail -n 1)
newest=${newest##*/}
grep -q "wrote $BK/$newest" "$T/err" || fail "the newest dump $newest is not the last run's"
ok "5 runs with IMGBUILD_BACKUP_KEEP=3: 3 newest custom-format dumps of each database, 0600 in a 0700 directory, UTC names"

[ -f "$PROM" ] || fail "no $PROM"
[ "$(stat -c %a "$PROM")" = 644 ] || fail "$PROM is mode $(stat -c %a "$PROM") (node_exporter must read it)"
[ "$(find "$TF" -mindepth 1)" = "$PROM" ] || fail "temporary files left in $TF: $(ls -A "$TF")"
for env in prod dev; do
	v=$(value $env)
	if [ -z "$v" ] || [ "$v" -lt "$t0" ] || [ "$v" -gt "$t1" ]; then
		cat "$PROM"
		fail "$env: metric '$v' not in [$t0, $t1]"
	fi
done
cat >"$T/prom.want" <<EOF
# HELP imgbuild_backup_last_success_timestamp_seconds Unix time of the last successful backup.
# TYPE imgbuild_backup_last_success_timestamp_seconds gauge
imgbuild_backup_last_success_timestamp_seconds{kind="postgres",db="prod"} $(value prod)
imgbuild_backup_last_success_timestamp_seconds{kind="postgres",db="dev"} $(value dev)
EOF
cmp -s "$PROM" "$T/prom.want" || { diff "$T/prom.want" "$PROM"; fail "the metric file is not as the contract says"; }
if command -v promtool >/dev/null; then
	promtool check metrics <"$PROM" >"$T/promtool.out" 2>&1 || { cat "$T/promtool.out"; fail "promtool check metrics"; }
fi
ok "metric file per stacks/tooling/README.md: both series, times of this run, 0644, no temporary file left"

[ "$(grep -c '^s3 cp --only-show-errors ' "$T/aws.calls")" = 10 ] || { cat "$T/aws.calls"; fail "not 10 uploads for 5 runs"; }
grep -q "^s3 cp --only-show-errors $BK/$newest s3://t61-bucket/pg/t61/$newest\$" "$T/aws.calls" ||
	{ cat "$T/aws.calls"; fail "the newest dump was not uploaded to s3://t61-bucket/pg/t61/"; }
cmp -s "$BK/$newest" "$T/s3/$newest" || fail "the uploaded file differs"
ok "each new dump uploaded with aws s3 cp to s3://\$BACKUP_S3_BUCKET/\$BACKUP_S3_PREFIX (stub)"

# No aws CLI: a warning, the backup still succeeds.
rm "$B/aws"
if env PATH="$CLEAN_PATH" sh -c 'command -v aws' >/dev/null; then
	echo "note: an aws CLI is installed on this machine: the 'no aws CLI' case is not run"
else
	backup || { cat "$T/err"; fail "pg-backup.sh without the aws CLI failed"; }
	grep -q "warning: prod: BACKUP_S3_BUCKET is set but the aws CLI is not installed" "$T/err" ||
		{ cat "$T/err"; fail "no clear warning without the aws CLI"; }
	ok "BACKUP_S3_BUCKET without the aws CLI: a warning, the dumps are kept here"
fi
cp "$T/bin/docker" "$T/docker.bak"

# Failures: the dev container is down, then an upload fails. Exit 1, the failed database's
# metric keeps its value, the other's moves on.
printf '#!/bin/sh\nprintf "%%s\\n" "$*" >>"%s/aws.calls"\nexit 0\n' "$T" >"$B/aws"
chmod 0755 "$B/aws"
sleep 1.1
before_dev=$(value dev) before_prod=$(value prod)
if backup STUB_DOWN=postgres-dev; then fail "pg-backup.sh succeeded with the dev container down"; fi
grep -q "no running container of the compose service postgres-dev" "$T/err" || { cat "$T/err"; fail "no message naming postgres-dev"; }
grep -q "backup FAILED for: dev" "$T/err" || { cat "$T/err"; fail "no summary naming dev"; }
[ "$(value dev)" = "$before_dev" ] || fail "dev's metric changed though its backup failed"
[ "$(value prod)" -gt "$before_prod" ] || fail "prod's metric did not move on"
[ -z "$(find "$BK" -name '*.part')" ] || fail "a partial dump was left"
sleep 1.1
before_prod=$(value prod)
printf '#!/bin/sh\necho "aws stub: simulated failure" >&2\nexit 1\n' >"$B/aws"
if BARGS=prod backup; then fail "pg-backup.sh succeeded with a failing upload"; fi
grep -q "uploading .* failed (the dump is kept here)" "$T/err" || { cat "$T/err"; fail "no message for the failed upload"; }
[ "$(value prod)" = "$before_prod" ] || fail "prod's metric changed though its upload failed"
ok "a database whose container is down, or whose upload fails: exit 1, named, its metric kept"

# --- restore
restore() { # restore ARGS...: run pg-restore.sh, output in $T/out and $T/err, exit status returned
	env PATH="$CLEAN_PATH" TOOLING_ENV_FILE="$T/tooling.env" sh "$S/pg-restore.sh" "$@" >"$T/out" 2>"$T/err"
}
table() { # table DB: every row of orders, in order, as text
	psql_ -d "$1" -c 'COPY (SELECT * FROM orders ORDER BY id) TO STDOUT'
}
dump=$(find "$BK" -name 'postgres-prod-*.dump' | sort | tail -n 1)
# A change after the backup must not be in the restored copy.
psql_ -d t61prod -c "INSERT INTO orders (customer) VALUES ('after the backup')" >/dev/null
restore "$dump" t61restore || { cat "$T/err"; fail "pg-restore.sh into a fresh database failed"; }
psql_ -d t61prod -c "DELETE FROM orders WHERE customer = 'after the backup'" >/dev/null
table t61prod >"$T/orig.txt"
table t61restore >"$T/restored.txt"
[ "$(wc -l <"$T/orig.txt")" = 500 ] || fail "the original table has $(wc -l <"$T/orig.txt") rows"
cmp -s "$T/orig.txt" "$T/restored.txt" || { diff "$T/orig.txt" "$T/restored.txt" | head; fail "the restored table differs"; }
[ "$(psql_ -d t61restore -c 'SELECT order_count()')" = 500 ] || fail "the function was not restored"
[ "$(psql_ -d t61restore -c 'SELECT count(*) FROM big_orders')" = 100 ] || fail "the view was not restored"
[ "$(psql_ -d t61restore -c "SELECT nextval('orders_id_seq')")" = 501 ] || fail "the sequence was not restored"
grep -q "restored into 't61restore' on postgres-prod (1 tables)" "$T/err" || { cat "$T/err"; fail "no summary"; }
ok "the newest prod dump restored into a fresh database: 500 rows equal byte for byte, view, function and sequence"

# Not over a non-empty database without --force; with it, yes; an empty existing one, yes.
psql_ -d t61restore -c "UPDATE orders SET note = 'changed' WHERE id = 1" >/dev/null
if restore "$dump" t61restore; then fail "pg-restore.sh overwrote a non-empty database without --force"; fi
grep -q "database 't61restore' on postgres-prod exists and is not empty .*refusing to overwrite it (--force" "$T/err" ||
	{ cat "$T/err"; fail "no clear refusal"; }
[ "$(psql_ -d t61restore -c 'SELECT note FROM orders WHERE id = 1')" = changed ] || fail "the refused restore touched the database"
psql_ -d postgres -c 'SELECT 1' >/dev/null
restore --force "$dump" t61restore || { cat "$T/err"; fail "pg-restore.sh --force failed"; }
table t61restore >"$T/restored.txt"
cmp -s "$T/orig.txt" "$T/restored.txt" || fail "the table restored with --force differs"
psql_ -d postgres -c 'CREATE DATABASE t61empty' >/dev/null
restore "$dump" t61empty || { cat "$T/err"; fail "pg-restore.sh into an existing empty database failed"; }
ok "refuses a non-empty database without --force (left untouched); --force drops and restores it; an empty one is reused"

# The dev dump goes to the dev server by its name; bad input is refused before anything.
devdump=$(find "$BK" -name 'postgres-dev-*.dump' | sort | tail -n 1)
restore "$devdump" t61devcopy || { cat "$T/err"; fail "restoring the dev dump failed"; }
grep -q "on postgres-dev" "$T/err" || { cat "$T/err"; fail "the dev dump did not go to postgres-dev"; }
[ "$(psql_ -d t61devcopy -c 'SELECT sum(x) FROM t')" = 55 ] || fail "the dev copy differs"
head -c 4096 /dev/urandom >"$T/garbage.dump"
if restore "$T/garbage.dump" t61garbage; then fail "a file that is not a dump was restored"; fi
grep -q "is not a dump pg_restore can read" "$T/err" || { cat "$T/err"; fail "no message for a bad dump"; }
[ "$(psql_ -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = 't61garbage'")" = 0 ] ||
	fail "a database was created for a bad dump"
restore "$dump" postgres
[ $? = 2 ] || fail "restoring into 'postgres' was not refused as bad usage"
restore "$dump" 'x;drop'
[ $? = 2 ] || fail "a bad database name was not refused"
ok "a dev dump restores to postgres-dev; a bad dump, 'postgres' and a bad name are refused before anything is done"
exit 0
