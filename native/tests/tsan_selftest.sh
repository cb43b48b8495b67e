#!/bin/sh
# tsan_selftest.sh RUNNER - the C test runner built with -DELSH_PLANT_RACE (layer_f32_shared.c
# with plain loads and stores instead of relaxed atomic ones, layer_f32_owned.c with plain
# weight stores) must be stopped by
# ThreadSanitizer with a data race report in the shared layer code: proof that `make test-tsan`
# would catch a real race in the asynchronous training threads.
set -u
runner=$1
log=$(mktemp)
"$runner" >"$log" 2>&1
status=$?
if [ "$status" -ne 66 ] || ! grep -q "WARNING: ThreadSanitizer: data race" "$log" ||
    ! grep -q "_shared" "$log"; then
    echo "tsan-selftest: FAILED: the planted race was not reported (status $status)" >&2
    tail -n 20 "$log" >&2
    rm -f "$log"
    exit 1
fi
echo "tsan-selftest: the planted race in layer_f32_shared.c was reported:"
grep -m 3 -E "^    #[0-9] .*_shared" "$log" | sed 's/^/  /'
rm -f "$log"
