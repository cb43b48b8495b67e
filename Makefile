# The project's test command: `make check` runs every test suite, fastest first, and stops with a
# non-zero status at the first failure (make never carries on past a failed recipe line).
#   make check          C unit tests, pytest, C tests under ASan+UBSan and TSan, the fuzzer, QEMU
#                       targets
#   make check-fast     the C unit tests and pytest only
#   make ci-selftest    proves `make check` fails when a planted Python or C test fails
#
# PYTEST_ARGS adds pytest options; CI sets EDGE_LSH_NO_SKIP=1 so that a skipped test fails.
PYTHON ?= python
PYTEST_ARGS ?=

check: check-fast
	$(MAKE) -C native test-asan test-tsan fuzz
	$(MAKE) -C firmware_tests check

check-fast:
	$(MAKE) -C native test
	$(PYTHON) -m pytest -q -rs $(PYTEST_ARGS)

ci-selftest:
	sh tools/ci/selftest.sh

.PHONY: check check-fast ci-selftest
