#!/bin/sh
# Run the Check unit suites given as arguments under valgrind's memcheck, two at a time;
# any report (an invalid read or write, a use of uninitialised memory, a definite or
# indirect leak), from the suite or from any imgbuild it starts, fails the run.
#
# Check forks each test (CK_FORK is left alone): valgrind follows a fork without exec by
# itself, so every test body runs under memcheck, with its own leak check when its process
# exits, and a report fails that test by name ("Early exit with return value 99"). One
# process for all tests (CK_FORK=no) would report a leak only once at the end, with no test
# named, count as leaks what a failed assertion jumps over, and let tests that change the
# process (environment, cwd, umask, signals) disturb each other.
# Programs the suites run are followed through exec (--trace-children) only when they are
# ours: a suite that runs build/imgbuild (check_cluster_up) has it checked too, while the
# shell, coreutils, QEMU and its stand-in, Python and the like are not ours to check and
# run natively (--trace-children-skip). Every process writes to its own log file, so a
# report from a process whose exit status nobody reads (a daemon the test kills) still
# counts. (valgrind's patterns cannot say "all but imgbuild": a checkout under /usr would
# have its imgbuild skipped too.)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=${VALGRIND_OUT:-$TOP/build/valgrind}
JOBS=${VALGRIND_JOBS:-2}

SKIP='/bin/*,/sbin/*,/usr/*,/lib/*,/lib64/*,*/.pyenv/*,*/python*,*/sh,*/bash'
SKIP="$SKIP,*/qemu-system-*,*/qemu-img,*/ssh-keygen,*/openssl"
VGOPTS="-q --tool=memcheck --error-exitcode=99 --leak-check=full
--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
--num-callers=30 --suppressions=$TOP/tests/valgrind.supp
--trace-children=yes --trace-children-skip=$SKIP"

# --one SUITE: run one suite, print one line: its name, result and seconds.
if [ "${1:-}" = --one ]; then
	t=$2
	name=$(basename "$t")
	start=$(date +%s)
	# Check's timeouts scaled for memcheck's slowdown; RSA keys from a fixed pool
	# (tests/unit/keypool.h: OpenSSL's prime search is what memcheck makes slowest).
	# shellcheck disable=SC2086
	CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-5} IMGBUILD_TEST_KEY_POOL=1 \
		valgrind $VGOPTS --log-file="$OUT/$name.%p.vg" "$t" >"$OUT/$name.out" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	reports=$(find "$OUT" -name "$name.*.vg" -size +0c | wc -l)
	if [ "$rc" = 0 ] && [ "$reports" = 0 ]; then
		echo "valgrind: $name: ok in ${secs}s"
	else
		echo "valgrind: $name: FAILED (exit $rc, reports from $reports processes) in ${secs}s"
	fi
	exit 0
fi

command -v valgrind >/dev/null || { echo "valgrind: not installed (make deps)"; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"
echo "valgrind: nothing skipped; RSA keys of the suites that include tests/unit/keypool.h come"
echo "valgrind: from its fixed pool (OpenSSL's prime search takes ~30 s a key under memcheck)"
start=$(date +%s)
# The slowest suite (check_cluster_up, two minutes under memcheck) first, so the other
# lane does the rest meanwhile.
{
	printf '%s\n' "$@" | grep '/check_cluster_up$'
	printf '%s\n' "$@" | grep -v '/check_cluster_up$'
} | xargs -P "$JOBS" -n 1 "$0" --one | tee "$OUT/summary"
failed=$(grep -c FAILED "$OUT/summary")
for f in $(grep FAILED "$OUT/summary" | sed 's/^valgrind: \([^:]*\):.*/\1/'); do
	echo "--- $f: output"
	tail -n 30 "$OUT/$f.out"
	for v in "$OUT/$f".*.vg; do
		[ -s "$v" ] && { echo "--- $v"; head -n 200 "$v"; }
	done
done
echo "valgrind: $# suites, $failed failed, in $(($(date +%s) - start))s ($JOBS at a time)"
[ "$failed" = 0 ]
