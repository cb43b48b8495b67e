"""Pure-numpy models of what the C kernel computes, the oracles its tests compare against bit
for bit: the shared PRNG (``prng``), the hash functions drawn from a seed (``hashgen``), the
float network's arithmetic (``reference``), the quantized model and its tables (``qmodel``)
and the integer arithmetic of a fixed-point forward pass (``qreference``).

Nothing here imports the C extension, so the oracles stay independent of what they check."""
