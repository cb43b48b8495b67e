/* insnprofile.c - a QEMU TCG plugin (API version 1, QEMU 7.2) in the manner of
 * /work/shared/tools/insncount.c that counts the guest instructions executed per translated
 * block and, at exit, writes "start_address instructions" lines (hex, decimal) of every block
 * to the file named by its argument (out=PATH), for count_instructions.py --profile to sum by
 * function with the binary's symbol table. Build: cc -shared -fPIC -O2 -o insnprofile.so
 * insnprofile.c; run: qemu-aarch64 -plugin ./insnprofile.so,out=out.txt PROGRAM ARGS */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*udata_cb)(qemu_plugin_id_t, void *);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *, enum qemu_plugin_op, void *, uint64_t);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, udata_cb, void *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define MAX_BLOCKS (1u << 20)
typedef struct {
    uint64_t vaddr, insns;
} block;
static block *blocks;
static size_t n_blocks;
static char out_path[4096] = "insnprofile.txt";

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    if (n_blocks >= MAX_BLOCKS) return;
    block *b = &blocks[n_blocks++];
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->insns,
                                             qemu_plugin_tb_n_insns(tb));
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
    (void)id; (void)p;
    FILE *f = fopen(out_path, "w");
    if (!f) return;
    for (size_t i = 0; i < n_blocks; i++)
        if (blocks[i].insns) fprintf(f, "%" PRIx64 " %" PRIu64 "\n", blocks[i].vaddr, blocks[i].insns);
    fclose(f);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++)
        if (!strncmp(argv[i], "out=", 4)) snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
    blocks = calloc(MAX_BLOCKS, sizeof *blocks);
    if (!blocks) return -1;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
