/* layer_f32_owned.c - the float layer's optimizer step for training threads in asynchronous
 * mode, where every neuron (row) has one owner thread that alone steps it
 * (train_threads_f32.c): elsh_layer_update_rows_f32_owned, the arithmetic of
 * layer_f32_body.h with
 *   - plain loads of the row's weights, bias, Adagrad accumulators and momenta: no other
 *     thread writes them (other threads only read the weights and biases);
 *   - plain stores of the Adagrad accumulators and momenta: no other thread touches them
 *     during a step at all (they are read again after a barrier);
 *   - relaxed atomic stores of the weights and biases (param_relaxed_f32.h), which the other
 *     threads' forward and backward passes read meanwhile with relaxed atomic loads
 *     (layer_f32_shared.c).
 * So no access is a data race (ThreadSanitizer checks it: make -C native test-tsan), and five of
 * the six parameter accesses of a step are ordinary vector loads and stores; the sixth, the
 * weights' relaxed stores, are two single 8-byte stores per four floats straight from the
 * vector register on x86-64 and little-endian aarch64 (param_relaxed_f32.h;
 * tools/bench/shared_step_micro.c measures the variants). On one thread the result is bit for
 * bit the plain variant's (native/tests/test_threads.c). */
#include "internal.h"

#if ELSH_THREADS
#include "param_relaxed_f32.h"
#include "vec4_f32.h"

#include <math.h>
#include <string.h>

#define PARAM_LOAD(p) (*(p))
#define PARAM_STORE(p, v) (*(p) = (v))
#define MARK_DIRTY(p) (*(p) = 1)
#define PARAM_PAIRS_FIT(p) pairs_fit(p)
#define PARAM_LOAD4(p, paired) ((void)(paired), load4_plain(p))
#define PARAM_STORE4(p, v, paired) ((void)(paired), memcpy((p), &(v), sizeof(vec4)))
#ifdef ELSH_PLANT_RACE /* tsan-selftest only: plain stores of the weights too */
#define WEIGHT_STORE(p, v) (*(p) = (v))
#define WEIGHT_STORE4(p, v, paired) ((void)(paired), memcpy((p), &(v), sizeof(vec4)))
#else
#define WEIGHT_STORE(p, v) store_relaxed((p), (v))
#define WEIGHT_STORE4(p, v, paired) store4_relaxed((p), (v), (paired))
#endif
#define SQRT4(v) sqrt4(v)
#define LAYER_FN(name) name##_owned
#define LAYER_UPDATE_ONLY
#include "layer_f32_body.h"

#else
typedef int elsh_layer_f32_owned_unused; /* built without threads: nothing here */
#endif
