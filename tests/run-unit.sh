#!/bin/sh
# Run the Check unit suites given as arguments; one summary line at the end.
set -u
passed=0 failed=0
for t in "$@"; do
	name=$(basename "$t")
	if CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120} "$t"; then
		passed=$((passed + 1))
	else
		echo "unit: FAILED: $name"
		failed=$((failed + 1))
	fi
done
echo "unit suites: $passed passed, $failed failed"
[ "$failed" = 0 ]
