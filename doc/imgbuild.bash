# bash completion for imgbuild. Commands and options come from the binary itself
# (--list-commands, --list-options CMD), so this file never falls out of step with it.
_imgbuild()
{
	local cur prev cmd i
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}
	case "$prev" in
	-C|-o|--output) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--mirror) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--ssh-key) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--dir|--plan) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--master-address|--workers|--network|--pod-cidr|--addons) COMPREPLY=(); return ;;
	--memory|--cpus|--disk-size|--timeout) COMPREPLY=(); return ;;
	--firmware) COMPREPLY=($(compgen -W "bios uefi" -- "$cur")); return ;;
	-j|--jobs|--hostname) COMPREPLY=(); return ;;
	--role) COMPREPLY=($(compgen -W "$(imgbuild list --json 2>/dev/null | tr ',' '\n' | sed -n 's/.*"name":"\([^"]*\)".*/\1/p')" -- "$cur")); return ;;
	--region|--endpoint-url|--profile|--concurrency|--copy-to|--instance-type) COMPREPLY=(); return ;;
	--target) COMPREPLY=($(compgen -W ami -- "$cur")); return ;;
	--key) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	esac
	cmd=""
	for ((i = 1; i < COMP_CWORD; i++)); do
		case "${COMP_WORDS[i]}" in
		-C|-o|--output|-j|--jobs|--ssh-key|--hostname|--mirror|--role) ((i++)) ;;
		--region|--endpoint-url|--profile|--concurrency|--copy-to|--instance-type|--target) ((i++)) ;;
		--dir|--plan|--master-address|--workers|--network|--pod-cidr|--addons) ((i++)) ;;
		--memory|--cpus|--disk-size|--timeout|--firmware) ((i++)) ;;
		--key) ((i++)) ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	if [ -z "$cmd" ]; then
		if [[ "$cur" == -* ]]; then
			COMPREPLY=($(compgen -W "-C --help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(imgbuild --list-commands 2>/dev/null)" -- "$cur"))
		fi
		return
	fi
	if [[ "$cur" == -* ]]; then
		COMPREPLY=($(compgen -W "$(imgbuild --list-options "$cmd" 2>/dev/null)" -- "$cur"))
		return
	fi
	case "$cmd" in
	build|seed|publish)
		COMPREPLY=($(compgen -W "$(imgbuild list --json 2>/dev/null | tr ',' '\n' | sed -n 's/.*"name":"\([^"]*\)".*/\1/p')" -- "$cur")) ;;
	help)
		COMPREPLY=($(compgen -W "$(imgbuild --list-commands 2>/dev/null)" -- "$cur")) ;;
	cache)
		COMPREPLY=($(compgen -W "ls verify prune" -- "$cur")) ;;
	cluster)
		# The subcommand first; after ssh or logs, a host name of the cluster's state.
		local sub="" j
		for ((j = i + 1; j < COMP_CWORD; j++)); do
			case "${COMP_WORDS[j]}" in
			--dir|--plan|--master-address|--workers|--network|--pod-cidr|--addons|--memory|--cpus|--disk-size|--timeout|--firmware|--ssh-key|-C) ((j++)) ;;
			-*) ;;
			*) sub=${COMP_WORDS[j]}; break ;;
			esac
		done
		case "$sub" in
		"") COMPREPLY=($(compgen -W "plan up status ssh logs down" -- "$cur")) ;;
		ssh|logs)
			local dir=out/cluster
			for ((j = 1; j < COMP_CWORD; j++)); do
				[ "${COMP_WORDS[j]}" = --dir ] && dir=${COMP_WORDS[j+1]}
			done
			COMPREPLY=($(compgen -W "$(sed -n 's/^ *"name": "\([^"]*\)".*/\1/p' "$dir/state.json" 2>/dev/null)" -- "$cur")) ;;
		esac ;;
	verify|diff)
		COMPREPLY=($(compgen -f -- "$cur")) ;;
	key)
		COMPREPLY=($(compgen -W generate -- "$cur")) ;;
	bundle)
		# The subcommand, then roles (create) or the bundle file (verify, import).
		local sub="" j
		for ((j = i + 1; j < COMP_CWORD; j++)); do
			case "${COMP_WORDS[j]}" in
			--key|-o|--output|--mirror|-C) ((j++)) ;;
			-*) ;;
			*) sub=${COMP_WORDS[j]}; break ;;
			esac
		done
		case "$sub" in
		"") COMPREPLY=($(compgen -W "create verify import" -- "$cur")) ;;
		create) COMPREPLY=($(compgen -W "$(imgbuild list --json 2>/dev/null | tr ',' '\n' | sed -n 's/.*"name":"\([^"]*\)".*/\1/p')" -- "$cur")) ;;
		*) COMPREPLY=($(compgen -f -- "$cur")) ;;
		esac ;;
	esac
}
complete -F _imgbuild imgbuild
