#!/bin/sh
# The spec: the default project validates and lists; every case of the bad-spec corpus
# (tests/specs/bad/CASE/ with an `expected` error line) fails with exactly that one line,
# exit 2, and writes nothing.
. "$(dirname "$0")/../lib.sh"
t_init 02-validate

for bin in $(binaries); do
	expect_exit 0 "$bin" -C "$TOP" validate
	grep -q 'spec ok: 5 roles' "$T/out" || fail "validate: $(cat "$T/out")"
	expect_exit 0 "$bin" -C "$TOP" list
	for r in base master worker tooling; do
		grep -q "^$r " "$T/out" || fail "list lacks $r"
	done
	expect_exit 0 "$bin" -C "$TOP" list --json
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [r["name"] for r in d]==["base","k8s-node","master","tooling","worker"], d' "$T/out" \
		|| fail "list --json: $(cat "$T/out")"
done
ok "default spec validates and lists"

n=0
for case in "$TOP"/tests/specs/bad/*/; do
	name=$(basename "$case")
	rm -rf "$T/case" && cp -r "$case" "$T/case"
	for bin in $(binaries); do
		for cmd in validate "build base" all; do
			# shellcheck disable=SC2086
			expect_exit 2 "$bin" -C "$T/case" $cmd
			[ "$(wc -l <"$T/err")" = 1 ] || fail "$name ($cmd): more than one line: $(cat "$T/err")"
			exp="imgbuild: error: $(cat "$case/expected")"
			[ "$(cat "$T/err")" = "$exp" ] || fail "$name ($cmd): got '$(cat "$T/err")', expected '$exp'"
		done
		[ ! -e "$T/case/out" ] || fail "$name: an output directory was written"
	done
	n=$((n + 1))
done
[ "$n" -gt 10 ] || fail "only $n bad-spec cases found"
ok "$n bad specs rejected with one exact line, exit 2, nothing written"
