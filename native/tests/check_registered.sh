#!/bin/sh
# tests/check_registered.sh - is every C test registered? The test runner runs only the tests
# listed in TESTS(X) in tests/test_main.c; a `void test_...(void)` defined in a tests/test_*.c
# but missing from that list compiles and never runs. This compares the two and fails naming
# every test defined but not listed, listed but not defined, or listed twice.
#
#   sh tests/check_registered.sh      from native/ (make test runs it before the test runner)
#
# A test is a definition `void test_NAME(void)` at the start of a line in tests/test_*.c other
# than test_main.c (helpers such as those of test_util.c have other names or are static).
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# FILE:LINE:NAME of each definition (a prototype, ending in ';', is not one)
for f in test_*.c; do
    [ "$f" = test_main.c ] && continue
    grep -n '^void test_[A-Za-z0-9_]*(void)' "$f" | grep -v '(void)[[:space:]]*;' |
        sed "s|^\([0-9]*\):void \(test_[A-Za-z0-9_]*\)(void).*|tests/$f:\1:\2|"
done >"$tmp/defined.loc"
# the names inside the TESTS(X) macro, one per X(...)
awk '/^#define TESTS\(X\)/ { inlist = 1 }
     inlist {
         rest = $0
         while (match(rest, /X\(test_[A-Za-z0-9_]*\)/)) {
             print substr(rest, RSTART + 2, RLENGTH - 3)
             rest = substr(rest, RSTART + RLENGTH)
         }
         if ($0 !~ /\\[[:space:]]*$/) inlist = 0
     }' test_main.c >"$tmp/registered.all"

sed 's/.*://' "$tmp/defined.loc" | sort >"$tmp/defined"
sort "$tmp/registered.all" >"$tmp/registered.sorted"
sort -u "$tmp/registered.all" >"$tmp/registered"
comm -23 "$tmp/defined" "$tmp/registered" >"$tmp/missing"
comm -13 "$tmp/defined" "$tmp/registered" >"$tmp/extra"
uniq -d "$tmp/registered.sorted" >"$tmp/twice"

status=0
while read -r name; do
    grep ":$name\$" "$tmp/defined.loc" | while IFS=: read -r file line _; do
        echo "$file:$line: $name is not registered in TESTS in tests/test_main.c, so it never runs"
    done
    status=1
done <"$tmp/missing"
while read -r name; do
    echo "tests/test_main.c: TESTS lists $name, which no tests/test_*.c defines as void $name(void)"
    status=1
done <"$tmp/extra"
while read -r name; do
    echo "tests/test_main.c: TESTS lists $name more than once"
    status=1
done <"$tmp/twice"
if [ "$status" != 0 ]; then
    echo "check_registered: FAILED: the tests defined and those in TESTS (tests/test_main.c) differ" >&2
    exit 1
fi
echo "check_registered: all $(wc -l <"$tmp/defined" | tr -d ' ') tests in tests/test_*.c are registered in TESTS"
