#!/bin/sh
# fuzz/selftest.sh - does the fuzzer catch bugs? For each planted bug below, builds the fuzzer
# against a copy of the library in which one check of src/model_io.c is removed, runs it, and
# succeeds only if every such fuzzer fails: with an AddressSanitizer report for a bounds check,
# with its own report of a wrong status for the per-file limits. A control run of the fuzzer
# built against the real library must first pass the same iterations.
#
#   make -C native fuzz-selftest      (part of make -C native fuzz)
#   fuzz/selftest.sh ASAN_BUILD_DIR ITERATIONS FILE.elsh...      from native/, with CC and
#       CFLAGS set; ASAN_BUILD_DIR holds the library's objects and fuzz_model built with ASan
#
# The planted bugs (the first two: a check whose absence lets a truncated file be read past its
# end; found by the mutated files):
#   file-length   read_header trusts the file length in the header: the CRC of a truncated
#                 file whose header still gives the old length runs past the end of the buffer
#   section-end   read_sections checks where a section starts but not where it ends: after a
#                 truncation that the header agrees with, a section (INFO, whose size nothing
#                 else checks) runs past the end of the buffer
#   limits        open_model does not refuse a file over the per-file limits (FORMAT.md 5.8):
#                 the structure-aware files that straddle a limit get the wrong status
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
gen=${GEN_ITERATIONS:-400}
if ! "$asan/fuzz_model" -n "$n" -g "$gen" -o "$top/control_failure.elsh" "$@" >"$top/control.log" 2>&1; then
    cat "$top/control.log" >&2
    echo "fuzz selftest: the fuzzer fails on the real library, so a planted bug proves nothing" >&2
    exit 1
fi
echo "fuzz selftest: control: $n mutated and $gen structure-aware files pass on the real library"

# plant NAME LINE SED EXPECT FUZZ_ARGS...: remove a check (LINE, found exactly once in
# src/model_io.c, must change and nothing else may), build the fuzzer against that library,
# fuzz with FUZZ_ARGS, and require a failure whose log matches EXPECT (an extended regex)
plant()
{
    name=$1
    line=$2
    edit=$3
    expect=$4
    shift 4
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
    "$dir/fuzz_model" -o "$dir/fuzz_failure.elsh" "$@" >"$dir/fuzz.log" 2>&1 || status=$?
    if [ "$status" = 0 ] || ! grep -qE "$expect" "$dir/fuzz.log"; then
        cat "$dir/fuzz.log" >&2
        echo "fuzz selftest: FAILED: the fuzzer ($*) did not catch planted bug '$name'" \
            "(exit status $status, nothing in its log matches '$expect')" >&2
        exit 1
    fi
    echo "fuzz selftest: caught (exit status $status):"
    grep -E 'ERROR: AddressSanitizer|^READ|^WRITE|^ +#[0-2] |is located' "$dir/fuzz.log" |
        head -n 6 | sed 's/^ */    /'
    grep '^fuzz: ' "$dir/fuzz.log" | sed 's/^/    /' || true
}

asan_report='ERROR: AddressSanitizer'
plant file-length \
    'if (*file_bytes > size || *file_bytes < HEADER_BYTES) return ELSH_FMT_TRUNCATED;' \
    's/if (\*file_bytes > size || \*file_bytes < HEADER_BYTES)/if (*file_bytes < HEADER_BYTES)/' \
    "$asan_report" -n "$n" "$@"
plant section-end \
    'if (off < data_start || off > file_bytes || sz > file_bytes - off) return ELSH_FMT_BOUNDS;' \
    's/ || sz > file_bytes - off) return ELSH_FMT_BOUNDS;/) return ELSH_FMT_BOUNDS;/' \
    "$asan_report" -n "$n" "$@"
plant limits \
    'return ELSH_FMT_LIMITS;' \
    's|return ELSH_FMT_LIMITS;|(void)0; /* planted: the per-file limits not enforced */|' \
    '^fuzz: .*(expected -118|over its limit|the layout adds up)' -n 0 -g "$gen"
echo "fuzz selftest: passed: every planted bug fails the fuzzer (logs in $top)"
