#!/bin/bash
# One host serves a store in a cluster: the fence and the catalog in RADOS
# (tests/check_store_fence.c), on a one-OSD cluster of the test's own.
. "$(dirname "$0")/lib.sh"
need python3
scratch
ceph_start
"$top_builddir/tests/check_store_fence" || fail "check_store_fence (above)"
ok "fence: refused second host, takeover fences the old one, replacement keeps its cache, lease renewed once a second"
