#!/bin/sh
# Proves that the project's test command (`make check`, which .ci/run calls) fails when a test
# fails. In a scratch copy of the working tree it plants one failing pytest test, then (in a fresh
# copy) one failing C unit test, runs `make check` in each and requires a non-zero exit status and
# the planted failure in the output. Also rejects a .ci/run that chains commands with `&&`: under
# `set -e` a failure before the last command of such a chain does not stop the script.
# Last, it shows that a skipped test fails pytest when EDGE_LSH_NO_SKIP=1 (as in CI).
#   sh tools/ci/selftest.sh          (or: make ci-selftest)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/edge-lsh-selftest.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM
fails=0

copy_tree() {  # $1: destination; the tracked and untracked-but-not-ignored files, as they are now
    # One tar reads the whole list (-T): with xargs, a long list (say a virtual environment
    # inside the clone that .gitignore does not name) started several tars whose archives the
    # reader stopped after the first of, and the copy came out partial.
    mkdir -p "$1"
    (cd "$root" && git ls-files -z --cached --others --exclude-standard) |
        (cd "$root" && tar cf - --null --no-recursion -T -) | (cd "$1" && tar xf -)
}

expect_failure() {  # $1: label, $2: directory, $3: text the log must contain, then the command
    label=$1 dir=$2 pattern=$3
    shift 3
    log="$scratch/$label.log"
    if (cd "$dir" && "$@" >"$log" 2>&1); then
        echo "selftest: FAIL $label: '$*' exited 0 with a planted failure" >&2
        tail -n 20 "$log" >&2
        fails=$((fails + 1))
    elif ! grep -q "$pattern" "$log"; then
        echo "selftest: FAIL $label: '$*' failed, but not on the planted failure ($pattern)" >&2
        tail -n 20 "$log" >&2
        fails=$((fails + 1))
    else
        echo "selftest: ok $label: '$*' exits non-zero and names the planted failure"
    fi
}

# 1. .ci/run runs one command per line: no `cmd && cmd` outside if/while conditions.
chains=$(grep -nE '^[^#]*[^|&]&&[^&]' "$root/.ci/run" | grep -vE '^[0-9]+:\s*(if|while|\[)' || true)
if [ -n "$chains" ]; then
    echo "selftest: FAIL .ci/run chains commands with &&; put each on its own line:" >&2
    echo "$chains" >&2
    fails=$((fails + 1))
else
    echo "selftest: ok .ci/run has one command per line"
fi

# 2. A failing Python test fails the test command.
copy_tree "$scratch/py"
cat >"$scratch/py/tests/test_aaa_planted_failure.py" <<'PY'
def test_planted_failure():
    assert 1 + 1 == 3, "planted failure"
PY
expect_failure python "$scratch/py" "test_planted_failure" make check PYTEST_ARGS=-x

# 3. A failing C unit test fails the test command.
copy_tree "$scratch/c"
python3 - "$scratch/c/native/tests/test_prng.c" <<'PY'
import sys
path = sys.argv[1]
src = open(path).read()
head = "void test_prng_known_answers(void)\n{\n"
assert head in src, "test_prng_known_answers not found"
src = src.replace(head, head + '    CHECK_MSG(0, "planted failure");\n', 1)
open(path, "w").write(src)
PY
expect_failure c "$scratch/c" "planted failure" make check PYTEST_ARGS=-x

# 4. In CI (EDGE_LSH_NO_SKIP=1) a skipped test fails the run: tests/conftest.py turns skips into
#    failures, so a missing tool or package cannot hide a test.
cat >"$scratch/py/tests/test_aaa_planted_failure.py" <<'PY'
import pytest


def test_planted_skip():
    pytest.skip("planted skip")
PY
expect_failure skip "$scratch/py" "planted skip" \
    env EDGE_LSH_NO_SKIP=1 python -m pytest -q tests/test_aaa_planted_failure.py

if [ "$fails" -ne 0 ]; then
    echo "selftest: $fails check(s) failed" >&2
    exit 1
fi
echo "selftest: 4 checks passed"
