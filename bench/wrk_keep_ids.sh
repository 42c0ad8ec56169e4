#!/bin/sh
# wrk, as the shared driver calls it, then a copy of the job ids its post_job script
# wrote: the driver deletes its own copy when it ends, and api_bench.py checks every
# answered id against the storage afterwards. WRK_REAL is the real wrk; the copy goes
# into KEEP_IDS_DIR. Anything else passes through unchanged.
script=""
previous=""
for arg in "$@"; do
    [ "$previous" = "-s" ] && script="$arg"
    previous="$arg"
done
ids=""
if [ -n "$script" ] && [ -f "$script" ]; then  # the driver removes the script after wrk
    ids=$(sed -n 's/^local ids_path = \[=*\[\(.*\)\]=*\]$/\1/p' "$script")
fi
"${WRK_REAL:?}" "$@"
rc=$?
if [ -n "$ids" ] && [ "$ids" != /dev/null ] && [ -f "$ids" ] && [ -n "$KEEP_IDS_DIR" ]; then
    cp "$ids" "$KEEP_IDS_DIR/" || rc=1
fi
exit $rc
