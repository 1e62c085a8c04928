#!/bin/bash
# The fault campaign (tests/faults.sh) with the kernel resending held requests.
REISSUE=resend FAULTS=${FAULTS:-24}
. "${top_srcdir:-$(dirname "$0")/..}/tests/faults.sh"
