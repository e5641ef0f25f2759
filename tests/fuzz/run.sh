#!/bin/sh
# Run the libFuzzer targets (see tests/fuzz/README.md).
#   run.sh fuzz   BIN...  fuzz each for FUZZ_SECONDS (60) from its seeds and regressions;
#                         new inputs go to build-fuzz/corpus/<target>, crashes to
#                         build-fuzz/crashes/<target>/; prints runs and exec/s per target
#   run.sh replay BIN...  run every committed seed and regression input once (make check)
# Exit 1 when any target crashed (or, replaying, has no seeds).
set -eu

mode=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
# The spec target resolves the paths a spec names in the project checkout.
FUZZ_PROJECT=$(cd "$here/../.." && pwd)
export FUZZ_PROJECT
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
# Leaks are bugs too; the sanitizers stop at the first report.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=0
total=0
for bin in "$@"; do
	name=$(basename "$bin")
	name=${name#fuzz_}
	seeds=$here/corpus/$name
	regress=$here/regress/$name
	log=$(dirname "$bin")/fuzz-$name.log
	TMPDIR=$(cd "$(dirname "$bin")" && pwd)/tmp/$name
	export TMPDIR
	rm -rf "$TMPDIR"
	mkdir -p "$TMPDIR"
	case $mode in
	replay)
		# Given files, libFuzzer runs each once and exits: no mutation, no time bound.
		set -- "$seeds"/*
		[ -f "$1" ] || { echo "fuzz: $name: no seeds in $seeds" >&2; failed=1; continue; }
		if [ -d "$regress" ]; then
			for f in "$regress"/*; do [ -f "$f" ] && set -- "$@" "$f"; done
		fi
		if "$bin" "$@" >"$log" 2>&1; then
			echo "fuzz: $name: $# inputs replayed, no report"
			total=$((total + $#))
		else
			echo "fuzz: $name: FAILED replaying its inputs (log: $log)" >&2
			tail -n 30 "$log" >&2
			failed=1
		fi
		;;
	fuzz)
		work=$(dirname "$bin")/corpus/$name
		crashes=$(dirname "$bin")/crashes/$name
		mkdir -p "$work" "$crashes"
		dirs="$work $seeds"
		[ -d "$regress" ] && dirs="$dirs $regress"
		# shellcheck disable=SC2086
		if "$bin" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -timeout=10 \
			-rss_limit_mb=1024 -artifact_prefix="$crashes/" $dirs >"$log" 2>&1; then
			status="no crash"
		else
			status="CRASH (inputs in $crashes, log $log)"
			failed=1
		fi
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
		cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -n 's/.*\(cov: [0-9]*\).*\(corp: [^ ]*\).*/\1 \2/p')
		echo "fuzz: $name: ${runs:-?} runs in ${FUZZ_SECONDS}s, ${speed:-?} exec/s, $cov: $status"
		;;
	*)
		echo "usage: run.sh fuzz|replay BIN..." >&2
		exit 2
		;;
	esac
	rm -rf "$TMPDIR"
done
[ "$mode" = replay ] && [ "$failed" = 0 ] && echo "fuzz: $total inputs replayed in all"
exit "$failed"
