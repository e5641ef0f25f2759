#!/bin/sh
# Run tests/integration/NN-*.sh in order. Exit 77 from a test means skipped: a
# prerequisite is really absent, and the test said which.
set -u
cd "$(dirname "$0")/.." || exit 1
: "${IMGBUILD:?IMGBUILD must name the imgbuild binary}"
export IMGBUILD
passed=0 failed=0 skipped=0
only=${TESTS:-}
for t in tests/integration/[0-9]*.sh; do
	name=$(basename "$t" .sh)
	if [ -n "$only" ] && ! echo " $only " | grep -q " $name "; then
		continue
	fi
	echo "=== $name"
	start=$(date +%s)
	sh "$t"
	rc=$?
	took=$(( $(date +%s) - start ))
	case $rc in
	0) passed=$((passed + 1)); echo "--- PASS $name (${took}s)" ;;
	77) skipped=$((skipped + 1)); echo "--- SKIP $name (${took}s)" ;;
	*) failed=$((failed + 1)); echo "--- FAIL $name (exit $rc, ${took}s)" ;;
	esac
done
echo "integration: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
