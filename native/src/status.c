/* status.c - what each status code of both numeric paths means (edge_lsh.h). */
#include "internal.h"

const char *elsh_status_str(int status)
{
    switch (status) {
    case ELSH_OK: return "ok";
    case ELSH_ERR_NULL: return "a required pointer was NULL";
    case ELSH_ERR_CONFIG: return "configuration value out of range";
    case ELSH_ERR_ARENA: return "arena too small or misaligned";
    case ELSH_ERR_INPUT: return "non-finite input or label out of range";
    case ELSH_ERR_STATE: return "call not valid in the current state";
    case ELSH_ERR_CORRUPT: return "model state is corrupt (index, length or value out of range)";
    case ELSH_FMT_TRUNCATED: return "model file is truncated";
    case ELSH_FMT_MAGIC: return "not an .elsh model file (bad magic)";
    case ELSH_FMT_VERSION: return "unsupported .elsh major version";
    case ELSH_FMT_BYTE_ORDER: return "model file byte order is not little-endian (or the CPU is not)";
    case ELSH_FMT_HEADER: return "model file header field out of range";
    case ELSH_FMT_CRC: return "model file checksum mismatch (damaged file)";
    case ELSH_FMT_ALIGN: return "model buffer or section misaligned";
    case ELSH_FMT_BOUNDS: return "model section outside the file or overlapping another";
    case ELSH_FMT_DUPLICATE: return "model section appears twice";
    case ELSH_FMT_UNKNOWN_REQUIRED: return "model needs a section this reader does not know";
    case ELSH_FMT_MISSING: return "model section missing";
    case ELSH_FMT_UNEXPECTED: return "model section present where it is not used";
    case ELSH_FMT_SIZE: return "model section has the wrong size";
    case ELSH_FMT_NET: return "model NET or PREPROCESS section value out of range";
    case ELSH_FMT_LAYER: return "model LAYER section value out of range or inconsistent";
    case ELSH_FMT_QUANT: return "model requantization multiplier or shift out of range";
    case ELSH_FMT_HASH: return "model hash functions, padding order or center invalid";
    case ELSH_FMT_TABLES: return "model hash tables invalid (offset, neuron id, repeated neuron or membership bits)";
    case ELSH_FMT_LIMITS: return "model asks for more memory or work than its file size allows";
    case ELSH_FMT_STATE: return "trained-state section value out of range or inconsistent";
    default: return "unknown status";
    }
}
