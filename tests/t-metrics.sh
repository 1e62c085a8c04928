#!/bin/bash
# Proves: the per-disk I/O counters of `hcowctl status --json` move by exactly
# the reads, writes and bytes done to each of two disks (read bytes split
# between template and log as the test arranged), and survive `hcowctl
# restart` and a kill -9 of the worker; `hcowctl metrics` is valid Prometheus
# text (checked by promtool when installed, and required with CI=true, and by
# the parser below) with those counters in it; `hcowctl top -n 2` piped
# prints two plain tables.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
mount_test python3
make_template other.img $((1024 * 1024))
mount_fs -o hang_timeout=2000
ctl create vm1.img --template base.img >/dev/null || fail "create vm1.img"
ctl create vm2.img --template other.img >/dev/null || fail "create vm2.img"

# io FIELD DISK: a per-disk counter from status --json (-1 when the disk has none)
io() { status_field "next((e['$1'] for e in s.get('io', []) if e['disk'] == '$2'), -1)"; }

# direct I/O so every request reaches the worker: write 3 x 4 KiB to vm1
# (log), read them back (log) and 8 KiB beyond them (template); vm2: 5 reads
python3 - "$M" <<'PY' || fail "I/O"
import mmap, os, sys
m = sys.argv[1]
buf = mmap.mmap(-1, 1 << 16)
fd = os.open(m + "/vm1.img", os.O_RDWR | os.O_DIRECT)
buf[:4096] = b"x" * 4096
for i in range(3):
    assert os.pwritev(fd, [memoryview(buf)[:4096]], i * 4096) == 4096
assert os.preadv(fd, [memoryview(buf)[:12288]], 0) == 12288
assert os.preadv(fd, [memoryview(buf)[:8192]], 65536) == 8192
os.close(fd)
fd = os.open(m + "/vm2.img", os.O_RDONLY | os.O_DIRECT)
for i in range(5):
    assert os.preadv(fd, [memoryview(buf)[:4096]], i * 4096) == 4096
os.close(fd)
PY
check_counts() {
	when=$1
	for want in "writes vm1.img 3" "written_bytes vm1.img 12288" "reads vm1.img 2" \
	    "read_bytes vm1.img 20480" "log_read_bytes vm1.img 12288" \
	    "template_read_bytes vm1.img 8192" "reads vm2.img 5" "read_bytes vm2.img 20480" \
	    "writes vm2.img 0" "template_read_bytes vm2.img 20480"; do
		set -- $want
		got=$(io "$1" "$2")
		[ "$got" = "$3" ] || fail "$when: $2 $1 = $got, expected $3"
	done
	lat=$(status_field "sum(next(e for e in s['io'] if e['disk'] == 'vm1.img')['write_latency']['buckets'])")
	[ "$lat" = 3 ] || fail "$when: vm1.img's write latency histogram holds $lat writes, expected 3"
}
check_counts "after the I/O"
ok "per-disk counters: reads, writes, bytes, template/log split and latency count exact"
ctl status | grep -q "^vm1.img .* 3 .*12288" || fail "status text shows no vm1.img I/O line: $(ctl status)"
ok "status text shows the per-disk I/O"

old=$(worker_pid)
ctl restart >/dev/null || fail "hcowctl restart"
wait_for new_worker_serving "$old" || fail "no worker after hcowctl restart"
check_counts "after hcowctl restart"
old=$(worker_pid)
kill -9 "$old"
wait_for new_worker_serving "$old" || fail "no worker after kill -9"
check_counts "after kill -9 of the worker"
ok "the counters survive hcowctl restart and kill -9 of the worker"

ctl metrics >"$T/metrics" || fail "hcowctl metrics"
if command -v promtool >/dev/null; then
	promtool check metrics <"$T/metrics" || fail "promtool rejects hcowctl metrics"
	ok "promtool check metrics passes"
elif [ "${CI:-}" = true ]; then
	# CI installs it (tools/get-promtool.sh): the check must not vanish quietly
	fail "promtool is missing in CI (tools/get-promtool.sh puts it in /usr/local/bin)"
fi
python3 - "$T/metrics" <<'PY' || fail "hcowctl metrics is not valid Prometheus text: $(head -50 "$T/metrics")"
# The text exposition format 0.0.4, as far as hcowctl uses it: HELP then
# TYPE before a family's samples, each family once, names and labels well
# formed, counters ending _total, histograms cumulative with le="+Inf" equal
# to _count, no series twice.
import re, sys
name_re = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
label_re = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample_re = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (\S+)$" % (name_re, label_re, label_re))
types, seen, cur, buckets, counts = {}, set(), None, {}, {}
for n, line in enumerate(open(sys.argv[1]), 1):
    line = line.rstrip("\n")
    def bad(why):
        sys.exit("line %d: %s: %r" % (n, why, line))
    if line.startswith("# HELP "):
        fam = line.split(" ")[2]
        if fam in types: bad("family described twice")
        cur = fam
        continue
    if line.startswith("# TYPE "):
        _, _, fam, typ = line.split(" ")
        if fam != cur or typ not in ("counter", "gauge", "histogram"): bad("TYPE without its HELP")
        if typ == "counter" and not fam.endswith("_total"): bad("counter not named _total")
        if not fam.startswith("hcowfs_"): bad("no hcowfs_ prefix")
        types[fam] = typ
        continue
    m = sample_re.match(line)
    if not m: bad("malformed sample")
    name, labels, value = m.group(1), m.group(2) or "", m.group(3)
    float(value)
    fam = re.sub(r"_(bucket|sum|count)$", "", name) if types.get(cur) == "histogram" else name
    if fam != cur: bad("sample outside its family")
    if (name, labels) in seen: bad("series twice")
    seen.add((name, labels))
    if name.endswith("_bucket"):
        key = re.sub(r',?le="[^"]*"', "", labels)
        if buckets.get(key, 0) > float(value): bad("histogram not cumulative")
        buckets[key] = float(value)
        if 'le="+Inf"' in labels: counts[key] = float(value)
    elif name.endswith("_count") and types.get(cur) == "histogram":
        if counts.get(labels) != float(value): bad("_count differs from the +Inf bucket")
PY
ok "hcowctl metrics is well-formed Prometheus text (families, names, labels, histograms)"
for want in 'hcowfs_disk_writes_total{disk="vm1.img"} 3' 'hcowfs_disk_read_bytes_total{disk="vm2.img"} 20480' \
    'hcowfs_disk_request_duration_seconds_count{disk="vm1.img",op="write"} 3' \
    'hcowfs_restarts_total{cause="restart"} 1' 'hcowfs_restarts_total{cause="crash"} 1' \
    'hcowfs_worker_up 1'; do
	grep -qxF "$want" "$T/metrics" || fail "metrics lacks: $want"
done
for fam in hcowfs_log_size_bytes hcowfs_log_live_bytes hcowfs_cleaner_released_bytes_total \
    hcowfs_space_free_bytes hcowfs_space_reserve_bytes hcowfs_checkpoint_age_seconds \
    hcowfs_checkpoint_failures hcowfs_index_size_bytes hcowfs_requests_outstanding hcowfs_last_fault_recovery_seconds \
    hcowfs_disk_template_read_bytes_total hcowfs_disk_log_read_bytes_total; do
	grep -qE "^$fam[ {]" "$T/metrics" || fail "metrics lacks $fam"
done
ok "hcowctl metrics holds the per-disk counters, restarts by cause, log, space and checkpoint"

ctl top -n 2 0.2 </dev/null >"$T/top" || fail "hcowctl top -n 2"
[ "$(grep -c '^DISK ' "$T/top")" = 2 ] || fail "top -n 2 printed not two tables: $(cat "$T/top")"
grep -q $'\033' "$T/top" && fail "top piped wrote terminal escapes"
grep -q "^vm1.img " "$T/top" && grep -q "^vm2.img " "$T/top" || fail "top lacks a disk: $(cat "$T/top")"
ok "hcowctl top -n 2 piped prints two plain tables"
umount_fs
