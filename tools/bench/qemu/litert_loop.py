"""Run an int8 (or float) .tflite model N times at batch 1 in LiteRT, for counting the
instructions of one inference under qemu-user (count_instructions.py --pi-table): every input row
is quantized before the loop, so a run with N calls and one with 1 call differ only in
set_tensor, invoke and get_tensor. Runs on the target's own Python (aarch64), with nothing of
edge_lsh imported.

    python3 litert_loop.py MODEL.tflite ROWS.npy N
"""

import sys

import numpy as np

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # tflite-runtime's module, where that is what is installed
    from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]


def main() -> int:
    model, rows, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    it = Interpreter(model_path=model, num_threads=1)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    x = np.load(rows).astype(np.float32)
    if inp["dtype"] == np.int8:
        scale, zero = inp["quantization"]
        xq = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
    else:
        xq = x
    batches = [np.ascontiguousarray(xq[i : i + 1]) for i in range(xq.shape[0])]
    for i in range(n):
        it.set_tensor(inp["index"], batches[i % len(batches)])
        it.invoke()
        it.get_tensor(out["index"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
