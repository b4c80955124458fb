"""Benchmark: the pipeline's stages at the size of the real cohorts -> bench/scale.json and reports/scale.md.

Run through `make bench-scale` (options: `make bench-scale SCALE_ARGS="--double"`). In a scratch workspace
(a temporary folder, or --workdir), with its own raw store (CRLM_RAW_DIR=<scratch>/raw) and a params.yaml
that is the repository's with the overrides below, each stage runs as its own process, as the tests run
stages outside dvc: `python <repo>/stages/<stage>.py --params params.yaml` (train with `--arch <arch>`, one
run per arch), with PYTHONPATH=<repo>/src:<repo>. The default size is TCIA's collection (197 patients,
512 x 512 slices) as a phantom: 197 patients x 55 slices at 0.8 mm, prepared at 256 px without a crop, and a
short training per arch at the paper's width 1 (1 epoch on one slice per patient, balanced).

Per stage it records:
- wall_s, cpu_s (the RUSAGE_CHILDREN delta: the stage and every pool worker it reaped) and cores_used =
  cpu_s / wall_s, beside the CPU budget (train.workers, 0 = every core);
- the peak private memory, memory-mapped file pages excluded (MemorySampler): every SAMPLE_S a thread walks
  the stage process and its descendants (psutil) and reads their anonymous-page counters, and
  /proc/<pid>/smaps_rollup of them all where a peak can be; a process's private memory is Anonymous + Swap,
  the tree's is the sum of Pss_Anon + SwapPss (pages a fork shares counted once); the maxima of the largest
  single process and of the tree are kept. psutil's uss, VmHWM and ru_maxrss count the file pages of a
  memory-mapped array and are no criterion (ru_maxrss is kept for reference);
- the disk its outputs take (allocated blocks), and at the end that of the raw store, data/interim,
  data/processed and data/models.

reports/scale.md (a docs page, through scripts/docs_hooks.py) is generated from the same figures: the machine,
the command, the per-stage table, the doubling growth (--double), the checks against TARGETS, and what the
real cohorts need, extrapolated by the rules that the page states.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

# run as a script, Python puts this folder (scripts/) first on sys.path, so its package `scale` imports
from scale.estimates import combine, summarise
from scale.machine import machine
from scale.memory import ROLLUP_EVERY_S, SAMPLE_S
from scale.page import write_outputs
from scale.runner import (
    MATRIX,
    REPO,
    STAGES,
    TCIA_SIZE,
    TRAIN_STAGES,
    bench_run,
    disk_upper_bound,
    run_overrides,
    with_overrides,
)
from scale.units import fmt_bytes, fmt_value

LITS_SIZE = {"patients": 131, "slices": 450}


def parse_sets(values: list[str]) -> dict[str, Any]:
    out = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or "." not in key:
            raise SystemExit(f"bench_scale: --set {value!r}: expected section.key=value")
        out[key] = yaml.safe_load(raw)
    return out


def chosen_stages(spec: str | None) -> list[str]:
    if not spec:
        return STAGES
    names = []
    for name in spec.split(","):
        name = name.strip()
        expanded = TRAIN_STAGES if name == "train" else [name]
        unknown = [n for n in expanded if n not in STAGES]
        if unknown:
            raise SystemExit(f"bench_scale: unknown stage {name!r}; valid: {', '.join(['train', *STAGES])}")
        names += expanded
    return [stage for stage in STAGES if stage in names]  # the pipeline's order


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, help=f"phantom patients (default {TCIA_SIZE['patients']})")
    parser.add_argument("--slices", type=int, help=f"slices per volume (default {TCIA_SIZE['slices']})")
    parser.add_argument(
        "--matrix",
        type=int,
        default=MATRIX,
        help="in-plane pixels (default 512); the pixel spacing keeps the 410 mm field of view",
    )
    parser.add_argument(
        "--lits",
        action="store_true",
        help=f"LiTS' size: {LITS_SIZE['patients']} patients x {LITS_SIZE['slices']} slices (needs the disk "
        "that it prints first)",
    )
    parser.add_argument("--double", action="store_true", help="run at N and 2N patients; report the growth")
    parser.add_argument("--stages", help=f"comma-separated, in any order (default all): train, {', '.join(STAGES)}")
    parser.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="another params override"
    )
    parser.add_argument("--workdir", type=Path, help="the scratch workspace, kept (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    parser.add_argument("--force", action="store_true", help="run even when the disk bound exceeds the free disk")
    parser.add_argument(
        "--rollup-every",
        type=float,
        default=ROLLUP_EVERY_S,
        metavar="S",
        help=f"read smaps_rollup at least every S s (default {ROLLUP_EVERY_S:g}; {SAMPLE_S:g}: at every sample)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/scale.json"), help="the results (JSON)")
    parser.add_argument("--page", type=Path, default=REPO / "reports" / "scale.md", help="the generated page")
    parser.add_argument(
        "--combine", type=Path, nargs="+", metavar="JSON", help="write one page from these earlier results and stop"
    )
    args = parser.parse_args(argv)
    if args.combine:
        missing = [str(path) for path in args.combine if not path.is_file()]
        if missing:
            raise SystemExit(f"bench_scale: --combine: no such result file {missing}; a run writes one with --out")
        result = combine([json.loads(path.read_text()) for path in args.combine])
        write_outputs(result, args.out, args.page)
        print(f"bench_scale: {args.out}, {args.page}")
        return

    size = {**TCIA_SIZE, **(LITS_SIZE if args.lits else {})}
    patients, slices = args.patients or size["patients"], args.slices or size["slices"]
    stages = chosen_stages(args.stages)
    extra = parse_sets(args.set)
    sizes = [patients, 2 * patients] if args.double else [patients]
    where = args.workdir or Path(tempfile.gettempdir())
    params = with_overrides(run_overrides(patients, slices, args.matrix, extra))
    bound = disk_upper_bound(params, sum(sizes), any(s in TRAIN_STAGES for s in stages))
    free = shutil.disk_usage(next(p for p in [where.absolute(), *where.absolute().parents] if p.exists())).free
    print(
        f"bench_scale: {' and '.join(map(str, sizes))} patients x {slices} slices at {args.matrix} px in "
        f"{args.workdir or f'a temporary folder in {where}'}; disk at most {fmt_bytes(bound['total'])} ("
        + ", ".join(f"{k} {fmt_bytes(v)}" for k, v in bound.items() if k != "total")
        + f"; uncompressed bound), free {fmt_bytes(free)}",
        flush=True,
    )
    if bound["total"] > free and not args.force:
        raise SystemExit(
            "bench_scale: the disk bound exceeds the free disk; the real figure is usually several times "
            "smaller (compressed NIfTI and .npz): --force runs anyway, --workdir puts it on another disk"
        )

    command = "python scripts/bench_scale.py" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="crlm-scale-"))
    print(f"bench_scale: workspace {workdir}" + ("" if args.workdir or args.keep else " (removed at the end)"))
    runs = []
    try:
        for n in sizes:
            folder = workdir / f"n{n}" if args.double else workdir
            overrides = run_overrides(n, slices, args.matrix, extra)
            runs.append(bench_run(folder, stages, overrides, n, slices, args.rollup_every))
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    result = summarise(machine(), command, runs, bound)
    write_outputs(result, args.out, args.page)
    print(f"bench_scale: {args.out}, {args.page}")
    for c in result["checks"]:
        print(f"  {c['check']}: {fmt_value(c['measured'], c['unit'])} -> {c['verdict']}")


if __name__ == "__main__":
    main()
