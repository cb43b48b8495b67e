#!/bin/sh
# Run the cross-compiled C unit tests, the golden conformance check and the runner comparison
# of one target under its emulator; fail loudly on any difference.
#
#   check_native.sh NAME BUILD_DIR HOST_DIR INPUT_DIR "RUN" MODEL.elsh [MODEL2.elsh ...]
#
# RUN is the emulator prefix ("qemu-aarch64 -cpu cortex-a53", "" for the host itself); each
# emulated run is limited to QEMU_TIMEOUT seconds (600).
#  1. BUILD_DIR/test_runner: every C unit test must pass ("N passed, 0 failed", exit 0);
#  2. BUILD_DIR/golden_check over every MODEL and its .expect: every logit bit-exact with the
#     numpy reference;
#  3. BUILD_DIR/edge-lsh-run MODEL INPUT_DIR/NAME.csv --logits (and with --dense): the
#     predictions and logits (the lines not starting with '#') byte-identical to the host
#     build's HOST_DIR/edge-lsh-run on the same file.
set -u
name=$1 dir=$2 host=$3 inputs=$4 run=$5
shift 5
# every emulated run gets a time limit
[ -n "$run" ] && run="timeout ${QEMU_TIMEOUT:-600} $run"
fail=0
say() { printf '%s: %s\n' "$name" "$*"; }
bad() { printf '%s: FAIL: %s\n' "$name" "$*" >&2; fail=1; }

# 1. unit tests
$run "$dir/test_runner" > "$dir/unit.log" 2>&1
rc=$?
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$dir/unit.log" | tail -n 1)
if [ $rc -ne 0 ] || ! printf '%s\n' "$summary" | grep -qE '^[0-9]+ passed, 0 failed'; then
    tail -n 20 "$dir/unit.log" >&2
    bad "unit tests (exit $rc): ${summary:-no summary line} (log: $dir/unit.log)"
else
    say "unit tests: $summary"
fi

# 2. golden conformance, one model per run (semihosting command lines are short)
: > "$dir/golden.log"
n_ok=0
for m in "$@"; do
    $run "$dir/golden_check" "$m" "${m%.elsh}.expect" >> "$dir/golden.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && tail -n 1 "$dir/golden.log" | grep -q 'bit-exact$'; then
        n_ok=$((n_ok + 1))
    else
        bad "golden: $m (exit $rc)"
    fi
done
if [ "$n_ok" -ne $# ]; then
    cat "$dir/golden.log" >&2
    bad "golden: $n_ok of $# models bit-exact"
else
    say "golden: $n_ok of $# models bit-exact with the numpy reference"
fi

# 3. the runner against the host's
mkdir -p "$dir/runner"
n_cmp=0 n_same=0
for m in "$@"; do
    base=$(basename "$m" .elsh)
    csv="$inputs/$base.csv"
    for mode in lsh dense; do
        opt=""
        [ $mode = dense ] && opt="--dense"
        out="$dir/runner/$base.$mode"
        n_cmp=$((n_cmp + 1))
        if ! "$host/edge-lsh-run" "$m" "$csv" --logits $opt > "$out.host.full" 2>&1; then
            bad "host runner failed on $base $mode"
            continue
        fi
        if ! $run "$dir/edge-lsh-run" "$m" "$csv" --logits $opt > "$out.full" 2>&1; then
            cat "$out.full" >&2
            bad "runner failed on $base $mode"
            continue
        fi
        grep -v '^#' "$out.host.full" > "$out.host"
        grep -v '^#' "$out.full" > "$out.target"
        rows=$(wc -l < "$out.target")
        if [ "$rows" -lt 1 ]; then
            bad "runner printed no predictions for $base $mode"
        elif cmp -s "$out.host" "$out.target"; then
            n_same=$((n_same + 1))
        else
            diff "$out.host" "$out.target" | head -n 10 >&2
            bad "runner output differs from the host's: $base $mode ($out.target)"
        fi
    done
done
if [ "$n_same" -eq "$n_cmp" ]; then
    say "runner: $n_same of $n_cmp runs (every model, LSH and --dense) identical to the host's predictions and logits"
fi

if [ $fail -ne 0 ]; then
    say "FAILED"
    exit 1
fi
say "PASS"
