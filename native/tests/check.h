/*
 * check.h - a tiny C99 test harness (no dependencies beyond libc and libm).
 *
 *   CHECK(cond)              cond is true
 *   CHECK_EQ_INT(a, b)       two integers are equal (compared as long long)
 *   CHECK_NEAR(a, b, tol)    |a - b| <= tol (compared as double; NaN always fails)
 *   CHECK_MSG(cond, ...)     cond is true; printf-style message on failure
 *
 * A failing check prints one line "FAIL <test>: <file>:<line>: <message>" and marks the
 * current test function failed; the test keeps running. Test functions are `void fn(void)`,
 * run with RUN(fn) from tests/test_main.c, which ends with check_summary(): it prints
 * "N passed, M failed" (test functions) and returns the process exit status.
 * The implementation lives in tests/test_main.c.
 */
#ifndef ELSH_TEST_CHECK_H
#define ELSH_TEST_CHECK_H

#include <math.h>

#if defined(__GNUC__) || defined(__clang__)
#define CHECK_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CHECK_PRINTF(f, a)
#endif

/* Record one failed check of the current test (prints it). */
void check_fail(const char *file, int line, const char *fmt, ...) CHECK_PRINTF(3, 4);
/* Run one test function, counting it as passed or failed. */
void check_run(const char *name, void (*fn)(void));
/* Print "N passed, M failed"; returns 0 when nothing failed, 1 otherwise. */
int check_summary(void);
/* Failed checks so far in the current test function (lets a test stop early). */
int check_current_failures(void);

#define RUN(fn) check_run(#fn, fn)

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) check_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                     \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                 \
    do {                                                                                     \
        if (!(cond)) check_fail(__FILE__, __LINE__, __VA_ARGS__);                            \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                   \
    do {                                                                                     \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                      \
        if (check_a_ != check_b_)                                                            \
            check_fail(__FILE__, __LINE__, "CHECK_EQ_INT(%s, %s): %lld != %lld", #a, #b,     \
                       check_a_, check_b_);                                                  \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                \
    do {                                                                                     \
        double check_a_ = (double)(a), check_b_ = (double)(b), check_t_ = (double)(tol);     \
        if (!(fabs(check_a_ - check_b_) <= check_t_))                                        \
            check_fail(__FILE__, __LINE__, "CHECK_NEAR(%s, %s, %s): %.9g vs %.9g (diff %.3g)", \
                       #a, #b, #tol, check_a_, check_b_, check_a_ - check_b_);               \
    } while (0)

#endif
