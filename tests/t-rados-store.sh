#!/bin/sh
# A store whose log and index live in RADOS (fs/store/media_rados.c): host A
# writes, flushes and dies; back on its own cache (a replacement worker) it
# finds and sends what it never flushed; host B takes over from an empty
# data dir, reads back every flushed byte (the catalog is in the pool too),
# and a released segment's object is gone.
. "${top_srcdir:-.}/tests/lib.sh"

scratch
ceph_start
mkdir "$T/a" "$T/b"
make_template base.img $((1024 * 1024))
P=vms/store-a
timeout 120 "$top_builddir/tests/rados_store" a $P "$T/a" "$T/tmpl" || fail "host A"
# the object holds what the flushes sent, byte for byte
timeout 30 rados -p vms -N store-a get seg.00000001 "$T/seg1" || fail "rados get"
cmp -n "$(stat -c %s "$T/seg1")" "$T/seg1" "$T/a/log/00000001.seg" || fail "segment object differs"
# host A comes back to its own cache: what it never flushed is there, and goes out
timeout 120 "$top_builddir/tests/rados_store" t $P "$T/a" "$T/tmpl" || fail "host A, trusted cache"
timeout 120 "$top_builddir/tests/rados_store" b $P "$T/b" "$T/tmpl" || fail "host B"
ok "a store in RADOS: flushed bytes in their object, read back by another host, a released segment gone"
