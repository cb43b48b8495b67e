#!/bin/sh
# fuzz/selftest.sh - does the fuzzer catch bugs? For each planted bug below, builds the fuzzer
# against a copy of the library in which one bounds check of src/model_io.c is removed, runs
# it, and succeeds only if every such fuzzer fails with an AddressSanitizer report. A control
# run of the fuzzer built against the real library must first pass the same iterations.
#
#   make -C native fuzz-selftest      (part of make -C native fuzz)
#   fuzz/selftest.sh ASAN_BUILD_DIR ITERATIONS FILE.elsh...      from native/, with CC and
#       CFLAGS set; ASAN_BUILD_DIR holds the library's objects and fuzz_model built with ASan
#
# The planted bugs (each a check whose absence lets a truncated file be read past its end):
#   file-length   read_header trusts the file length in the header: the CRC of a truncated
#                 file whose header still gives the old length runs past the end of the buffer
#   section-end   read_sections checks where a section starts but not where it ends: after a
#                 truncation that the header agrees with, a section (INFO, whose size nothing
#                 else checks) runs past the end of the buffer
set -eu
if [ $# -lt 3 ]; then
    echo "usage: fuzz/selftest.sh ASAN_BUILD_DIR ITERATIONS FILE.elsh..." >&2
    exit 2
fi
asan=$1
n=$2
shift 2
CC=${CC:-cc}
AR=${AR:-ar}
CFLAGS=${CFLAGS:?set CFLAGS to the sanitizer build flags}
top=$asan/planted-bugs
rm -rf "$top"
mkdir -p "$top"

objs=
for src in src/*.c; do
    name=$(basename "$src" .c)
    [ "$name" = model_io ] && continue
    [ -f "$asan/$name.o" ] || { echo "fuzz selftest: $asan/$name.o is missing" >&2; exit 1; }
    objs="$objs $asan/$name.o"
done

# control: the fuzzer passes these iterations on the real library
if ! "$asan/fuzz_model" -n "$n" -o "$top/control_failure.elsh" "$@" >"$top/control.log" 2>&1; then
    cat "$top/control.log" >&2
    echo "fuzz selftest: the fuzzer fails on the real library, so a planted bug proves nothing" >&2
    exit 1
fi
echo "fuzz selftest: control: $n iterations pass on the real library"

# plant NAME LINE SED FILE.elsh...: remove a check (LINE, found exactly once in
# src/model_io.c, must change and nothing else may), build the fuzzer against that library,
# fuzz the files, and require an ASan failure
plant()
{
    name=$1
    line=$2
    edit=$3
    shift 3
    dir=$top/$name
    mkdir -p "$dir"
    if [ "$(grep -cF "$line" src/model_io.c)" != 1 ]; then
        echo "fuzz selftest: $name: this line is not (exactly once) in src/model_io.c:" >&2
        echo "    $line" >&2
        echo "  model_io.c changed: update the planted bug in fuzz/selftest.sh" >&2
        exit 1
    fi
    sed "$edit" src/model_io.c >"$dir/model_io.c"
    removed=$(diff src/model_io.c "$dir/model_io.c" | grep -c '^<' || true)
    added=$(diff src/model_io.c "$dir/model_io.c" | grep -c '^>' || true)
    if [ "$removed" != 1 ] || [ "$added" != 1 ] || grep -qF "$line" "$dir/model_io.c"; then
        echo "fuzz selftest: $name: the patch changed $removed lines, expected that one line" >&2
        exit 1
    fi
    echo "fuzz selftest: planted bug '$name' in a copy of src/model_io.c:"
    diff src/model_io.c "$dir/model_io.c" | grep '^[<>]' | sed 's/^/    /'
    # shellcheck disable=SC2086 # CFLAGS and objs are word lists
    $CC $CFLAGS -Iinclude -Isrc -c "$dir/model_io.c" -o "$dir/model_io.o"
    # shellcheck disable=SC2086
    $AR rcs "$dir/libedge_lsh.a" $objs "$dir/model_io.o"
    # shellcheck disable=SC2086
    $CC $CFLAGS -Iinclude fuzz/fuzz_model.c "$dir/libedge_lsh.a" -lm -o "$dir/fuzz_model"

    status=0
    "$dir/fuzz_model" -n "$n" -o "$dir/fuzz_failure.elsh" "$@" >"$dir/fuzz.log" 2>&1 || status=$?
    if [ "$status" = 0 ] || ! grep -q 'ERROR: AddressSanitizer' "$dir/fuzz.log"; then
        cat "$dir/fuzz.log" >&2
        echo "fuzz selftest: FAILED: $n iterations did not catch planted bug '$name'" \
            "(exit status $status, no AddressSanitizer report)" >&2
        exit 1
    fi
    echo "fuzz selftest: caught (exit status $status):"
    grep -E 'ERROR: AddressSanitizer|^READ|^WRITE|^ +#[0-2] |is located' "$dir/fuzz.log" |
        head -n 6 | sed 's/^ */    /'
    grep '^fuzz: iteration' "$dir/fuzz.log" | sed 's/^/    /' || true
}

plant file-length \
    'if (*file_bytes > size || *file_bytes < HEADER_BYTES) return ELSH_FMT_TRUNCATED;' \
    's/if (\*file_bytes > size || \*file_bytes < HEADER_BYTES)/if (*file_bytes < HEADER_BYTES)/' "$@"
plant section-end \
    'if (off < data_start || off > file_bytes || sz > file_bytes - off) return ELSH_FMT_BOUNDS;' \
    's/ || sz > file_bytes - off) return ELSH_FMT_BOUNDS;/) return ELSH_FMT_BOUNDS;/' "$@"
echo "fuzz selftest: passed: every planted bug fails the fuzzer (logs in $top)"
