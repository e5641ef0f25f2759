#!/bin/sh
# imgbuild-pg-restore: restore a dump made by imgbuild-pg-backup (pg_dump's custom format)
# into a database of the tooling stack's PostgreSQL, created fresh for it.
#
# Usage: imgbuild-pg-restore [--force] [--env prod|dev] [--no-owner] DUMP DATABASE
#
#   --env ENV     the server: the running container of the compose service postgres-ENV.
#                 Default: the ENV in the dump's name (postgres-ENV-<time>.dump), else prod.
#   --force       DATABASE may hold data: it is dropped (connections closed) and recreated.
#                 Without it, a DATABASE that exists with any table, view, sequence or
#                 function in it is refused (exit 1) and left alone; an empty one is
#                 recreated.
#   --no-owner    the restored objects belong to the connecting user, not to the roles
#                 named in the dump (for a server that lacks them).
#
# The dump is checked first (pg_restore --list); DATABASE is created from template0 as
# POSTGRES_<ENV>_USER (/etc/imgbuild/tooling.env, default quode), then pg_restore runs in one
# transaction and stops at the first error, so a failed restore leaves an empty database.
# DATABASE: letters, digits and _, not starting with a digit, at most 63; never postgres,
# template0 or template1.
set -eu
tl_prog=imgbuild-pg-restore
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

usage() {
	echo "usage: $tl_prog [--force] [--env prod|dev] [--no-owner] DUMP DATABASE" >&2
	exit 2
}
force=0 env="" no_owner="" dump="" db=""
while [ $# -gt 0 ]; do
	case $1 in
	--force) force=1 ;;
	--no-owner) no_owner=--no-owner ;;
	--env)
		[ $# -ge 2 ] || usage
		env=$2
		shift
		;;
	--env=*) env=${1#--env=} ;;
	-h | --help)
		sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	-*) usage ;;
	*)
		if [ -z "$dump" ]; then
			dump=$1
		elif [ -z "$db" ]; then
			db=$1
		else
			usage
		fi
		;;
	esac
	shift
done
if [ -z "$dump" ] || [ -z "$db" ]; then usage; fi
if [ -z "$env" ]; then
	case ${dump##*/} in
	postgres-dev-*) env=dev ;;
	*) env=prod ;;
	esac
fi
case $env in prod | dev) ;; *) echo "$tl_prog: --env must be prod or dev" >&2 && exit 2 ;; esac
ib_match "$db" '[A-Za-z_][A-Za-z0-9_]{0,62}' ||
	{ echo "$tl_prog: '$db' is not a database name this script accepts ([A-Za-z_][A-Za-z0-9_]*, at most 63)" >&2 && exit 2; }
case $db in postgres | template0 | template1)
	echo "$tl_prog: refusing to restore into '$db', a database PostgreSQL itself needs" >&2
	exit 2
	;;
esac
if [ ! -f "$dump" ] || [ ! -r "$dump" ]; then die "cannot read $dump"; fi
command -v docker >/dev/null 2>&1 || die "docker is not installed"

ENV=$(echo "$env" | tr '[:lower:]' '[:upper:]')
user=$(tl_env_value "$TL_ENV_FILE" "POSTGRES_${ENV}_USER")
user=${user:-quode}
service=postgres-$env
cid=$(tl_container "$service")
if [ -z "$cid" ]; then
	ib_log_file err "$ib_tmp/ps.err"
	die "no running container of the compose service $service (project $TL_PROJECT)"
fi

# sql DATABASE: run stdin's SQL in DATABASE, with :'db' and :"db" bound to $db (psql
# quotes them), unaligned, tuples only.
sql() {
	docker exec -i "$cid" psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$user" -d "$1" -v db="$db"
}

log "checking $dump (pg_restore --list)"
docker exec -i "$cid" pg_restore --list <"$dump" >"$ib_tmp/toc" 2>"$ib_tmp/toc.err" || {
	ib_log_file err "$ib_tmp/toc.err"
	die "$dump is not a dump pg_restore can read (pg_dump -Fc, as imgbuild-pg-backup makes)"
}
entries=$(grep -c '^[0-9]' "$ib_tmp/toc" || :)

exists=$(echo "SELECT count(*) FROM pg_database WHERE datname = :'db';" | sql postgres) ||
	die "cannot query $service as '$user'"
if [ "$exists" != 0 ]; then
	objects=$(sql "$db" <<'EOF'
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_')
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_');
EOF
	) || die "cannot look into the existing database '$db' on $service"
	if [ "$objects" != 0 ] && [ "$force" != 1 ]; then
		die "database '$db' on $service exists and is not empty ($objects tables, views, sequences, indexes or functions): refusing to overwrite it (--force drops and recreates it)"
	fi
	log "dropping the existing database '$db' on $service ($objects objects)"
	echo 'DROP DATABASE :"db" WITH (FORCE);' | sql postgres >/dev/null ||
		die "cannot drop '$db' on $service"
fi
echo 'CREATE DATABASE :"db" TEMPLATE template0;' | sql postgres >/dev/null ||
	die "cannot create '$db' on $service"
log "created database '$db' on $service; restoring $dump ($entries archive entries) as '$user'"
# shellcheck disable=SC2086
if ! docker exec -i "$cid" pg_restore -U "$user" -d "$db" --exit-on-error --single-transaction \
	$no_owner <"$dump" >"$ib_tmp/restore.out" 2>&1; then
	ib_log_file err "$ib_tmp/restore.out"
	die "pg_restore of $dump into '$db' failed: nothing was restored ('$db' is left empty)"
fi
ib_log_file info "$ib_tmp/restore.out"
tables=$(echo "SELECT count(*) FROM pg_tables WHERE schemaname <> 'information_schema' AND schemaname !~ '^pg_';" |
	sql "$db") || tables="?"
log "done: $dump restored into '$db' on $service ($tables tables)"
