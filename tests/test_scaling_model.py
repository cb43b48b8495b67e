"""The arithmetic of tools/bench/scaling_model.py: the conflict, shared-write, lost-update and
coherence formulas against exact small cases and against Monte Carlo simulations on synthetic
active sets, and the speedup model's limiting cases."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "tools" / "bench"


def load_script():
    sys.path.insert(0, str(BENCH))  # the scripts import their neighbour `common`
    try:
        spec = importlib.util.spec_from_file_location("scaling_model", BENCH / "scaling_model.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["scaling_model"] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


sm = load_script()


def test_exact_small_cases():
    assert sm.conflict_probability([1.0, 0.0], 2).tolist() == [1.0, 0.0]
    assert sm.conflict_probability([0.5], 2)[0] == pytest.approx(0.25)
    # three threads: 1 - 1/8 - 3 * 1/2 * 1/4
    assert sm.conflict_probability([0.5], 3)[0] == pytest.approx(0.5)
    assert sm.conflict_probability([0.3], 1)[0] == 0.0
    assert sm.expected_conflicting_rows([0.5, 0.5, 1.0], 2) == pytest.approx(1.5)
    assert sm.shared_write_fraction([1.0, 1.0], 2) == pytest.approx(1.0)
    assert sm.shared_write_fraction([0.5], 2) == pytest.approx(0.5)
    assert sm.shared_write_fraction([0.5], 1) == 0.0
    # write-weighted: rows 0.5 and 0.1 -> (0.25 + 0.01) / 0.6
    assert sm.write_weighted_frequency([0.5, 0.1]) == pytest.approx(0.26 / 0.6)
    assert sm.lost_update_fraction([1.0], 3, 0.01) == pytest.approx(0.04)
    assert sm.lost_update_fraction([1.0], 1, 0.01) == 0.0
    assert sm.modified_since_last_touch([1.0], 2)[0] == pytest.approx(1.0)
    assert sm.modified_since_last_touch([1e-9, 0.0], 4).tolist() == pytest.approx([0.75, 0.75])
    assert sm.modified_since_last_touch([0.5], 1)[0] == 0.0


def synthetic_active(rng, n=20000, rows=200, k=10):
    """n samples each writing k distinct rows drawn with skewed (Zipf-like) weights, like the
    hot neurons of a trained LSH layer."""
    weights = 1.0 / np.arange(1, rows + 1) ** 1.1
    weights /= weights.sum()
    # weighted sampling without replacement, all samples at once: the k largest of
    # log(weight) + Gumbel noise (the Gumbel-top-k trick)
    keys = np.log(weights) + rng.gumbel(size=(n, rows))
    chosen = np.argpartition(-keys, k, axis=1)[:, :k]
    active = np.zeros((n, rows), dtype=bool)
    np.put_along_axis(active, chosen, True, axis=1)
    assert (active.sum(axis=1) == k).all()
    return active


@pytest.mark.parametrize("threads", [2, 4, 8])
def test_conflict_formulas_match_monte_carlo(threads):
    rng = np.random.default_rng(threads)
    active = synthetic_active(rng)
    p = active.mean(axis=0)
    steps = 20000
    mc = sm.monte_carlo_conflicts(active, threads, steps, rng)
    want = sm.expected_conflicting_rows(p, threads)
    # standard error of the per-step mean: the count's standard deviation is below sqrt(rows)
    assert abs(mc["conflicting_rows"] - want) < 4 * np.sqrt(active.shape[1] / steps)
    assert mc["shared_write_fraction"] == pytest.approx(
        sm.shared_write_fraction(p, threads), abs=0.01
    )
    assert 0.0 < mc["p_step_has_conflict"] <= 1.0
    assert want > 0


def test_monte_carlo_counts_by_hand():
    # rows: 0 written by both samples, 1 by the first only
    active = np.array([[True, True], [True, False]])

    class Fixed:
        def integers(self, lo, hi, size):
            return np.array([[0, 1], [1, 1], [0, 0]])

    mc = sm.monte_carlo_conflicts(active, 2, 3, Fixed())
    # step 1: row 0 twice (conflict), row 1 once; step 2: row 0 twice; step 3: rows 0 and 1
    assert mc["conflicting_rows"] == pytest.approx(4 / 3)
    assert mc["shared_write_fraction"] == pytest.approx(1.0 * (2 + 2 + 4) / 9)
    assert mc["p_step_has_conflict"] == 1.0


@pytest.mark.parametrize("q, threads", [(0.05, 2), (0.3, 2), (0.3, 4), (0.9, 3)])
def test_modified_since_last_touch_matches_simulation(q, threads):
    """Round robin: each step every thread runs one sample, touching the line with
    probability q; count thread 0's touches after which another thread had written it."""
    rng = np.random.default_rng(7)
    steps = 40000
    touch = rng.random((steps, threads)) < q
    modified = hits = 0
    other_since = None  # None until thread 0's first touch
    for s in range(steps):
        if touch[s, 0]:
            if other_since is not None:
                hits += 1
                modified += other_since
            other_since = False
        if other_since is not None and touch[s, 1:].any():
            other_since = True
    assert hits > 1000
    assert modified / hits == pytest.approx(sm.modified_since_last_touch([q], threads)[0], abs=0.02)


def measured(**over):
    base = dict(
        n_train=100, k=5, rows=100, t_sample=1e-3, t_forward=2e-4, t_tables=0.0,
        t_shuffle=0.0, t_load=0.1, params_per_sample=1000, bytes_touched=1e5,
        bandwidth_1=10.0, bandwidth_all=10.0, private_bytes=1 << 20, llc_bytes=1 << 30,
    )  # fmt: skip
    base.update(over)
    return sm.Measured(**base)


def target(**over):
    base = dict(name="t", cores=8, slow=1.0, private_bytes=0, llc_bytes=1 << 30,
                dram_gb_s=100.0, coh_ns=0.0, mlp=1.0, note="")  # fmt: skip
    base.update(over)
    return sm.Target(**base)


def pieces(touch, lines):
    return sm.StatePieces(np.asarray(touch, dtype=float), np.asarray(lines, dtype=float))


def test_state_pieces_of_a_layer():
    sp = sm.StatePieces.of(np.array([0.5, 0.0]), np.array([0.25]), 784, 10)
    # two layer-0 rows of ceil(785 * 4 / 64) = 50 lines in each of 3 arrays, one output line
    # in 10 rows x 3 arrays, the output biases (3 lines, always)
    assert sp.touch.tolist() == [0.5, 0.0, 0.25, 1.0]
    assert sp.lines.tolist() == [150, 150, 30, 3]


def test_cache_terms_fill_hottest_first():
    sp = pieces([0.1, 0.9], [1, 1])
    # room for one line: the piece touched by 90 % of the samples
    got = sp.cache_terms(2, private_bytes=64, llc_bytes=64)
    assert got["coherence_lines"] == pytest.approx(0.9 * sm.modified_since_last_touch([0.9], 2)[0])
    assert got["private_fraction_of_writes"] == pytest.approx(0.9)
    assert got["dram_bytes"] == pytest.approx(0.1 * 64 * 2)  # the cold one: read + write back
    # one thread: nothing modified by another
    assert sp.cache_terms(1, 64, 64)["coherence_lines"] == 0.0


def test_speedup_limits():
    cold = pieces([0.05], [10])
    m = measured()
    # nothing serial, nothing in a private cache, the state in the LLC: linear
    for T in (1, 2, 8):
        assert sm.predict(m, target(), T, cold)["speedup"] == pytest.approx(T)
    # Amdahl: a quarter serial (the shuffle)
    r = sm.predict(measured(t_shuffle=2.5e-4), target(), 4, cold)
    assert r["speedup"] == pytest.approx(1 / (0.25 + 0.75 / 4))
    assert r["serial_share"] == pytest.approx(0.25)
    # table maintenance is split among the threads: parallel work
    r = sm.predict(measured(t_tables=2.5e-4), target(), 4, cold)
    assert r["speedup"] == pytest.approx(4.0)
    assert r["serial_share"] == 0.0
    # the state does not fit the cache: 1 MB per sample (read + write back) over 1 GB/s
    big = pieces([1.0], [1e6 / 128])
    r = sm.predict(m, target(llc_bytes=1, dram_gb_s=1.0), 8, big)
    assert r["dram_bytes_per_sample"] == pytest.approx(1e6)
    assert r["bandwidth_bound"] == 1.0
    assert r["speedup"] == pytest.approx(1.0)
    # coherence: 100 lines always touched, in the private cache, always modified: 1 us each
    hot = pieces([1.0], [100])
    r = sm.predict(m, target(coh_ns=1000.0, private_bytes=1 << 20), 2, hot)
    assert r["coherence_seconds_per_sample"] == pytest.approx(100e-6)
    assert r["speedup"] == pytest.approx(1e-3 / ((1e-3 + 100e-6) / 2))


def test_phase2_share_follows_the_hot_rows():
    # all writes in the first half of the rows: the ranges are cut at half the steps, so each
    # worker gets one of the two hot rows (5 each) and one output row of k + 1 = 2
    p = np.array([0.5, 0.5, 0.0, 0.0])
    assert sm.phase2_max_share(p, 2, n_in=9, n_out=2, k=1) == pytest.approx(0.5)
    # spread evenly: balanced
    assert sm.phase2_max_share(np.full(4, 0.25), 2, 9, 2, 1) == pytest.approx(0.5)
    assert sm.phase2_max_share(p, 1, 9, 2, 1) == pytest.approx(1.0)
    # a row is never split: one row with most of the steps is one worker's (10 + 2 of 17)
    hot = np.array([1.0, 0.1, 0.1, 0.1])
    assert sm.phase2_max_share(hot, 2, 9, 2, 1) == pytest.approx(12 / 17)


def test_deterministic_limits():
    cold = pieces([0.05], [10])
    m = measured(t_forward=4e-4)  # phase 1 0.4 ms, phase 2 0.6 ms
    assert sm.predict_deterministic(m, target(), 1, cold, 1.0)["speedup"] == pytest.approx(1.0)
    # balanced phase 2 and no coherence: linear
    r = sm.predict_deterministic(m, target(), 4, cold, 0.25)
    assert r["speedup"] == pytest.approx(4.0)
    # one worker does all of phase 2: only phase 1 is split
    r = sm.predict_deterministic(m, target(), 4, cold, 1.0)
    assert r["speedup"] == pytest.approx(1e-3 / (4e-4 / 4 + 6e-4))
    # a hot piece in the private cache, touched by every sample: with 2 workers and batch 64,
    # each worker re-reads half its lines once a batch
    hot = pieces([1.0], [64])
    r = sm.predict_deterministic(
        m, target(coh_ns=1000.0, private_bytes=1 << 20), 2, hot, 0.5, batch=64
    )
    assert r["coherence_lines_per_sample"] == pytest.approx(64 * 0.5 / 64)


def test_owner_share_deals_blocks_round_robin():
    # 64 rows, blocks of 16: two blocks each for 2 workers; all the writes in block 0
    p = np.zeros(64)
    p[:16] = 1.0
    assert sm.owner_max_share(p, 2, n_in=9, n_out=0, k=1) == pytest.approx(1.0)
    # spread evenly: balanced; the output rows (one block, worker 0's) tilt it
    even = np.full(64, 0.5)
    assert sm.owner_max_share(even, 2, 9, 0, 1) == pytest.approx(0.5)
    assert sm.owner_max_share(even, 2, 9, 2, 1) == pytest.approx((160 + 4) / (320 + 4))
    assert sm.owner_max_share(even, 1, 9, 2, 1) == pytest.approx(1.0)


def test_owned_limits():
    cold = pieces([0.05], [10])
    m = measured(t_forward=4e-4)  # forward 0.4 ms, steps 0.6 ms
    # one thread is the plain trainer, whatever the step cost
    assert sm.predict_owned(m, target(), 1, cold, 1.0)["speedup"] == pytest.approx(1.0)
    # balanced owners, a plain-cost step, no coherence: linear
    r = sm.predict_owned(m, target(), 4, cold, 0.25, owner_step_cost=1.0)
    assert r["speedup"] == pytest.approx(4.0)
    # the owner's step at 1.1x: the steps' part of every worker's time grows
    r = sm.predict_owned(m, target(), 2, cold, 0.5, owner_step_cost=1.1)
    assert r["speedup"] == pytest.approx(1e-3 / ((4e-4 + 6e-4 * 1.1) / 2))
    # one worker owns every row: its steps bound the time, the others only run samples
    r = sm.predict_owned(m, target(), 4, cold, 1.0, owner_step_cost=1.0)
    assert r["speedup"] == pytest.approx(1e-3 / 6e-4)
    # a hot piece in the private cache touched by every sample, 2 workers, drain 8: each
    # worker re-reads the other's half of its lines once a drain of 8 samples
    hot = pieces([1.0], [64])
    r = sm.predict_owned(m, target(coh_ns=1000.0, private_bytes=1 << 20), 2, hot, 0.5, drain=8)
    assert r["coherence_lines_per_sample"] == pytest.approx(64 * 0.5 / 8)
