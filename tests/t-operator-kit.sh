#!/bin/bash
# Proves: the operator's kit stays in step with the programs.  The man pages
# name every command and option the programs' usage lists and no other (each
# documented option is also accepted by the program), and they lint clean;
# the bash completion offers hcowctl's commands (the usage's), options it
# accepts, and (with root, on a mount) the mount's templates and disks; the
# example metrics service's command writes that mount's metrics; the example
# units (the mount, the metrics service and its timer) verify, and the man
# page's boot fstab line goes through systemd's fstab generator into a unit
# that waits for the template dir's and the data dir's file systems (skipped
# where systemd-analyze cannot run).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need python3 groff man
scratch
MAN=$top_srcdir/docs/man

# ---- lint ------------------------------------------------------------------
for page in "$MAN"/hcowctl.8 "$MAN"/mount.hcowfs.8 "$MAN"/hcowfs.5; do
	out=$(groff -ww -man -z "$page" 2>&1)
	[ -z "$out" ] || fail "groff warns on $page: $out"
	name=$(basename "$page" | sed 's/\.[0-9]$//')
	LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$page" >"$T/rendered" 2>"$T/man.err" || fail "man -l $page failed: $(cat "$T/man.err")"
	[ -s "$T/man.err" ] && fail "man -l $page warns: $(cat "$T/man.err")"
	grep -q "^NAME" "$T/rendered" && grep -qF "$name" "$T/rendered" || fail "man -l $page rendered no NAME section"
	ok "$(basename "$page") lints clean and renders"
done

# ---- the man pages against the usage ---------------------------------------
# roff items: print the names a section's .TP items document, one per line.
#   items PAGE SECTION [SUBSECTION] [all]
# An item's name is the first argument of the macro line after .TP, up to an
# '=' or blank; with "all", every bold word on that line (the generic options
# are one item).  Without a SUBSECTION, items stop at the first .SS.
items() {
	python3 - "$@" <<'PY'
import re, shlex, sys
page, section = sys.argv[1], sys.argv[2]
sub = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "all" else None
every = sys.argv[-1] == "all"
lines = open(page).read().split("\n")
cur_sh = cur_ss = None
after_tp = False
for l in lines:
    if l.startswith(".SH "):
        cur_sh, cur_ss = l[4:].strip('"'), None
        continue
    if l.startswith(".SS "):
        cur_ss = l[4:].strip('"')
        continue
    if l == ".TP":
        after_tp = True
        continue
    if not after_tp:
        continue
    after_tp = False
    if cur_sh != section or cur_ss != sub:
        continue
    macro, *args = shlex.split(re.sub(r"\\f[BIRP]", "", l).replace("\\-", "-").replace("\\c", ""))
    if every:
        # .BR alternates bold and roman: the names are the even arguments
        names = args[::2] if macro == ".BR" else args
        for n in names:
            print(n)
    else:
        print(re.split(r"[=\s]", args[0])[0] + ("\t" + args[1] if "=" in args[0] and len(args) > 1 else ""))
PY
}
# options PAGE: every -x / --long token of the page's text, one per line
page_tokens() { sed 's/\\-/-/g; s/\\f[BIRP]//g' "$1" | grep -oE '(^|[^A-Za-z0-9_-])--?[A-Za-z][A-Za-z0-9-]*' | sed 's/^[^-]*//' | sort -u; }
usage_tokens() { grep -oE '(^|[^A-Za-z0-9_-])--?[A-Za-z][A-Za-z0-9-]*' | sed 's/^[^-]*//' | sort -u; }
same_set() {	# WHAT FILE_A FILE_B: the two sorted lists must be equal
	if ! diff -u "$2" "$3" >"$T/diff"; then
		fail "$1 differ (- usage, + man page):
$(cat "$T/diff")"
	fi
}
# accepts PROG OPT: the program takes OPT, followed by a word it may take as
# OPT's value (ro: a valid -o list); an unknown option is a usage error
# the template command (tools/tmplcmd.c) parses its own options
accepts() { "$1" "$2" ro --help >/dev/null 2>&1 || "$1" template list "$2" ro --help >/dev/null 2>&1; }

# hcowctl
"$HCOWCTL" --help >"$T/usage" || fail "hcowctl --help failed"
sed -n 's/^  \([a-z][a-z]*\)\( .*\)\{0,1\}$/\1/p' "$T/usage" | sort -u >"$T/u.cmds"
items "$MAN/hcowctl.8" COMMANDS | sort -u >"$T/m.cmds"
[ -s "$T/u.cmds" ] || fail "no commands found in hcowctl --help"
same_set "hcowctl commands" "$T/u.cmds" "$T/m.cmds"
ok "hcowctl commands in usage and man page: $(tr '\n' ' ' <"$T/u.cmds")"
usage_tokens <"$T/usage" >"$T/u.opts"
page_tokens "$MAN/hcowctl.8" >"$T/m.tokens"
missing=$(comm -23 "$T/u.opts" "$T/m.tokens")
[ -z "$missing" ] || fail "hcowctl options in its usage but not in hcowctl.8: $missing"
items "$MAN/hcowctl.8" OPTIONS | sort -u >"$T/m.opts"
# the page's other long options (synopsis, commands) must be the usage's too
grep -- '^--' "$T/m.tokens" >>"$T/m.opts"
for o in $(sort -u "$T/m.opts"); do
	case $o in --help|--version) ;; *) grep -qxF -- "$o" "$T/u.opts" || fail "hcowctl.8 documents $o, which hcowctl --help does not list" ;; esac
	accepts "$HCOWCTL" "$o" || fail "hcowctl.8 documents $o, which hcowctl refuses"
done
accepts "$HCOWCTL" --frobnicate && fail "hcowctl accepts an unknown option: the probe above proves nothing"
ok "hcowctl options in usage and man page: $(sort -u "$T/m.opts" | tr '\n' ' ')"

# mount.hcowfs
"$MOUNT_HCOWFS" --help >"$T/usage" || fail "mount.hcowfs --help failed"
sed -n 's/^  \(-[a-z]\) .*/\1/p' "$T/usage" | sort -u >"$T/u.opts"
items "$MAN/mount.hcowfs.8" OPTIONS | sed 's/\t.*//' | sort -u >"$T/m.opts"
same_set "mount.hcowfs options" "$T/u.opts" "$T/m.opts"
usage_tokens <"$T/usage" >"$T/u.tokens"
page_tokens "$MAN/mount.hcowfs.8" >"$T/m.tokens"
missing=$(comm -23 "$T/u.tokens" "$T/m.tokens")
[ -z "$missing" ] || fail "mount.hcowfs options in its usage but not in mount.hcowfs.8: $missing"
# the OPTIONS section's prose names the options mount(8) passes: all accepted
sed -n '/^\.SH OPTIONS/,/^\.SH /p' "$MAN/mount.hcowfs.8" | page_tokens /dev/stdin >"$T/m.prose"
for o in $(cat "$T/m.prose"); do
	accepts "$MOUNT_HCOWFS" "$o" || fail "mount.hcowfs.8 documents $o, which mount.hcowfs refuses"
done
accepts "$MOUNT_HCOWFS" --frobnicate && fail "mount.hcowfs accepts an unknown option: the probe proves nothing"
ok "mount.hcowfs options in usage and man page: $(tr '\n' ' ' <"$T/m.prose")"

sed -n 's/^       \([a-z_][a-z_]*\)\([= ].*\)\{0,1\}$/\1/p' "$T/usage" | sort -u >"$T/u.mopts"
items "$MAN/mount.hcowfs.8" "MOUNT OPTIONS" >"$T/m.mopts.values"
cut -f1 "$T/m.mopts.values" | sort -u >"$T/m.mopts"
same_set "mount.hcowfs -o options" "$T/u.mopts" "$T/m.mopts"
# each documented -o option, with a value of the kind the page names, is
# accepted: mount.hcowfs parses -o before it acts on --help
sample() {
	case $1 in
	BYTES) echo 1G ;; MS) echo 1000 ;; SECONDS) echo 5 ;; N) echo 4 ;; DIR) echo /tmp ;; PATH) echo /bin/true ;;
	USER\|UID) echo 0 ;; *) echo "${1%%|*}" ;;
	esac
}
while IFS=$'\t' read -r opt val; do
	o=$opt${val:+=$(sample "$val")}
	"$MOUNT_HCOWFS" -o "$o" --help >/dev/null 2>"$T/err" || fail "mount.hcowfs.8 documents -o $o, which mount.hcowfs refuses: $(cat "$T/err")"
done <"$T/m.mopts.values"
for o in $(items "$MAN/mount.hcowfs.8" "MOUNT OPTIONS" "Generic mount options" all) x-systemd.requires-mounts-for=/srv; do
	case $o in x-\*) o=x-systemd.automount ;; esac
	"$MOUNT_HCOWFS" -o "$o" --help >/dev/null 2>"$T/err" || fail "mount.hcowfs.8 says -o $o is accepted, but: $(cat "$T/err")"
done
"$MOUNT_HCOWFS" -o frobnicate --help >/dev/null 2>&1 && fail "mount.hcowfs accepts -o frobnicate: the probe proves nothing"
ok "mount.hcowfs -o options in usage and man page: $(tr '\n' ' ' <"$T/u.mopts")"
# the page's fstab lines: their options are ones mount.hcowfs accepts
n=0
while read -r opts; do
	"$MOUNT_HCOWFS" -o "$opts" --help >/dev/null 2>"$T/err" || fail "mount.hcowfs.8's fstab line with '$opts' is refused: $(cat "$T/err")"
	n=$((n + 1))
done < <(sed 's/\\-/-/g' "$MAN/mount.hcowfs.8" | awk '$3 == "hcowfs" && NF == 6 { print $4 }')
[ $n -ge 2 ] || fail "mount.hcowfs.8 has $n fstab lines, expected the plain one and the systemd one"
ok "mount.hcowfs.8's $n fstab lines have options mount.hcowfs accepts"

# ---- bash completion -------------------------------------------------------
COMPLETION=$top_srcdir/tools/hcowctl.bash-completion
# complete WORD...: what the completion offers for the last WORD, sorted, on one line
complete_words() {
	bash -c '. "$1" || exit 1; complete -p hcowctl | grep -q -- "-F _hcowctl" || exit 2
		shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _hcowctl
		printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' _ "$COMPLETION" "$@" || fail "sourcing $COMPLETION failed"
}
[ "$(complete_words "$HCOWCTL" "")" = "$(tr '\n' ' ' <"$T/u.cmds")" ] ||
    fail "the completion offers commands '$(complete_words "$HCOWCTL" "")', the usage lists '$(tr '\n' ' ' <"$T/u.cmds")'"
[ "$(complete_words "$HCOWCTL" che)" = "check checkpoint " ] || fail "'hcowctl che' completes to '$(complete_words "$HCOWCTL" che)'"
[ "$(complete_words "$HCOWCTL" create vm1.img --)" = "--size --template " ] || fail "create's options: '$(complete_words "$HCOWCTL" create vm1.img --)'"
[ "$(complete_words "$HCOWCTL" -m /x debug fault "")" = "crash hang none slow " ] || fail "debug fault kinds: '$(complete_words "$HCOWCTL" -m /x debug fault "")'"
[ "$(complete_words "$HCOWCTL" debug fault crash --op wr)" = "write " ] || fail "--op values"
# every option the completion offers is one hcowctl accepts
for o in $(complete_words "$HCOWCTL" -) $(complete_words "$HCOWCTL" create x -) $(complete_words "$HCOWCTL" check -) \
    $(complete_words "$HCOWCTL" list -) $(complete_words "$HCOWCTL" debug fault crash -); do
	accepts "$HCOWCTL" "$o" || fail "the completion offers $o, which hcowctl refuses"
done
ok "bash completion: commands, options and values"

# with a mount (root and /dev/fuse): templates for --template, disks for delete
if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ]; then
	make_template base.img 1048576
	make_template other.img 1048576
	mount_fs
	ctl create vm1.img --template base.img >/dev/null
	ctl create vm2.img --template other.img >/dev/null
	got=$(complete_words "$HCOWCTL" -m "$T/mnt" create vm3.img --template "")
	[ "$got" = "base.img other.img " ] || fail "--template completes to '$got'"
	got=$(complete_words "$HCOWCTL" -m "$T/mnt" delete vm)
	[ "$got" = "vm1.img vm2.img " ] || fail "delete completes to '$got'"
	complete_words "$HCOWCTL" -m "" | grep -qF "$T/mnt" || fail "-m does not offer $T/mnt"
	ok "bash completion: templates and disks of a mount"
	# the example metrics service's command, on this mount and a scratch textfile dir
	mkdir "$T/textfile"
	[ -f "$top_srcdir/docs/examples/hcowfs-metrics.service" ] || fail "no docs/examples/hcowfs-metrics.service"
	cmd=$(sed -n 's/^ExecStart=//p' "$top_srcdir/docs/examples/hcowfs-metrics.service")
	[ -n "$cmd" ] || fail "docs/examples/hcowfs-metrics.service has no ExecStart="
	cmd=$(printf '%s' "$cmd" | sed "s|/var/lib/prometheus/node-exporter|$T/textfile|g; s|/mnt/vms|$T/mnt|g; s|hcowctl|$HCOWCTL|g")
	eval "$cmd" || fail "hcowfs-metrics.service's command failed: $cmd"
	grep -qx 'hcowfs_worker_up 1' "$T/textfile/hcowfs.prom" && [ "$(ls "$T/textfile")" = hcowfs.prom ] ||
	    fail "hcowfs-metrics.service's command wrote no complete hcowfs.prom: $(ls "$T/textfile")"
	ok "hcowfs-metrics.service's command writes the mount's metrics for the textfile collector"
	umount_fs
else
	echo "skipped: completion of templates and disks (needs root and /dev/fuse to mount)"
fi

# ---- systemd ---------------------------------------------------------------
# The example unit verifies, and the page's boot fstab line, put through
# systemd's fstab generator, makes a unit that waits for the mounts holding the
# template dir and the data dir and that verifies too.
GENERATOR=/lib/systemd/system-generators/systemd-fstab-generator
if ! command -v systemd-analyze >/dev/null; then
	echo "skipped: systemd unit checks (no systemd-analyze)"
else
	mkdir "$T/units"
	printf '[Unit]\nDescription=probe\n[Service]\nExecStart=/bin/true\n' >"$T/units/probe.service"
	if ! (cd "$T/units" && systemd-analyze verify --man=no probe.service) >"$T/verify" 2>&1; then
		echo "skipped: systemd unit checks (systemd-analyze verify cannot run here: $(head -1 "$T/verify"))"
	else
		for unit in mnt-vms.mount hcowfs-metrics.service hcowfs-metrics.timer; do
			cp "$top_srcdir/docs/examples/$unit" "$T/units/"
			(cd "$T/units" && systemd-analyze verify --man=no "$unit") >"$T/verify" 2>&1 ||
			    fail "docs/examples/$unit does not verify: $(cat "$T/verify")"
			[ -s "$T/verify" ] && fail "systemd-analyze warns on docs/examples/$unit: $(cat "$T/verify")"
			ok "docs/examples/$unit verifies"
		done
		if [ -x "$GENERATOR" ]; then
			sed 's/\\-/-/g' "$MAN/mount.hcowfs.8" | awk '$3 == "hcowfs" && NF == 6 && /x-systemd/' >"$T/fstab"
			[ -s "$T/fstab" ] || fail "mount.hcowfs.8 has no fstab line with x-systemd options"
			mkdir "$T/gen"
			SYSTEMD_FSTAB=$T/fstab "$GENERATOR" "$T/gen" "$T/gen" "$T/gen" >"$T/verify" 2>&1 ||
			    fail "systemd-fstab-generator refuses mount.hcowfs.8's line: $(cat "$T/verify")"
			unit=$T/gen/$(systemd-escape --path --suffix=mount "$(awk '{ print $2 }' "$T/fstab")")
			[ -f "$unit" ] || fail "systemd-fstab-generator made no $unit"
			datadir=$(sed -n 's/.*datadir=\([^,]*\).*/\1/p' "$T/fstab")
			tmpldir=$(awk '{ print $1 }' "$T/fstab")
			grep -q "^RequiresMountsFor=.*$datadir" "$unit" && grep -q "^RequiresMountsFor=.*$tmpldir" "$unit" ||
			    fail "the generated unit does not wait for $datadir and $tmpldir: $(cat "$unit")"
			[ -e "$T/gen/local-fs.target.wants/${unit##*/}" ] || fail "the generated unit is not wanted by local-fs.target"
			(cd "$T/gen" && systemd-analyze verify --man=no "${unit##*/}") >"$T/verify" 2>&1 ||
			    fail "the generated unit does not verify: $(cat "$T/verify")"
			ok "mount.hcowfs.8's boot fstab line makes a unit that waits for $tmpldir and $datadir"
		else
			echo "skipped: the fstab generator check (no $GENERATOR)"
		fi
	fi
fi
