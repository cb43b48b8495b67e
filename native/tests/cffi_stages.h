/* cffi_stages.h - the internal stages the Python tests (tests/*.py) call through cffi, for the
 * cffi build (edge_lsh/_build.py), which declares them to Python from this file and compiles
 * the extension with it. It includes the kernel's internal.h first, so the compiler checks
 * each declaration below against the real one. Not an API: programs use edge_lsh.h and
 * edge_lsh_train.h. */
#ifndef EDGE_LSH_CFFI_STAGES_H
#define EDGE_LSH_CFFI_STAGES_H

#include "internal.h"

/* one layer forward, with a forced id (tests/test_reference.py: force on a hidden layer) */
void elsh_layer_forward_f32(elsh_layer *layer, const float *in_val, const int32_t *in_idx,
                            int32_t in_n, int32_t force);

#endif
