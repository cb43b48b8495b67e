"""``edge-lsh energy``: modelled energy per inference (and per training step) of a model under
each profile, and measured energy with a real meter.

    edge-lsh energy m.elsh                         every profile, the model's own test rows
    edge-lsh energy m.npz --train-steps 200        float model: inference and training step
    edge-lsh energy m.elsh --meter ina260:1:0x40   measured joules per inference above idle
    edge-lsh energy m.elsh --meter powercap --fit  per-op costs fitted over active fractions
    edge-lsh energy --list-profiles                every figure and its source
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edge_lsh.cli.argtypes import (
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from edge_lsh.cli.common import HelpFormatter, add_label_column_arg, is_elsh, load_model_data
from edge_lsh.data import SPEC_HELP
from edge_lsh.energy.measure import fit_costs, measure
from edge_lsh.energy.meters import METER_HELP, Meter, open_meter
from edge_lsh.energy.model import Estimate, estimate, inference_ops, total_ops, training_ops
from edge_lsh.energy.profiles import PROFILES, REFERENCES, Profile, get_profile
from edge_lsh.errors import OutputPathError
from edge_lsh.fileio import atomic_write, check_output_file
from edge_lsh.fixed import FixedPointModel
from edge_lsh.network import Network

FIT_FRACTIONS = (0.05, 0.1, 0.25, 0.5)
NO_FIXED_TRAINING = (
    "fixed-point training does not exist yet: energy per training step is the float "
    "network's (give the .npz model)"
)


def profile_name(text: str) -> str:
    if text not in PROFILES:
        raise argparse.ArgumentTypeError(f"{text!r}: expected one of {', '.join(PROFILES)}")
    return text


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "energy",
        help="modelled and measured energy per inference and per training step",
        description=__doc__.split("\n\n")[0]
        + "\n\nProfiles: "
        + "; ".join(f"{p.name} ({p.title})" for p in PROFILES.values())
        + ".\nModelled kernel energy and measured board energy are reported separately.",
        epilog=SPEC_HELP,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "model", nargs="?", metavar="MODEL", help="an .elsh file, or a float model (.npz)"
    )
    p.add_argument(
        "--profile",
        action="append",
        type=profile_name,
        metavar="NAME",
        help=f"energy profile, repeatable: {', '.join(PROFILES)} (default: all)",
    )
    p.add_argument(
        "--list-profiles",
        action="store_true",
        help="print every profile's figures with their sources, and exit",
    )
    p.add_argument(
        "--data",
        metavar="SPEC",
        help="inputs to count and measure on (see Data specs; default: the model's own data)",
    )
    p.add_argument(
        "--limit", type=positive_int, metavar="N", help="use only the first N rows of each split"
    )
    add_label_column_arg(p)
    p.add_argument(
        "--samples",
        type=positive_int,
        default=200,
        metavar="N",
        help="test rows whose operations are counted (per-inference figures are their mean)",
    )
    p.add_argument(
        "--active",
        type=fraction,
        metavar="F",
        help="active fraction of the LSH layers (default: the model's own)",
    )
    p.add_argument(
        "--dense",
        action="store_true",
        help="compute every neuron (.elsh: the dense int8 baseline of the same file)",
    )
    p.add_argument(
        "--train-steps",
        type=non_negative_int,
        default=100,
        metavar="N",
        help="float models: training steps (one per training row) counted for the energy per "
        "step, on a copy of the model; 0 skips training",
    )
    p.add_argument(
        "--on-board",
        action="store_true",
        help="this machine is the board of the pi4/pi5 profiles: use the time per inference "
        "measured here (otherwise their energy is null)",
    )
    p.add_argument(
        "--instructions",
        type=positive_float,
        metavar="N",
        help="instructions per inference for the rp2350 profile (tools/energy/m33_count.py "
        "counts them under QEMU)",
    )
    p.add_argument(
        "--cpi",
        type=positive_float,
        metavar="X",
        help="rp2350: cycles per instruction, measured (no published figure)",
    )
    p.add_argument(
        "--amps-per-mhz",
        type=positive_float,
        metavar="X",
        help="rp2350: core current per MHz in amperes, measured (no published figure)",
    )
    p.add_argument(
        "--core-volts",
        type=positive_float,
        metavar="V",
        help="rp2350: core supply voltage (DVDD) in volts",
    )
    p.add_argument(
        "--meter",
        metavar="SPEC",
        help=f"model[:PROFILE] (the modelled estimate, default horowitz45), or measure with a "
        f"real meter: {METER_HELP}; rapl is powercap, pi5-pmic is pmic",
    )
    p.add_argument(
        "--powercap-root",
        metavar="DIR",
        help="with --meter rapl/powercap: the powercap folder (default /sys/class/powercap)",
    )
    p.add_argument(
        "--idle-watts",
        type=non_negative_float,
        metavar="W",
        help="with --meter: the board's idle power, instead of measuring it first",
    )
    p.add_argument(
        "--repeat",
        type=positive_int,
        default=3,
        metavar="N",
        help="with --meter: measurements taken; the median is reported, with the spread",
    )
    p.add_argument(
        "--warmup",
        type=non_negative_float,
        default=0.5,
        metavar="S",
        help="with --meter: seconds of inferences run before each measurement",
    )
    p.add_argument(
        "--idle-seconds",
        type=positive_float,
        default=2.0,
        metavar="S",
        help="with --meter: seconds of idle power measured before the work",
    )
    p.add_argument(
        "--seconds",
        type=positive_float,
        default=5.0,
        metavar="S",
        help="with --meter: seconds of inferences measured",
    )
    p.add_argument(
        "--fit",
        action="store_true",
        help="with --meter: measure at active fractions "
        + ", ".join(f"{f:g}" for f in FIT_FRACTIONS)
        + " and every neuron, and fit joules per operation kind",
    )
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also draw the energies as a bar chart (needs matplotlib; checked before any work)",
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout and nothing else"
    )
    p.set_defaults(func=run)
    return p


# ----------------------------------------------------------------------------- helpers


def _note(text: str) -> None:
    print(f"edge-lsh energy: {text}", file=sys.stderr)


def _check_args(args: argparse.Namespace) -> None:
    if args.model is None:
        raise ValueError("give a MODEL (an .elsh file or a float .npz), or --list-profiles")
    if args.fit and not args.meter:
        raise ValueError("--fit measures: it needs --meter SPEC")
    if args.dense and args.active is not None:
        raise ValueError("--dense computes every neuron: it takes no --active")
    if args.plot:
        check_output_file(args.plot, "plot")
        if importlib.util.find_spec("matplotlib") is None:
            raise OutputPathError(
                "--plot needs matplotlib: pip install 'edge-lsh[energy]' (or matplotlib)"
            )


def _overrides(args: argparse.Namespace) -> dict[str, float]:
    out = {}
    for key in ("cpi", "amps_per_mhz", "core_volts"):
        v = getattr(args, key)
        if v is not None:
            out["cycles_per_instruction" if key == "cpi" else key] = v
    return out


def _estimates(
    profiles: list[Profile],
    ops: dict[str, dict[str, float]],
    arithmetic: str,
    seconds: float | None,
    args: argparse.Namespace,
    instructions: float | None,
) -> dict[str, Estimate]:
    out = {}
    for prof in profiles:
        out[prof.name] = estimate(
            prof,
            ops=ops,
            arithmetic=arithmetic,
            instructions=instructions,
            seconds=seconds if args.on_board else None,
            overrides=_overrides(args),
        )
    return out


def _set_active(model: Any, args: argparse.Namespace, frac: float | None, dense: bool) -> None:
    if isinstance(model, FixedPointModel):
        model.set_active(frac, dense=dense)
    elif dense:
        model.set_active_fraction(1.0)
    else:
        model.set_active_fraction(frac)


def _measure(meter: Meter, model: Any, x: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    batch = x[: min(len(x), 64)]

    def work() -> int:
        model.predict(batch)
        return int(batch.shape[0])

    runs = [
        measure(
            meter,
            work,
            idle_seconds=args.idle_seconds,
            seconds=args.seconds,
            idle_watts=args.idle_watts,
            warmup_seconds=args.warmup,
        ).as_dict()
        for _ in range(args.repeat)
    ]
    jpi = [r["joules_per_inference"] for r in runs]
    mid = runs[int(np.argsort(jpi)[len(jpi) // 2])]  # the median run (the upper one of two)
    return {
        **mid,
        "joules_per_inference": float(np.median(jpi)),
        "joules_per_inference_min": min(jpi),
        "joules_per_inference_max": max(jpi),
        "watts_mean": float(np.mean([r["watts"] for r in runs])),
        "inferences": sum(int(r["inferences"]) for r in runs),
        "elapsed_seconds": sum(float(r["seconds"]) for r in runs),
        "runs": runs,
    }


# ----------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    if args.list_profiles:
        return _list_profiles(args)
    _check_args(args)
    model_meter = bool(args.meter) and args.meter.split(":", 1)[0].lower() == "model"
    if model_meter:  # --meter model[:PROFILE]: the estimate, under that profile first
        first = args.meter.partition(":")[2] or "horowitz45"
        args.profile = [first, *[p for p in (args.profile or []) if p != first]]
    spec = args.meter
    if spec and args.powercap_root and spec.split(":")[0].lower() in ("powercap", "rapl"):
        root = Path(args.powercap_root)  # a zone folder, or the powercap folder holding zones
        zone = root if (root / "energy_uj").exists() else root / "intel-rapl:0"
        spec = f"powercap:{zone}"
    meter = open_meter(spec) if spec and not model_meter else None  # a missing sensor: here
    profiles = [get_profile(n) for n in (args.profile or list(PROFILES))]

    fixed = is_elsh(args.model)
    model: Any = FixedPointModel.load(args.model) if fixed else Network.load(args.model)
    record = model.info.get("data") if fixed else model.data
    data = load_model_data(args.data, None, args.limit, args.label_column, record, args.model)
    data.check_fits(model.n_in, model.n_classes)
    x = data.x_test[: args.samples]
    _set_active(model, args, args.active, args.dense)

    ops, seconds = inference_ops(model, x)
    arithmetic = "int8" if fixed else "fp32"
    infer = _estimates(profiles, ops, arithmetic, seconds, args, args.instructions)
    summary: dict[str, Any] = {
        "model": args.model,
        "kernel": "fixed point (int8)" if fixed else "float32",
        "data": data.name,
        "samples": int(x.shape[0]),
        "dense": bool(args.dense),
        "active_fraction": args.active,
        "inference": {
            "ops": {k: round(v, 3) for k, v in total_ops(ops).items()},
            "ops_by_phase": ops,
            "seconds_on_this_machine": seconds,
            "estimates": {k: e.as_dict() for k, e in infer.items()},
        },
    }
    if fixed:
        summary["training"] = {"available": False, "why": NO_FIXED_TRAINING}
    elif args.train_steps > 0:
        summary["training"] = _training(args, data, profiles)
    if meter is not None:
        _note(f"measuring with {meter.name}: {args.idle_seconds:g} s idle, then inferences")
        summary["measured"] = _measure(meter, model, data.x_test, args)
        if args.fit:
            summary["fit"] = _fit(meter, model, data.x_test, args, fixed)
    summary = {**_headline(summary, meter is None, profiles[0].name), **summary}
    summary["references"] = REFERENCES
    if args.plot:
        _plot(summary, args.plot)
    _print(summary, args.json)
    return 0


def _headline(summary: dict[str, Any], estimated: bool, profile: str) -> dict[str, Any]:
    """The figures a script reads first: joules per inference and per multiplication, from the
    meter (median over --repeat) or, without one, modelled under the first profile."""
    mults = float(summary["inference"]["ops"]["mul"])
    head: dict[str, Any] = {"multiplications_per_inference": mults}
    if estimated:
        est = summary["inference"]["estimates"][profile]
        jpi = est["joules_low"]
        head.update(
            meter=f"model:{profile}",
            estimate=True,
            joules_per_inference=jpi,
            components=est.get("parts", {}),
            watts_mean=None,
            idle_watts=None,
            inferences=None,
            elapsed_seconds=None,
        )
    else:
        m = summary["measured"]
        jpi = m["joules_per_inference"]
        head.update(
            meter=m["meter"],
            estimate=False,
            joules_per_inference=jpi,
            watts_mean=m["watts_mean"],
            idle_watts=m["idle_watts"],
            inferences=m["inferences"],
            elapsed_seconds=m["elapsed_seconds"],
        )
    head["joules_per_multiplication"] = None if jpi is None or mults <= 0 else jpi / mults
    return head


def _training(args: argparse.Namespace, data: Any, profiles: list[Profile]) -> dict[str, Any]:
    net = Network.load(args.model)  # a copy: the saved model is not changed
    if args.dense:
        net.set_active_fraction(1.0)
    elif args.active is not None:
        net.set_active_fraction(args.active)
    n = min(args.train_steps, data.x_train.shape[0])
    ops, seconds = training_ops(net, data.x_train[:n], data.y_train[:n])
    est = _estimates(profiles, ops, "fp32", seconds, args, None)
    for prof in profiles:  # counted instructions are of inference: not of a training step
        if prof.kind == "instructions":
            est[prof.name] = Estimate(
                prof.name, prof.kind, None, None, note="no instruction count of training"
            )
    return {
        "steps": n,
        "ops": {k: round(v, 3) for k, v in total_ops(ops).items()},
        "ops_by_phase": ops,
        "seconds_on_this_machine": seconds,
        "estimates": {k: e.as_dict() for k, e in est.items()},
    }


def _fit(
    meter: Meter, model: Any, x: np.ndarray, args: argparse.Namespace, fixed: bool
) -> dict[str, Any]:
    configs: list[tuple[float | None, bool]] = [(f, False) for f in FIT_FRACTIONS]
    configs.append((None, True))
    rows, joules, points = [], [], []
    for frac, dense in configs:
        _set_active(model, args, frac, dense)
        ops, _ = inference_ops(model, x[: args.samples])
        _note(f"fit: measuring at {'every neuron' if dense else f'{frac:g} active'}")
        m = _measure(meter, model, x, args)
        rows.append(ops)
        joules.append(m["joules_per_inference"])
        points.append({"active_fraction": frac, "dense": dense, **m})
    result = fit_costs(rows, joules, kinds=("mul", "bytes"))  # joules per mult and per byte
    result["points"] = points
    return result


def _fmt_j(v: float | None) -> str:
    if v is None:
        return "null"
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6), ("nJ", 1e-9), ("pJ", 1e-12)):
        if abs(v) >= scale:
            return f"{v / scale:.4g} {unit}"
    return f"{v:.3g} J"


def _print(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        import json

        print(json.dumps(summary), flush=True)
        return
    print(f"{'model':20s} {summary['model']} ({summary['kernel']}, {summary['data']})")
    for what in ("inference", "training"):
        part = summary.get(what)
        if not part:
            continue
        if not part.get("available", True):
            print(f"{what:20s} {part['why']}")
            continue
        unit = "per inference" if what == "inference" else "per training step"
        ops = ", ".join(f"{k} {v:,.0f}" for k, v in part["ops"].items())
        print(f"{what + ' ops':20s} {ops} ({unit})")
        for name, e in part["estimates"].items():
            lo, hi = e["joules_low"], e["joules_high"]
            text = _fmt_j(lo) if lo == hi else f"{_fmt_j(lo)} to {_fmt_j(hi)}"
            extra = f"  ({e['note']})" if e.get("note") else ""
            print(f"  {name:18s} {text} {unit}{extra}")
    if "measured" in summary:
        m = summary["measured"]
        print(
            f"{'measured':20s} {_fmt_j(m['joules_per_inference'])} per inference above idle "
            f"({m['meter']}: idle {m['idle_watts']:.4g} W, working {m['watts']:.4g} W, "
            f"{m['inferences']} inferences in {m['seconds']:.3g} s)"
        )
    if "fit" in summary:
        f = summary["fit"]
        ci = f.get("confidence_95") or {}
        costs = ", ".join(
            f"{k} {_fmt_j(v)}"
            + (f" (95%: {_fmt_j(ci[k][0])} .. {_fmt_j(ci[k][1])})" if k in ci else "")
            for k, v in f["joules_per_op"].items()
        )
        print(f"{'fitted per op':20s} {costs} (condition number {f['condition_number']:.3g})")
    print("modelled kernel energy and measured board energy are separate figures: never add them")


def _list_profiles(args: argparse.Namespace) -> int:
    if args.json:
        import json

        out = {
            "profiles": {n: p.as_dict() for n, p in PROFILES.items()},
            "references": REFERENCES,
        }
        print(json.dumps(out), flush=True)
        return 0
    for prof in PROFILES.values():
        print(f"{prof.name}: {prof.title} [{prof.kind}]")
        for key, fig in prof.figures.items():
            val = "null" if fig.low is None else f"{fig.low:g}"
            if fig.high != fig.low and fig.high is not None:
                val += f"-{fig.high:g}"
            flag = "" if fig.verified else " (unverified: not used)"
            print(f"  {key:24s} {val} {fig.unit}{flag}  -- {fig.source}")
            if fig.note:
                print(f"  {'':24s} note: {fig.note}")
        for note in prof.notes:
            print(f"  * {note}")
    print("references (board level, for scale only):")
    for ref in REFERENCES.values():
        print(
            f"  {ref['board']}, {ref['benchmark']}: {ref['microjoules_per_inference']} µJ, "
            f"{ref['milliwatts']} mW -- {ref['source']}"
        )
    return 0


def _plot(summary: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars: list[tuple[str, float, float]] = []
    for what in ("inference", "training"):
        part = summary.get(what) or {}
        for name, e in (part.get("estimates") or {}).items():
            if e["joules_low"] is not None:
                bars.append((f"{name}\n{what}", e["joules_low"], e["joules_high"]))
    if "measured" in summary:
        j = summary["measured"]["joules_per_inference"]
        bars.append(("measured\ninference", j, j))
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    if bars:
        labels = [b[0] for b in bars]
        lows = np.array([b[1] for b in bars]) * 1e6
        highs = np.array([b[2] for b in bars]) * 1e6
        ax.bar(labels, lows, color="#4477aa", label="low")
        ax.bar(labels, highs - lows, bottom=lows, color="#99bbdd", label="to high")
        ax.set_ylabel("µJ")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no profile has the figures it needs", ha="center", va="center")
    ax.set_title(f"{summary['model']}: energy (null estimates not drawn)", fontsize=9)
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png")
    plt.close(fig)
