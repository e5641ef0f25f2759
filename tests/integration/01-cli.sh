#!/bin/sh
# The command line: help, version, usage errors (exit 2), and the man page and the bash
# completion staying in step with the command table.
. "$(dirname "$0")/../lib.sh"
t_init 01-cli

for bin in $(binaries); do
	expect_exit 0 "$bin" --version
	grep -qE '^imgbuild [0-9]+\.[0-9]+\.[0-9]+$' "$T/out" || fail "--version printed: $(cat "$T/out")"
	expect_exit 0 "$bin" --help
	grep -q '^usage: imgbuild' "$T/out" || fail "--help has no usage line"
	for c in $("$bin" --list-commands); do
		expect_exit 0 "$bin" "$c" --help
		grep -q "^usage: imgbuild $c" "$T/out" || fail "'$c --help' has no usage line"
		expect_exit 0 "$bin" help "$c"
	done
	expect_exit 2 "$bin"
	grep -q '^imgbuild: error: no command given$' "$T/err" || fail "no command: $(cat "$T/err")"
	expect_exit 2 "$bin" frobnicate
	grep -q "^imgbuild: error: unknown command 'frobnicate'" "$T/err" || fail "unknown command: $(cat "$T/err")"
	expect_exit 2 "$bin" --no-such-option list
	expect_exit 2 "$bin" list --force
	grep -q "does not apply to 'list'" "$T/err" || fail "option check: $(cat "$T/err")"
	expect_exit 2 "$bin" -j 0 all
	grep -q "bad value '0' for -j" "$T/err" || fail "-j 0: $(cat "$T/err")"
	expect_exit 2 "$bin" -C /nonexistent list
	expect_exit 2 "$bin" -C "$TOP" build
	expect_exit 2 "$bin" -C "$TOP" build no-such-role
	grep -q "unknown role 'no-such-role'" "$T/err" || fail "unknown role: $(cat "$T/err")"
	ok "usage and errors ($bin)"
done

# The help, as committed: an option or command changed on purpose updates the file
# (regenerate: B=build/imgbuild; { $B --help; for c in $($B --list-commands); do echo;
# $B $c --help; done; } >tests/expected/help.txt), one changed by accident fails here.
{
	"$IMGBUILD" --help
	for c in $("$IMGBUILD" --list-commands); do
		echo
		"$IMGBUILD" "$c" --help
	done
} >"$T/help.txt"
diff -u "$TOP/tests/expected/help.txt" "$T/help.txt" || fail "the help differs from tests/expected/help.txt (above)"
ok "--help and every command's help as tests/expected/help.txt has them"

# Every command and option of the table is in the man page and the completion offers it.
man=$TOP/doc/imgbuild.1
comp=$TOP/doc/imgbuild.bash
for c in $("$IMGBUILD" --list-commands); do
	grep -q "^\.B $c\b\|^\.TP\n\.B $c" "$man" || grep -q "^\.B $c" "$man" || fail "man page lacks command '$c'"
	for o in $("$IMGBUILD" --list-options "$c"); do
		esc=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
		grep -q -- "$esc" "$man" || fail "man page lacks option '$o' of '$c'"
	done
done
ok "man page covers the command table"

if command -v bash >/dev/null; then
	out=$(PATH=$(dirname "$IMGBUILD"):$PATH bash -c "
		. '$comp'
		COMP_WORDS=(imgbuild bu); COMP_CWORD=1; _imgbuild; echo \"\${COMPREPLY[*]}\"
		COMP_WORDS=(imgbuild seed --); COMP_CWORD=2; _imgbuild; echo \"\${COMPREPLY[*]}\"
		cd '$TOP'; COMP_WORDS=(imgbuild build ma); COMP_CWORD=2; _imgbuild; echo \"\${COMPREPLY[*]}\"
		COMP_WORDS=(imgbuild bundle --key k.key ''); COMP_CWORD=4; _imgbuild; echo \"\${COMPREPLY[*]}\"
		COMP_WORDS=(imgbuild bundle create w); COMP_CWORD=3; _imgbuild; echo \"\${COMPREPLY[*]}\"
	")
	echo "$out" | sed -n 1p | grep -qx 'build bundle' || fail "completion of 'bu': $out"
	echo "$out" | sed -n 2p | grep -q -- '--ssh-key' || fail "completion of seed options: $out"
	echo "$out" | sed -n 3p | grep -qx 'master' || fail "completion of roles: $out"
	echo "$out" | sed -n 4p | grep -qx 'create verify import' || fail "completion of bundle: $out"
	echo "$out" | sed -n 5p | grep -qx 'worker' || fail "completion of bundle create: $out"
	ok "bash completion follows the command table and the project's roles"
fi
