/* test_main.c - the C test runner: the harness implementation and the list of tests.
 * Every test is a `void test_...(void)` function in some tests/test_*.c file; add it to TESTS.
 * make test first runs tests/check_registered.sh, which fails naming any test defined but not
 * in TESTS (it would never run), listed but not defined, or listed twice. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

#define TESTS(X)                                                                             \
    /* test_prng.c */                                                                        \
    X(test_prng_known_answers)                                                               \
    X(test_prng_mix64_known_answers)                                                         \
    X(test_prng_derived_known_answers)                                                       \
    X(test_prng_reseed_repeats)                                                              \
    X(test_prng_below_range)                                                                 \
    X(test_prng_below_uniform)                                                               \
    X(test_prng_uniform_range)                                                               \
    X(test_prng_normal_moments)                                                              \
    X(test_prng_below_zero_and_one)                                                          \
    X(test_prng_all_zero_state_is_reseeded)                                                  \
    /* test_net.c */                                                                         \
    X(test_status_str)                                                                       \
    X(test_plan_accepts_valid_configs)                                                       \
    X(test_plan_rejects_bad_configs)                                                         \
    X(test_plan_ignores_hash_config_of_dense_layer)                                          \
    X(test_plan_null_pointers)                                                               \
    X(test_plan_size_stable_and_grows)                                                       \
    X(test_arena_allocator)                                                                  \
    X(test_init_arena_errors)                                                                \
    X(test_layer_accessors)                                                                  \
    X(test_init_layer_views)                                                                 \
    X(test_active_k_rounding)                                                                \
    X(test_init_attaches_saved_arena)                                                        \
    X(test_randomize_initial_state)                                                          \
    X(test_determinism_randomize)                                                            \
    X(test_determinism_training)                                                             \
    X(test_different_seed_different_weights)                                                 \
    X(test_reset_counters)                                                                   \
    /* test_hash.c */                                                                        \
    X(test_simhash_hand_projection)                                                          \
    X(test_ternary_hand_projection)                                                          \
    X(test_dwta_hand_bins)                                                                   \
    X(test_dwta_densification)                                                               \
    X(test_zero_input_code_zero)                                                             \
    X(test_hash_pool_dense_and_sparse)                                                       \
    X(test_forward_pooling_restores_scratch)                                                 \
    X(test_hash_neuron_pooled)                                                               \
    X(test_hash_draw_ranges)                                                                 \
    /* test_tables.c */                                                                      \
    X(test_tables_rebuild_consistent)                                                        \
    X(test_tables_fifo_evicts_oldest)                                                        \
    X(test_tables_reservoir_full)                                                            \
    X(test_tables_reservoir_uniform)                                                         \
    X(test_tables_update_moves_dirty)                                                        \
    X(test_tables_update_stress)                                                             \
    X(test_tables_count)                                                                     \
    /* test_count_planes.c */                                                                \
    X(test_count_planes_versions)                                                            \
    /* test_select.c */                                                                      \
    X(test_select_topk_exact)                                                                \
    X(test_select_topk_ties_lower_id)                                                        \
    X(test_select_union)                                                                     \
    X(test_select_padding_empty_buckets)                                                     \
    X(test_select_k_larger_than_candidates)                                                  \
    X(test_select_force_label)                                                               \
    X(test_pad_order_is_permutation)                                                         \
    /* test_layer.c */                                                                       \
    X(test_dense_forward_matches_reference)                                                  \
    X(test_dense_train_steps_match_adagrad)                                                  \
    X(test_sparse_layer_only_active)                                                         \
    X(test_sparse_train_steps_match_reference)                                               \
    X(test_forward_op_counts)                                                                \
    X(test_train_blobs_lsh)                                                                  \
    X(test_train_blobs_lsh_output)                                                           \
    X(test_train_batch_matches_samples)                                                      \
    X(test_train_bad_label)                                                                  \
    X(test_all_zero_inputs)                                                                  \
    X(test_softmax_large_logits)                                                             \
    X(test_rebuild_interval_and_shuffle)                                                     \
    X(test_bug_nonfinite_input_rejected)                                                     \
    X(test_bug_fifo_evicts_oldest_after_removal)                                             \
    X(test_portable_exp_accuracy)                                                            \
    /* test_fixed.c */                                                                       \
    X(test_crc32_known_answers)                                                              \
    X(test_requantize_cases)                                                                 \
    X(test_quantize_input_edges)                                                             \
    X(test_quantize_input_versions)                                                          \
    X(test_qlayer_saturation_relu_and_wrap)                                                  \
    X(test_select_csr_ties_padding_union)                                                    \
    X(test_model_open_first_checks)                                                          \
    X(test_dot_products_all_versions)                                                        \
    X(test_attach_after_failed_open_fails)                                                   \
    /* test_limits.c */                                                                      \
    X(test_limits_issue_files_refused_at_open)                                               \
    X(test_limits_each_total_met_exactly)                                                    \
    X(test_preprocess_section)                                                               \
    X(test_limits_every_rule_broken)                                                         \
    /* test_api_guards.c */                                                                  \
    X(test_api_null_pointers)                                                                \
    X(test_api_zeroed_float_net)                                                             \
    X(test_api_zeroed_fixed_net)                                                             \
    /* test_probs.c */                                                                       \
    X(test_qnet_probs_softmax)                                                               \
    X(test_qnet_probs_exp_range)                                                             \
    X(test_qnet_probs_known_bits)                                                            \
    X(test_qnet_probs_states)                                                                \
    /* test_slots.c */                                                                       \
    X(test_slots_power_cut_every_byte)                                                       \
    X(test_slots_power_cut_consecutive_saves)                                                \
    X(test_slots_first_boot_no_model)                                                        \
    X(test_slots_header_roundtrip_and_bit_flips)                                             \
    X(test_slots_bit_flips_fall_back)                                                        \
    X(test_slots_sequence_wraps)                                                             \
    X(test_slots_save_errors_keep_the_old_model)                                             \
    X(test_slots_ram_driver_and_streaming)                                                   \
    X(test_slots_crafted_headers)                                                            \
    X(test_slots_source_reading_the_target_slot_is_caught)                                   \
    /* test_qtrain.c */                                                                      \
    X(test_qtrain_random_models_keep_invariants_and_save)                                    \
    X(test_qtrain_guards)                                                                    \
    /* test_qtrain_threads.c */                                                              \
    X(test_qtrain_threads_same_bytes_any_thread_count)                                       \
    X(test_qtrain_threads_batch_zero_is_the_step_and_guards)                                 \
    /* test_threads.c */                                                                     \
    X(test_threads_deterministic_same_bytes)                                                 \
    X(test_threads_deterministic_batch_one_is_serial)                                        \
    X(test_threads_deterministic_full_buckets)                                               \
    X(test_threads_async_one_thread_is_serial)                                               \
    X(test_threads_async_shared_one_thread_is_serial)                                        \
    X(test_threads_async_loses_no_update)                                                    \
    X(test_threads_async_wide_trains)                                                        \
    X(test_threads_async_trains)                                                             \
    X(test_threads_predict_identical)                                                        \
    X(test_threads_bad_arguments)                                                            \
    X(test_threads_relaxed_vec4_moves_bits)

#define DECLARE(fn) void fn(void);
TESTS(DECLARE)

static int n_passed, n_failed, cur_failures;
static const char *cur_name = "(none)";

#define MAX_LINES_PER_TEST 50

void check_fail(const char *file, int line, const char *fmt, ...)
{
    cur_failures++;
    if (cur_failures > MAX_LINES_PER_TEST) {
        if (cur_failures == MAX_LINES_PER_TEST + 1)
            printf("FAIL %s: further failing checks of this test not shown\n", cur_name);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: %s:%d: ", cur_name, file, line);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

int check_current_failures(void) { return cur_failures; }

void check_run(const char *name, void (*fn)(void))
{
    cur_name = name;
    cur_failures = 0;
    clock_t t0 = clock();
    fn();
    double secs = (double)(clock() - t0) / (double)CLOCKS_PER_SEC;
    if (secs > 2.0) printf("slow: %s took %.1f s\n", name, secs);
    if (cur_failures) {
        n_failed++;
        printf("FAILED %s (%d failing checks)\n", name, cur_failures);
    } else {
        n_passed++;
    }
    fflush(stdout);
    cur_name = "(none)";
}

int check_summary(void)
{
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}

/* Every test, or with ELSH_TEST_ONLY=NAME in the environment only those whose name contains
 * NAME (an environment variable, not an argument: the Cortex-M harness calls main()). */
int main(void)
{
    const char *only = getenv("ELSH_TEST_ONLY");
    if (!only) only = "";
#define RUN_ONE(fn) if (strstr(#fn, only)) RUN(fn);
    TESTS(RUN_ONE)
    return check_summary();
}
