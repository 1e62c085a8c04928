#!/bin/bash
# Proves: `hcowctl check` run back to back, from several clients at once, does
# not keep the cleaner from running.  A check holds the cleaner's lock while
# it reads a batch of extents; before, it held it for the whole check, so with
# checks queued at the worker the cleaner never got it and the log grew with
# every overwrite.  Small segments (16 MiB) so that cleaning is due early.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test
mount_fs -o segment_size=16M,checkpoint_ms=200,standby=off
ctl create a.img --template base.img --size 24M >/dev/null
cp "$T/tmpl/base.img" "$T/ref-a"; truncate -s 24M "$T/ref-a"
# a disk of many small extents, so that one check takes a while
$PATTERN mirror "$M/a.img" "$T/ref-a" --seed c0 --ops 3000 --max-len 8192 --fsync ||
	fail "first writer saw an error"

touch "$T/checking"
checker() {
	while [ -e "$T/checking" ]; do
		out=$(ctl check 2>&1) || { echo "$out" > "$T/check-failed"; return; }
	done
}
checker & c1=$!
checker & c2=$!
checker & c3=$!
released0=$(status_field 's["log"]["released_bytes"]')
for round in 1 2 3 4 5 6; do
	$PATTERN mirror "$M/a.img" "$T/ref-a" --seed "c$round" --ops 1500 --max-len 65536 --fsync ||
		fail "writer saw an error (round $round)"
done
sleep 2
released=$(status_field 's["log"]["released_bytes"]')
rm -f "$T/checking"
wait $c1 $c2 $c3
[ -e "$T/check-failed" ] && fail "a check failed while the cleaner ran: $(cat "$T/check-failed")"
[ "$released" -gt "$released0" ] ||
	fail "the cleaner released nothing while checks ran back to back (released bytes $released)"
ok "the cleaner released $(( (released - released0) >> 20 )) MiB while three clients ran checks back to back"
$PATTERN compare "$M/a.img" "$T/ref-a" || fail "a.img differs after cleaning under checks"
out=$(ctl check) || fail "check after cleaning: $out"
ok "no byte lost; a last check is clean"
