#!/bin/sh
# Float training's cross-platform determinism: run tools/train_crc.c's build for one target and
# compare its "train_crc: ..." lines (the CRC-32 of each trained arena) with the pinned ones.
#
#   check_train_crc.sh NAME EXPECT LOG COMMAND [ARG ...]
#
# COMMAND is the emulator command line that runs the program (qemu-aarch64 -cpu ... train_crc,
# qemu-system-arm ... -kernel train_crc.elf, or the host binary itself); it runs under
# `timeout QEMU_TIMEOUT` (600 s) and must exit 0. Its output goes to LOG. Fails on any line that
# differs from EXPECT (firmware_tests/train_crc.expect, made on the host: see the Makefile's
# train-crc-expect target).
set -u
name=$1 expect=$2 log=$3
shift 3
rc=0
timeout "${QEMU_TIMEOUT:-600}" "$@" < /dev/null > "$log" 2>&1 || rc=$?
got=$(grep '^train_crc: ' "$log")
want=$(grep '^train_crc: ' "$expect")
if [ $rc -eq 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]; then
    printf '%s\n' "$got" | sed "s/^train_crc: /$name: train_crc: /"
    printf '%s: train_crc: trained arenas bit-identical to %s\n' "$name" "$expect"
    exit 0
fi
{
    printf '%s: FAIL: train_crc (exit %s): the trained arenas differ from %s\n' "$name" "$rc" "$expect"
    printf '%s\n' "$want" > "$log.want"
    printf '%s\n' "$got" > "$log.got"
    printf '%s: < pinned, > this target:\n' "$name"
    diff "$log.want" "$log.got" | sed "s/^/$name: /"
    grep -v '^train_crc: ' "$log" | tail -n 20 | sed "s/^/$name: /"
    printf '%s: (an intended change to float training re-pins the CRCs: make -C firmware_tests train-crc-expect)\n' "$name"
} >&2
exit 1
