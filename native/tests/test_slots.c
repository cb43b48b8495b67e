/* test_slots.c - A/B flash slots (src/slots.c, src/flash_ram.c) over a simulated NOR flash that
 * loses power after byte N of a save, for every N: erase sets bits one byte at a time, program
 * clears them one byte at a time, and the operation under way when the power goes is left
 * either undone from that byte on or with garbage in the rest of it (an interrupted erase may
 * only have set some bits, an interrupted program only cleared some). After every cut the
 * "reboot" must pick a valid model, the old one or the new one, byte for byte, and never
 * neither; power restored, a save must then succeed. Also: first boot (no model), many saves
 * in a row (alternating slots, sequence wrap), random cuts across consecutive saves, bit
 * flips, driver errors, a stuck bit caught by the read-back. Geometry as on RP2350: 4096-byte
 * sectors, 256-byte pages. Static buffers only: these run on the M33 harness too. */
#include "check.h"
#include "edge_lsh.h"
#include "edge_lsh_slots.h"

#include <stdio.h>
#include <string.h>

#define SECTOR 4096u
#define PAGE_SZ 256u
#define REGION (4u * SECTOR) /* two slots of two sectors: 7936 payload bytes each */

static uint32_t rng_next(uint32_t *s)
{
    /* xorshift32 */
    uint32_t x = *s ? *s : 0x9E3779B9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

static void fill_random(uint8_t *p, uint32_t n, uint32_t seed)
{
    uint32_t s = seed;
    for (uint32_t i = 0; i < n; i++) p[i] = (uint8_t)(rng_next(&s) >> 24);
}

/* ---- the simulated flash: power cut after `budget` bytes of erase + program ---------- */

enum { CUT_UNDONE = 0, CUT_GARBAGE = 1 };

typedef struct {
    uint8_t mem[REGION];
    long budget;   /* bytes that may still change before the power goes; < 0: never */
    int off;       /* the power is off: every call fails and changes nothing */
    int mode;      /* CUT_UNDONE or CUT_GARBAGE */
    uint32_t rng;  /* the garbage */
    long changed;  /* bytes erased or programmed so far */
    int misuse;    /* misaligned call, or a program that would have to set a bit */
} sim_flash;

static sim_flash sim;

/* one byte's worth of work: 1 when it may go ahead, 0 when the power goes now */
static int sim_step(void)
{
    if (sim.budget == 0) {
        sim.off = 1;
        return 0;
    }
    if (sim.budget > 0) sim.budget--;
    sim.changed++;
    return 1;
}

static int sim_erase(void *ctx, uint32_t offset)
{
    (void)ctx;
    if (sim.off) return -1;
    if (offset % SECTOR != 0 || offset >= REGION) {
        sim.misuse = 1;
        return -1;
    }
    for (uint32_t i = 0; i < SECTOR; i++) {
        if (!sim_step()) {
            for (uint32_t j = i; j < SECTOR && sim.mode == CUT_GARBAGE; j++)
                sim.mem[offset + j] |= (uint8_t)(rng_next(&sim.rng) >> 24); /* some bits set */
            return -1;
        }
        sim.mem[offset + i] = 0xFF;
    }
    return 0;
}

static int sim_program(void *ctx, uint32_t offset, const uint8_t *data, uint32_t n)
{
    (void)ctx;
    if (sim.off) return -1;
    if (offset % PAGE_SZ != 0 || n % PAGE_SZ != 0 || offset > REGION || n > REGION - offset) {
        sim.misuse = 1;
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        if ((uint8_t)(~sim.mem[offset + i] & data[i]) != 0) sim.misuse = 1;
        if (!sim_step()) {
            for (uint32_t j = i; j < n && sim.mode == CUT_GARBAGE; j++) /* some bits cleared */
                sim.mem[offset + j] &= (uint8_t)(data[j] | (rng_next(&sim.rng) >> 24));
            return -1;
        }
        sim.mem[offset + i] &= data[i];
    }
    return 0;
}

static int sim_read(void *ctx, uint32_t offset, uint8_t *dst, uint32_t n)
{
    (void)ctx;
    if (offset > REGION || n > REGION - offset) {
        sim.misuse = 1;
        return -1;
    }
    memcpy(dst, sim.mem + offset, n);
    return 0;
}

/* not memory-mapped: the slot code reads through sim_read */
static const elsh_flash sim_driver = {REGION, SECTOR, PAGE_SZ, NULL, NULL,
                                      sim_erase,  sim_program, sim_read};

/* power on (again), with a cut after `budget` more bytes (< 0: none) */
static void sim_power_on(long budget, int mode, uint32_t seed)
{
    sim.budget = budget;
    sim.off = 0;
    sim.mode = mode;
    sim.rng = seed * 2654435761u + 1u;
    sim.changed = 0;
}

/* the picked slot is this one: slot, sequence and every payload byte */
static int picked_is(const elsh_slot_info *got, int32_t slot, uint32_t seq, const uint8_t *bytes,
                     uint32_t n)
{
    static uint8_t buf[REGION];
    if (got->slot != slot || got->sequence != seq || got->length != n) return 0;
    if (elsh_slots_read_payload(&sim_driver, got, 0, buf, n) != ELSH_SLOTS_OK) return 0;
    return memcmp(buf, bytes, n) == 0;
}

static uint8_t old_model[5000], older_model[3000], new_model[REGION], next_model[REGION];

/* slot A holds old_model (sequence 7), slot B older_model (sequence 6): steady state, saves
 * go to B. With `blank`, both slots are erased (first boot). */
static void sim_start_image(int blank, uint8_t *image)
{
    sim_power_on(-1, CUT_UNDONE, 0);
    memset(sim.mem, 0xFF, REGION);
    sim.misuse = 0;
    if (!blank) {
        uint8_t page[PAGE_SZ];
        uint32_t slot_size = REGION / 2;
        const uint8_t *p[2] = {old_model, older_model};
        uint32_t n[2] = {sizeof old_model, sizeof older_model}, seq[2] = {7, 6};
        for (uint32_t s = 0; s < 2; s++) {
            uint32_t start = s * slot_size + ELSH_SLOT_PAYLOAD_OFFSET;
            for (uint32_t done = 0; done < n[s]; done += PAGE_SZ) {
                uint32_t chunk = n[s] - done < PAGE_SZ ? n[s] - done : PAGE_SZ;
                memset(page, 0xFF, PAGE_SZ);
                memcpy(page, p[s] + done, chunk);
                sim_program(NULL, start + done, page, PAGE_SZ);
            }
            memset(page, 0xFF, PAGE_SZ);
            elsh_slots_header_encode(page, seq[s], n[s], elsh_crc32(0, p[s], n[s]));
            sim_program(NULL, s * slot_size, page, PAGE_SZ);
        }
    }
    memcpy(image, sim.mem, REGION);
}

static unsigned long cut_points_tried, cuts_left_old, cuts_left_new, cuts_left_none;

/* Cut a save of new_model[0..n) after every byte N = 0..total, from the start image (blank or
 * steady state), in one cut mode. Returns the total bytes a whole save changes. */
static long cut_every_byte(int blank, int mode, uint32_t n)
{
    static uint8_t image[REGION];
    sim_start_image(blank, image);
    sim_power_on(-1, mode, 0);
    elsh_slot_info info = {-1, 0, 0, 0, 0};
    CHECK_EQ_INT(elsh_slots_save(&sim_driver, new_model, n, &info), ELSH_SLOTS_OK);
    long total = sim.changed;
    /* erase of the sectors the new slot uses, the payload's pages, the header page */
    long sectors = (long)((ELSH_SLOT_PAYLOAD_OFFSET + n + SECTOR - 1) / SECTOR);
    long pages = (long)((n + PAGE_SZ - 1) / PAGE_SZ);
    CHECK_EQ_INT(total, sectors * SECTOR + pages * PAGE_SZ + PAGE_SZ);
    long commit = total - PAGE_SZ + ELSH_SLOT_HEADER_SIZE; /* header bytes all programmed */
    uint32_t new_seq = blank ? 1u : 8u;
    int32_t new_slot = blank ? 0 : 1;

    for (long cut = 0; cut <= total && check_current_failures() < 10; cut++) {
        memcpy(sim.mem, image, REGION);
        sim_power_on(cut, mode, (uint32_t)cut);
        int st = elsh_slots_save(&sim_driver, new_model, n, NULL);
        CHECK_MSG(cut == total ? st == ELSH_SLOTS_OK : st == ELSH_SLOTS_ERR_FLASH,
                  "cut %ld of %ld: save returned %d", cut, total, st);
        cut_points_tried++;

        sim_power_on(-1, mode, 0); /* reboot */
        st = elsh_slots_pick(&sim_driver, &info);
        int is_new = st == ELSH_SLOTS_OK && picked_is(&info, new_slot, new_seq, new_model, n);
        int is_old = st == ELSH_SLOTS_OK && !blank &&
                     picked_is(&info, 0, 7, old_model, sizeof old_model);
        int is_none = blank && st == ELSH_SLOTS_NO_MODEL;
        CHECK_MSG(is_new || is_old || is_none,
                  "cut %ld of %ld (mode %d, blank %d): pick %d, slot %ld seq %lu len %lu", cut,
                  total, mode, blank, st, (long)info.slot, (unsigned long)info.sequence,
                  (unsigned long)info.length);
        cuts_left_new += (unsigned long)is_new;
        cuts_left_old += (unsigned long)is_old;
        cuts_left_none += (unsigned long)is_none;
        /* the header page is the commit record: before it the old model, from its 32nd byte on
         * the new one (with garbage, a half-programmed header may by chance come out whole) */
        if (cut < total - (long)PAGE_SZ || mode == CUT_UNDONE)
            CHECK_MSG(is_new == (cut >= commit), "cut %ld: new %d, commit at %ld", cut, is_new,
                      commit);
        if (cut >= commit) CHECK_MSG(is_new, "cut %ld after the commit: not the new model", cut);

        /* power restored: the save again (every 61st cut and all around the commit) */
        if (cut % 61 == 0 || cut >= total - (long)PAGE_SZ) {
            elsh_slot_info before = info;
            int had = st == ELSH_SLOTS_OK;
            st = elsh_slots_save(&sim_driver, next_model, 777, &info);
            CHECK_MSG(st == ELSH_SLOTS_OK, "cut %ld: the save after reboot returned %d", cut, st);
            uint32_t seq = had ? before.sequence + 1u : 1u;
            int32_t slot = had ? 1 - before.slot : 0;
            CHECK_EQ_INT(elsh_slots_pick(&sim_driver, &info), ELSH_SLOTS_OK);
            CHECK_MSG(picked_is(&info, slot, seq, next_model, 777),
                      "cut %ld: after the save that followed, not the saved model", cut);
        }
    }
    CHECK(!sim.misuse);
    return total;
}

void test_slots_power_cut_every_byte(void)
{
    fill_random(old_model, sizeof old_model, 1);
    fill_random(older_model, sizeof older_model, 2);
    fill_random(new_model, sizeof new_model, 3);
    fill_random(next_model, sizeof next_model, 4);
    cut_points_tried = cuts_left_old = cuts_left_new = cuts_left_none = 0;
    long totals[4];
    /* steady state, a payload over two sectors; first boot, one sector */
    totals[0] = cut_every_byte(0, CUT_UNDONE, 4000);
    totals[1] = cut_every_byte(0, CUT_GARBAGE, 4000);
    totals[2] = cut_every_byte(1, CUT_UNDONE, 1000);
    totals[3] = cut_every_byte(1, CUT_GARBAGE, 1000);
    CHECK_EQ_INT(cut_points_tried, totals[0] + totals[1] + totals[2] + totals[3] + 4);
    CHECK_EQ_INT(cuts_left_old + cuts_left_new + cuts_left_none, cut_points_tried);
    printf("slots: %lu power cuts tried (every byte of 4 saves of %ld/%ld/%ld/%ld bytes): "
           "%lu left the old model, %lu the new one, %lu no model (first boot), 0 lost\n",
           cut_points_tried, totals[0], totals[1], totals[2], totals[3], cuts_left_old,
           cuts_left_new, cuts_left_none);
}

/* Random cuts across 300 consecutive saves of different models: after every reboot the model
 * is the last one saved whole or the one being saved. */
void test_slots_power_cut_consecutive_saves(void)
{
    static uint8_t models[2][REGION];
    static uint8_t committed[REGION];
    uint32_t committed_n = 0, committed_seq = 0, r = 12345;
    int32_t committed_slot = -1;
    memset(sim.mem, 0xFF, REGION);
    sim.misuse = 0;
    unsigned long cuts = 0, whole = 0;
    for (int round = 0; round < 300 && check_current_failures() < 5; round++) {
        uint8_t *m = models[round & 1];
        uint32_t n = 1 + rng_next(&r) % (REGION / 2 - ELSH_SLOT_PAYLOAD_OFFSET);
        fill_random(m, n, (uint32_t)round + 100u);
        int mode = (int)(rng_next(&r) & 1);
        long budget = (rng_next(&r) % 4 == 0) ? -1 : (long)(rng_next(&r) % 13000u);
        sim_power_on(budget, mode, (uint32_t)round);
        int st = elsh_slots_save(&sim_driver, m, n, NULL);
        sim_power_on(-1, mode, 0);
        elsh_slot_info info;
        int pst = elsh_slots_pick(&sim_driver, &info);
        uint32_t next_seq = committed_slot < 0 ? 1u : committed_seq + 1u;
        int32_t next_slot = committed_slot < 0 ? 0 : 1 - committed_slot;
        int is_new = pst == ELSH_SLOTS_OK && picked_is(&info, next_slot, next_seq, m, n);
        int is_old = committed_slot >= 0 && pst == ELSH_SLOTS_OK &&
                     picked_is(&info, committed_slot, committed_seq, committed, committed_n);
        int is_none = committed_slot < 0 && pst == ELSH_SLOTS_NO_MODEL;
        CHECK_MSG(is_new || is_old || is_none, "round %d: pick %d", round, pst);
        if (st == ELSH_SLOTS_OK) CHECK_MSG(is_new, "round %d: saved whole but not picked", round);
        if (is_new) {
            memcpy(committed, m, n);
            committed_n = n;
            committed_seq = next_seq;
            committed_slot = next_slot;
        }
        cuts += st != ELSH_SLOTS_OK;
        whole += st == ELSH_SLOTS_OK;
    }
    CHECK(cuts > 100 && whole > 50);
    CHECK(!sim.misuse);
    printf("slots: 300 consecutive saves of random models, %lu cut at a random byte, %lu whole: "
           "every reboot found the last whole model or the one being saved\n",
           cuts, whole);
}

/* ---- no power cuts: the RAM driver, mapped ------------------------------------------- */

static uint8_t ram_mem[REGION];

void test_slots_first_boot_no_model(void)
{
    elsh_flash fl;
    elsh_flash_ram ram;
    CHECK_EQ_INT(elsh_flash_ram_init(&fl, &ram, ram_mem, REGION, SECTOR, PAGE_SZ), ELSH_SLOTS_OK);
    elsh_slot_info info;
    const uint8_t fills[3] = {0xFF, 0x00, 0x5A};
    for (int f = 0; f < 4; f++) {
        if (f < 3)
            memset(ram_mem, fills[f], REGION);
        else
            fill_random(ram_mem, REGION, 99);
        info.slot = 5;
        CHECK_EQ_INT(elsh_slots_pick(&fl, &info), ELSH_SLOTS_NO_MODEL);
        CHECK_EQ_INT(info.slot, -1);
        CHECK(elsh_slots_payload(&fl, &info) == NULL);
    }
    /* a header whose CRC is right but whose length runs past the slot */
    memset(ram_mem, 0xFF, REGION);
    elsh_slots_header_encode(ram_mem, 3, REGION / 2 - ELSH_SLOT_PAYLOAD_OFFSET + 1, 0);
    CHECK_EQ_INT(elsh_slots_read_slot(&fl, 0, &info), ELSH_SLOTS_NO_MODEL);
    CHECK_EQ_INT(elsh_slots_pick(&fl, &info), ELSH_SLOTS_NO_MODEL);
    /* the first save goes to slot A, sequence 1 */
    memset(ram_mem, 0xFF, REGION);
    uint8_t m[300];
    fill_random(m, sizeof m, 5);
    CHECK_EQ_INT(elsh_slots_save(&fl, m, sizeof m, &info), ELSH_SLOTS_OK);
    CHECK_EQ_INT(info.slot, 0);
    CHECK_EQ_INT(info.sequence, 1);
    CHECK_EQ_INT(info.payload_offset, ELSH_SLOT_PAYLOAD_OFFSET);
    CHECK(memcmp(elsh_slots_payload(&fl, &info), m, sizeof m) == 0);
}

void test_slots_header_roundtrip_and_bit_flips(void)
{
    uint8_t h[ELSH_SLOT_HEADER_SIZE];
    elsh_slot_info info;
    elsh_slots_header_encode(h, 0xDEADBEEFu, 12345, 0x01020304u);
    static const uint8_t expect_start[12] = {'E', 'L', 'S', 'H', 'S', 'L', 'O', 'T', 1, 0, 32, 0};
    CHECK(memcmp(h, expect_start, sizeof expect_start) == 0);
    CHECK_EQ_INT(h[12], 0xEF);
    CHECK_EQ_INT(h[15], 0xDE);
    CHECK_EQ_INT(elsh_slots_header_decode(h, &info), ELSH_SLOTS_OK);
    CHECK_EQ_INT(info.sequence, 0xDEADBEEFu);
    CHECK_EQ_INT(info.length, 12345);
    CHECK_EQ_INT(info.payload_crc, 0x01020304u);
    int accepted = 0;
    for (int bit = 0; bit < 8 * ELSH_SLOT_HEADER_SIZE; bit++) {
        h[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        accepted += elsh_slots_header_decode(h, &info) == ELSH_SLOTS_OK;
        h[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    CHECK_EQ_INT(accepted, 0);
    CHECK_EQ_INT(elsh_slots_header_decode(NULL, &info), ELSH_SLOTS_ERR_NULL);
}

void test_slots_bit_flips_fall_back(void)
{
    elsh_flash fl;
    elsh_flash_ram ram;
    memset(ram_mem, 0xFF, REGION);
    elsh_flash_ram_init(&fl, &ram, ram_mem, REGION, SECTOR, PAGE_SZ);
    static uint8_t a[3000], b[2500];
    fill_random(a, sizeof a, 7);
    fill_random(b, sizeof b, 8);
    elsh_slot_info sa, sb, info;
    CHECK_EQ_INT(elsh_slots_save(&fl, a, sizeof a, &sa), ELSH_SLOTS_OK);
    CHECK_EQ_INT(elsh_slots_save(&fl, b, sizeof b, &sb), ELSH_SLOTS_OK);
    CHECK_EQ_INT(sa.slot, 0);
    CHECK_EQ_INT(sb.slot, 1);
    uint32_t b_start = REGION / 2, r = 77;
    int wrong = 0, tried = 0;
    /* every bit of B's header, and 600 random bits of its payload: A (older) is picked */
    for (uint32_t bit = 0; bit < 8 * ELSH_SLOT_HEADER_SIZE + 600; bit++, tried++) {
        uint32_t at = bit < 8 * ELSH_SLOT_HEADER_SIZE
                          ? b_start * 8 + bit
                          : (sb.payload_offset + rng_next(&r) % (uint32_t)sizeof b) * 8 + bit % 8;
        ram_mem[at / 8] ^= (uint8_t)(1u << (at % 8));
        wrong += !(elsh_slots_pick(&fl, &info) == ELSH_SLOTS_OK && info.slot == 0 &&
                   info.sequence == 1 && memcmp(elsh_slots_payload(&fl, &info), a, sizeof a) == 0);
        ram_mem[at / 8] ^= (uint8_t)(1u << (at % 8));
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK(tried == 856);
    /* bytes of the header page after the header do not matter */
    ram_mem[b_start + 100] = 0;
    CHECK(elsh_slots_pick(&fl, &info) == ELSH_SLOTS_OK && info.slot == 1);
    /* a flip in A alone: B is still the newest */
    ram_mem[sa.payload_offset + 10] ^= 0x10;
    CHECK(elsh_slots_pick(&fl, &info) == ELSH_SLOTS_OK && info.slot == 1);
    /* flips in both: no model */
    ram_mem[sb.payload_offset + 2499] ^= 0x01;
    CHECK_EQ_INT(elsh_slots_pick(&fl, &info), ELSH_SLOTS_NO_MODEL);
    /* a save now starts over in slot A at sequence 1, and is picked */
    CHECK_EQ_INT(elsh_slots_save(&fl, a, 100, &info), ELSH_SLOTS_OK);
    CHECK(info.slot == 0 && info.sequence == 1);
    CHECK(elsh_slots_pick(&fl, &info) == ELSH_SLOTS_OK && info.slot == 0 && info.length == 100);
}

void test_slots_sequence_wraps(void)
{
    CHECK(elsh_slots_is_newer(1, 0));
    CHECK(!elsh_slots_is_newer(0, 1));
    CHECK(elsh_slots_is_newer(0, 0xFFFFFFFFu));
    CHECK(!elsh_slots_is_newer(0xFFFFFFFFu, 0));
    CHECK(elsh_slots_is_newer(5, 0xFFFFFFF0u));
    CHECK(!elsh_slots_is_newer(7, 7));
    CHECK(!elsh_slots_is_newer(0x80000000u, 0));
    CHECK(!elsh_slots_is_newer(0, 0x80000000u));
    CHECK(elsh_slots_is_newer(0x7FFFFFFFu, 0));

    /* a model at sequence 0xFFFFFFFD in slot A, then saves of new models one after another */
    elsh_flash fl;
    elsh_flash_ram ram;
    memset(ram_mem, 0xFF, REGION);
    elsh_flash_ram_init(&fl, &ram, ram_mem, REGION, SECTOR, PAGE_SZ);
    uint8_t page[PAGE_SZ], m[1200];
    memset(page, 0xFF, sizeof page);
    fill_random(m, 64, 40);
    memcpy(page, m, 64);
    CHECK_EQ_INT(fl.program(fl.ctx, ELSH_SLOT_PAYLOAD_OFFSET, page, PAGE_SZ), 0);
    memset(page, 0xFF, sizeof page);
    elsh_slots_header_encode(page, 0xFFFFFFFDu, 64, elsh_crc32(0, m, 64));
    CHECK_EQ_INT(fl.program(fl.ctx, 0, page, PAGE_SZ), 0);
    elsh_slot_info info;
    CHECK(elsh_slots_pick(&fl, &info) == ELSH_SLOTS_OK && info.sequence == 0xFFFFFFFDu);
    uint32_t seq = 0xFFFFFFFDu;
    for (int i = 0; i < 6; i++) {
        uint32_t n = 100u + 200u * (uint32_t)i;
        fill_random(m, n, 41u + (uint32_t)i);
        elsh_slot_info saved;
        CHECK_EQ_INT(elsh_slots_save(&fl, m, n, &saved), ELSH_SLOTS_OK);
        seq++;
        CHECK_EQ_INT(saved.sequence, seq);
        CHECK_EQ_INT(saved.slot, (i + 1) % 2); /* B, A, B, ... */
        CHECK_EQ_INT(elsh_slots_pick(&fl, &info), ELSH_SLOTS_OK);
        CHECK(info.slot == saved.slot && info.sequence == seq && info.length == n);
        CHECK(memcmp(elsh_slots_payload(&fl, &info), m, n) == 0);
    }
    CHECK_EQ_INT(seq, 3); /* ...FFFE, FFFF, 0, 1, 2, 3 */
    CHECK_EQ_INT(ram.n_erases, 6); /* each of these payloads fits one sector */
}

/* ---- errors ------------------------------------------------------------------------ */

static elsh_flash fail_inner; /* the RAM driver the failing one wraps */
static elsh_flash_ram fail_ram;
static int fail_program_after = -1;     /* programs allowed before failing; < 0 never */
static uint32_t stuck_at = 0xFFFFFFFFu; /* a byte whose bit 0 never clears */

static int fail_program(void *ctx, uint32_t offset, const uint8_t *data, uint32_t n)
{
    (void)ctx;
    if (fail_program_after == 0) return -1;
    if (fail_program_after > 0) fail_program_after--;
    uint8_t keep = stuck_at < REGION ? (uint8_t)(fail_ram.mem[stuck_at] & 1u) : 0;
    int st = fail_inner.program(fail_inner.ctx, offset, data, n);
    if (stuck_at < REGION) fail_ram.mem[stuck_at] |= keep;
    return st;
}

void test_slots_save_errors_keep_the_old_model(void)
{
    memset(ram_mem, 0xFF, REGION);
    elsh_flash_ram_init(&fail_inner, &fail_ram, ram_mem, REGION, SECTOR, PAGE_SZ);
    elsh_flash fl = fail_inner;
    fl.program = fail_program;
    fail_program_after = -1;
    stuck_at = 0xFFFFFFFFu;
    uint8_t old[500], m[2000];
    fill_random(old, sizeof old, 50);
    fill_random(m, sizeof m, 51);
    elsh_slot_info info;
    CHECK_EQ_INT(elsh_slots_save(&fl, old, sizeof old, &info), ELSH_SLOTS_OK);

    /* too big: nothing written */
    CHECK_EQ_INT(elsh_slots_capacity(&fl), REGION / 2 - ELSH_SLOT_PAYLOAD_OFFSET);
    CHECK_EQ_INT(elsh_slots_save(&fl, m, elsh_slots_capacity(&fl) + 1, NULL),
                 ELSH_SLOTS_ERR_TOO_BIG);
    CHECK_EQ_INT(ram_mem[REGION / 2], 0xFF);
    CHECK_EQ_INT(elsh_slots_save(&fl, NULL, 5, NULL), ELSH_SLOTS_ERR_NULL);
    CHECK_EQ_INT(elsh_slots_save_from(&fl, NULL, NULL, 5, NULL), ELSH_SLOTS_ERR_NULL);

    /* the driver fails at each of the save's 9 program calls (8 payload pages, the header) in
     * turn: the old model stays */
    for (int after = 0; after < 9; after++) {
        fail_program_after = after;
        int st = elsh_slots_save(&fl, m, sizeof m, NULL);
        CHECK_EQ_INT(st, ELSH_SLOTS_ERR_FLASH);
        fail_program_after = -1;
        CHECK(elsh_slots_pick(&fl, &info) == ELSH_SLOTS_OK && info.slot == 0 &&
              info.length == sizeof old);
    }
    /* a stuck bit in the new slot's payload: the read-back fails, the slot is voided */
    stuck_at = REGION / 2 + ELSH_SLOT_PAYLOAD_OFFSET + 1000;
    m[1000] &= 0xFE; /* the payload wants bit 0 clear there */
    CHECK_EQ_INT(elsh_slots_save(&fl, m, sizeof m, NULL), ELSH_SLOTS_ERR_VERIFY);
    CHECK(elsh_slots_pick(&fl, &info) == ELSH_SLOTS_OK && info.slot == 0);
    CHECK_EQ_INT(ram_mem[REGION / 2], 0x00); /* magic cleared */
    CHECK_EQ_INT(elsh_slots_read_slot(&fl, 1, &info), ELSH_SLOTS_NO_MODEL);
    stuck_at = 0xFFFFFFFFu;

    /* geometry */
    elsh_flash bad = fl;
    bad.page_size = 300;
    CHECK_EQ_INT(elsh_slots_check(&bad), ELSH_SLOTS_ERR_GEOMETRY);
    bad = fl;
    bad.sector_size = 1000;
    CHECK_EQ_INT(elsh_slots_check(&bad), ELSH_SLOTS_ERR_GEOMETRY);
    bad = fl;
    bad.size = SECTOR + 100;
    CHECK_EQ_INT(elsh_slots_check(&bad), ELSH_SLOTS_ERR_GEOMETRY);
    CHECK_EQ_INT(elsh_slots_save(&bad, m, 10, NULL), ELSH_SLOTS_ERR_GEOMETRY);
    CHECK_EQ_INT(elsh_slots_slot_size(&bad), 0);
    CHECK_EQ_INT(elsh_slots_check(NULL), ELSH_SLOTS_ERR_NULL);
    bad = fl;
    bad.program = NULL;
    CHECK_EQ_INT(elsh_slots_check(&bad), ELSH_SLOTS_ERR_NULL);
    CHECK_EQ_INT(elsh_slots_read_slot(&fl, 2, &info), ELSH_SLOTS_ERR_GEOMETRY);
    CHECK_EQ_INT(elsh_slots_pick(&fl, NULL), ELSH_SLOTS_ERR_NULL);
    CHECK(strcmp(elsh_slots_status_str(ELSH_SLOTS_NO_MODEL), "no valid slot") == 0);
    CHECK(strcmp(elsh_slots_status_str(12345), "unknown status") == 0);
}

/* the RAM driver enforces NOR rules; a streamed save writes the same bytes as a whole one */
static int stream_source(void *ctx, uint32_t offset, uint8_t *dst, uint32_t n)
{
    const uint8_t *src = (const uint8_t *)ctx;
    for (uint32_t i = 0; i < n; i++) dst[i] = src[offset + i];
    return 0;
}

static int failing_source(void *ctx, uint32_t offset, uint8_t *dst, uint32_t n)
{
    (void)ctx;
    (void)dst;
    return offset + n > 600 ? -1 : 0;
}

void test_slots_ram_driver_and_streaming(void)
{
    elsh_flash fl;
    elsh_flash_ram ram;
    memset(ram_mem, 0xFF, REGION);
    CHECK_EQ_INT(elsh_flash_ram_init(&fl, &ram, ram_mem, REGION, SECTOR, PAGE_SZ), ELSH_SLOTS_OK);
    uint8_t page[PAGE_SZ];
    memset(page, 0x0F, sizeof page);
    CHECK_EQ_INT(fl.program(fl.ctx, 0, page, PAGE_SZ), 0);
    CHECK_EQ_INT(ram_mem[0], 0x0F);
    memset(page, 0xF0, sizeof page);
    CHECK_EQ_INT(fl.program(fl.ctx, 0, page, PAGE_SZ), -2); /* would set bits: caught */
    CHECK_EQ_INT(ram_mem[0], 0x00);                          /* and ANDed, as flash does */
    CHECK_EQ_INT(fl.program(fl.ctx, 1, page, PAGE_SZ), -1);
    CHECK_EQ_INT(fl.program(fl.ctx, 0, page, 100), -1);
    CHECK_EQ_INT(fl.program(fl.ctx, REGION, page, PAGE_SZ), -1);
    CHECK_EQ_INT(fl.erase_sector(fl.ctx, 100), -1);
    CHECK_EQ_INT(fl.erase_sector(fl.ctx, REGION), -1);
    CHECK_EQ_INT(fl.erase_sector(fl.ctx, 0), 0);
    CHECK_EQ_INT(ram_mem[0], 0xFF);
    CHECK_EQ_INT(ram.n_erases, 1);
    CHECK_EQ_INT(ram.n_programs, 1);

    static uint8_t whole[REGION], m[3333];
    fill_random(m, sizeof m, 60);
    memset(ram_mem, 0xFF, REGION);
    CHECK_EQ_INT(elsh_slots_save(&fl, m, sizeof m, NULL), ELSH_SLOTS_OK);
    memcpy(whole, ram_mem, REGION);
    memset(ram_mem, 0xFF, REGION);
    CHECK_EQ_INT(elsh_slots_save_from(&fl, stream_source, m, sizeof m, NULL), ELSH_SLOTS_OK);
    CHECK(memcmp(whole, ram_mem, REGION) == 0);
    /* a source that fails: the save stops, slot A still the model */
    CHECK_EQ_INT(elsh_slots_save_from(&fl, failing_source, NULL, 2000, NULL),
                 ELSH_SLOTS_ERR_SOURCE);
    elsh_slot_info info;
    CHECK(elsh_slots_pick(&fl, &info) == ELSH_SLOTS_OK && info.slot == 0 &&
          info.length == sizeof m);
    uint8_t tail[10];
    CHECK_EQ_INT(elsh_slots_read_payload(&fl, &info, sizeof m - 10, tail, 10), ELSH_SLOTS_OK);
    CHECK(memcmp(tail, m + sizeof m - 10, 10) == 0);
    CHECK_EQ_INT(elsh_slots_read_payload(&fl, &info, sizeof m - 9, tail, 10),
                 ELSH_SLOTS_ERR_TOO_BIG);
}

/* Headers whose own CRC is right but whose fields are hostile (lengths past the slot or near
 * 2^32, wrong payload CRCs, any sequence): a slot is valid exactly when its length fits and
 * its payload CRC matches, checked here independently; no read leaves the region (ASan). */
void test_slots_crafted_headers(void)
{
    elsh_flash fl;
    elsh_flash_ram ram;
    elsh_flash_ram_init(&fl, &ram, ram_mem, REGION, SECTOR, PAGE_SZ);
    const uint32_t cap = REGION / 2 - ELSH_SLOT_PAYLOAD_OFFSET;
    uint32_t r = 4242;
    int valid_seen[2] = {0, 0}, wrong = 0;
    for (int it = 0; it < 2000; it++) {
        fill_random(ram_mem, REGION, (uint32_t)it + 1000u);
        int valid[2];
        uint32_t seq[2];
        for (int s = 0; s < 2; s++) {
            uint32_t start = (uint32_t)s * (REGION / 2);
            const uint32_t lengths[6] = {0, cap, cap + 1, 0xFFFFFFFFu, 0x80000000u,
                                         rng_next(&r) % (cap + 1)};
            uint32_t len = lengths[rng_next(&r) % 6];
            seq[s] = rng_next(&r);
            int fits = len <= cap;
            const uint8_t *payload = ram_mem + start + ELSH_SLOT_PAYLOAD_OFFSET;
            uint32_t crc = fits ? elsh_crc32(0, payload, len) : 0;
            if (rng_next(&r) % 3 == 0) crc ^= 1u << (rng_next(&r) % 32);
            elsh_slots_header_encode(ram_mem + start, seq[s], len, crc);
            valid[s] = fits && crc == elsh_crc32(0, payload, len);
            valid_seen[s] += valid[s];
        }
        elsh_slot_info info;
        int st = elsh_slots_pick(&fl, &info);
        int want = !valid[0] && !valid[1] ? -1
                   : !valid[1]            ? 0
                   : !valid[0]            ? 1
                   : elsh_slots_is_newer(seq[1], seq[0]) ? 1 : 0;
        if (want < 0)
            wrong += st != ELSH_SLOTS_NO_MODEL;
        else
            wrong += st != ELSH_SLOTS_OK || info.slot != want || info.sequence != seq[want];
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK(valid_seen[0] > 100 && valid_seen[1] > 100);
}

/* The trap of a model opened in place: it lives in slot X; a save goes to Y; a second save
 * goes to X, under the bytes the source reads. The CRC pass before the erase catches it: no
 * header is written, and the model saved first (Y) is still the one picked. */
typedef struct {
    const uint8_t *file; /* the model in flash */
    uint32_t changed_at; /* one byte the "training" changed */
} in_place_model;

static int in_place_source(void *ctx, uint32_t offset, uint8_t *dst, uint32_t n)
{
    const in_place_model *m = (const in_place_model *)ctx;
    memcpy(dst, m->file + offset, n);
    if (m->changed_at >= offset && m->changed_at - offset < n) dst[m->changed_at - offset] ^= 0x5A;
    return 0;
}

void test_slots_source_reading_the_target_slot_is_caught(void)
{
    elsh_flash fl;
    elsh_flash_ram ram;
    memset(ram_mem, 0xFF, REGION);
    elsh_flash_ram_init(&fl, &ram, ram_mem, REGION, SECTOR, PAGE_SZ);
    uint8_t m[2000];
    fill_random(m, sizeof m, 70);
    elsh_slot_info boot, first, info;
    CHECK_EQ_INT(elsh_slots_save(&fl, m, sizeof m, &boot), ELSH_SLOTS_OK); /* slot A */
    in_place_model model = {elsh_slots_payload(&fl, &boot), 10};
    /* the first save reads A and writes B: fine */
    CHECK_EQ_INT(elsh_slots_save_from(&fl, in_place_source, &model, sizeof m, &first),
                 ELSH_SLOTS_OK);
    CHECK(first.slot == 1 && first.sequence == 2);
    m[10] ^= 0x5A;
    CHECK(memcmp(elsh_slots_payload(&fl, &first), m, sizeof m) == 0);
    /* the second save would write A, which the source still reads */
    model.changed_at = 20;
    CHECK_EQ_INT(elsh_slots_save_from(&fl, in_place_source, &model, sizeof m, NULL),
                 ELSH_SLOTS_ERR_SOURCE);
    CHECK(elsh_slots_pick(&fl, &info) == ELSH_SLOTS_OK && info.slot == 1 && info.sequence == 2);
    CHECK(memcmp(elsh_slots_payload(&fl, &info), m, sizeof m) == 0);
    /* re-opened from the saved slot, the next save is fine */
    model.file = elsh_slots_payload(&fl, &info);
    CHECK_EQ_INT(elsh_slots_save_from(&fl, in_place_source, &model, sizeof m, &info),
                 ELSH_SLOTS_OK);
    CHECK(info.slot == 0 && info.sequence == 3);
}
