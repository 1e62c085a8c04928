# Shared by tests/t-move.sh and tests/t-move-ceph.sh; sourced after lib.sh.

# move_log_bytes MOUNT: the bytes of the store's log (status: log.disk_bytes)
move_log_bytes() { timeout 120 "$HCOWCTL" -m "$1" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['log']['disk_bytes'])"; }
# has_disk MOUNT NAME: the store of MOUNT has a disk NAME
has_disk() { timeout 120 "$HCOWCTL" -m "$1" list --json | python3 -c "import json,sys; sys.exit(0 if any(d['name'] == '$2' for d in json.load(sys.stdin)) else 1)"; }
# own_bytes MOUNT NAME: the disk's log_bytes, its own data
own_bytes() { timeout 120 "$HCOWCTL" -m "$1" list --json | python3 -c "import json,sys; print([d for d in json.load(sys.stdin) if d['name'] == '$2'][0]['log_bytes'])"; }

# mkdisk MOUNT NAME TEMPLATE: a 48 MiB clone of TEMPLATE with 3 MiB of its own
# data, a discarded range, and data past a 32 MiB template's end; its bytes
# into $T/NAME.ref
mkdisk() {
	timeout 120 "$HCOWCTL" -m "$1" create "$2" --template "$3" --size 48M >/dev/null
	write_mib_blocks "$1/$2" 3
	fallocate -p -o $((10 * MiB + 4096)) -l $((MiB + 8192)) "$1/$2"
	python3 -c "
import os
fd = os.open('$1/$2', os.O_RDWR)
os.pwrite(fd, b'tail' * 16384, 40 * $MiB + 12345)
os.fsync(fd)"
	cp "$1/$2" "$T/$2.ref"
}
