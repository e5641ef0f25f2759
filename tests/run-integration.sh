#!/bin/sh
# Run tests/integration/NN-*.sh. Exit 77 from a test means skipped: a prerequisite is
# really absent, and the test said which.
#
# Two lanes run side by side, because most tests wait on one thing at a time (a TCG guest,
# an appliance, python, sha256) and the machines have two cores: the tests that read the
# images 10-build makes (a line "# lane: images" in the test) run in order in one lane,
# every other test in order in the other. Boot tests are all in the images lane, so no two
# guests compete. A test that reads 10-build's images but boots nothing says instead
# "# after: 10-build": it runs at the end of the other lane (waiting for 10-build to have
# ended, if it has not), which keeps the lanes about even. Each test's output is printed whole when it ends. INTEGRATION_JOBS=1
# runs everything in one lane, in file order (for debugging); TESTS="NN-a NN-b" picks tests.
set -u
cd "$(dirname "$0")/.." || exit 1
: "${IMGBUILD:?IMGBUILD must name the imgbuild binary}"
export IMGBUILD
only=${TESTS:-}
jobs=${INTEGRATION_JOBS:-2}
R=tests/tmp/run
rm -rf "$R"
mkdir -p "$R/ended"
: >"$R/print.lock"

# run_lane NAME TEST...: one test after another; a line "rc took name" per test in $R/NAME.
run_lane() {
	lane=$1
	shift
	: >"$R/$lane"
	for t in "$@"; do
		name=$(basename "$t" .sh)
		# Wait for the test it reads from, when that one is part of this run.
		after=$(sed -n 's/^# after: \([0-9a-z-]*\).*/\1/p' "$t" | head -n 1)
		if [ -n "$after" ] && echo " $scheduled " | grep -q " $after "; then
			until [ -e "$R/ended/$after" ]; do sleep 2; done
		fi
		start=$(date +%s)
		sh "$t" >"$R/$name.log" 2>&1
		rc=$?
		took=$(($(date +%s) - start))
		case $rc in
		0) verdict="PASS $name (${took}s)" ;;
		77) verdict="SKIP $name (${took}s)" ;;
		*) verdict="FAIL $name (exit $rc, ${took}s)" ;;
		esac
		# One test's output as one block, whichever lane finishes first.
		# shellcheck disable=SC2016 # expanded by the inner sh
		flock "$R/print.lock" sh -c 'echo "=== $1 [$2]"; cat "$3"; echo "--- $4"' sh \
			"$name" "$lane" "$R/$name.log" "$verdict"
		echo "$rc $took $name" >>"$R/$lane"
		: >"$R/ended/$name"
	done
}

images="" others="" later="" scheduled=""
for t in tests/integration/[0-9]*.sh; do
	name=$(basename "$t" .sh)
	if [ -n "$only" ] && ! echo " $only " | grep -q " $name "; then
		continue
	fi
	scheduled="$scheduled $name"
	if [ "$jobs" -gt 1 ] && grep -q '^# lane: images' "$t"; then
		images="$images $t"
	elif [ "$jobs" -gt 1 ] && grep -q '^# after: ' "$t"; then
		later="$later $t"
	else
		others="$others $t"
	fi
done

start=$(date +%s)
# shellcheck disable=SC2086 # word splitting of the test lists is wanted
{
	run_lane images $images &
	a=$!
	run_lane others $others $later &
	b=$!
	wait $a $b
}
passed=0 failed=0 skipped=0
while read -r rc _ _; do
	[ -n "$rc" ] || continue
	case $rc in
	0) passed=$((passed + 1)) ;;
	77) skipped=$((skipped + 1)) ;;
	*) failed=$((failed + 1)) ;;
	esac
done <<EOF
$(cat "$R/images" "$R/others")
EOF
for lane in images others; do
	echo "lane $lane: $(awk '{s += $2} END {print s + 0}' "$R/$lane")s"
done
echo "integration: $passed passed, $failed failed, $skipped skipped in $(($(date +%s) - start))s"
[ "$failed" = 0 ]
