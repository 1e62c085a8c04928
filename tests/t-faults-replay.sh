#!/bin/bash
# The fault campaign (tests/faults.sh) with replay of held requests from
# shared memory, the path for kernels without FUSE_NOTIFY_RESEND.
REISSUE=replay FAULTS=${FAULTS:-24}
. "${top_srcdir:-$(dirname "$0")/..}/tests/faults.sh"
