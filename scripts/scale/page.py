"""reports/scale.md, rendered from the results, and the writer of the results and the page."""

from __future__ import annotations

import json
from pathlib import Path

from .estimates import COHORTS, SERVER_CORES, TARGETS, is_tcia_size
from .memory import ROLLUP_EVERY_S, ROLLUP_RISE, SAMPLE_S
from .runner import MATRIX, TCIA_SIZE
from .units import fmt_bytes, fmt_mib, fmt_s, fmt_value


def stage_table(run: dict) -> list[str]:
    lines = [
        "| stage | wall | CPU | cores used (budget) | peak private, largest process | peak private, tree | "
        "disk of its outputs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for stage, m in run["stages"].items():
        failed = f" (failed, exit {m['returncode']})" if m["returncode"] else ""
        largest = f" ({m['largest']})" if m.get("largest") else ""
        lines.append(
            f"| `{stage}`{failed} | {fmt_s(m['wall_s'])} | {fmt_s(m['cpu_s'])} | "
            f"{m['cores_used']} ({run['cpu_budget']}) | {fmt_mib(m.get('process_mib'))}{largest} | "
            f"{fmt_mib(m.get('tree_mib'))} | {fmt_bytes(m['disk_bytes'])} |"
        )
    return lines


def sampler_note(run: dict) -> list[str]:
    cpu = sum(m.get("sampler_cpu_s") or 0.0 for m in run["stages"].values())
    wall = sum(m["wall_s"] for m in run["stages"].values())
    samples = sum(m.get("samples") or 0 for m in run["stages"].values())
    rollups = sum(m.get("rollups") or 0 for m in run["stages"].values())
    if not wall:
        return []
    return [
        f"The memory sampler took {samples:,} samples ({rollups:,} of them with smaps_rollup) and used {cpu:.1f} s "
        f"of CPU in the benchmark's own process over {fmt_s(wall)} of stages ({100 * cpu / wall:.0f}% of one "
        "core), beside the stages and not in their CPU column.",
        "",
    ]


def run_section(run: dict, title: str) -> list[str]:
    overrides = ", ".join(f"`{k}={v}`" for k, v in run["overrides"].items())
    liver = run.get("liver_slices")
    prepared = run.get("prepared_images")
    lines = [
        f"## {title}",
        "",
        f"{run['patients']} patients x {run['slices_per_patient']} slices = {run['ct_slices']:,} CT slices at "
        f"{run['matrix']} x {run['matrix']}, {liver if liver is not None else '-'} of them with liver, "
        f"{prepared if prepared is not None else '-'} prepared images at {run['image_size']} px; "
        f"{run['cores']} cores usable, CPU budget {run['cpu_budget']} (`train.workers`). "
        f"params.yaml overrides: {overrides}.",
        "",
        *stage_table(run),
        "",
        *sampler_note(run),
        "| disk | " + " | ".join(run["disk_bytes"]) + " |",
        "| --- | " + " | ".join("---:" for _ in run["disk_bytes"]) + " |",
        "| this run | " + " | ".join(fmt_bytes(v) for v in run["disk_bytes"].values()) + " |",
        "",
    ]
    return lines


def growth_section(result: dict) -> list[str]:
    growths = result["growth"]
    if growths is None:
        return [
            "## Growth with the number of patients",
            "",
            "Not measured: `--double` runs at N and 2N patients and reports peak(2N) / peak(N) per stage.",
            "",
        ]
    small, large = result["runs"][0]["patients"], result["runs"][1]["patients"]
    lines = [
        "## Growth with the number of patients",
        "",
        f"Peak private memory at {large} patients / at {small} (target <= {TARGETS['growth']}: a stage whose "
        "memory grows with the cohort would not fit a larger one).",
        "",
        f"| stage | largest process, {small} | {large} | growth | tree, {small} | {large} | growth | "
        f"<= {TARGETS['growth']} |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for stage, g in growths.items():
        lines.append(
            f"| `{stage}` | {fmt_mib(g['process_mib'][0])} | {fmt_mib(g['process_mib'][1])} | "
            f"{g['process_growth']:.2f} | {fmt_mib(g['tree_mib'][0])} | {fmt_mib(g['tree_mib'][1])} | "
            f"{g['tree_growth']:.2f} | {'yes' if g['ok'] else 'NO'} |"
        )
    return [*lines, ""]


def checks_section(result: dict) -> list[str]:
    lines = [
        "## Checks against the targets",
        "",
        f"At TCIA's size ({COHORTS['TCIA'].patients} patients, {COHORTS['TCIA'].ct_slices:,} CT slices at "
        f"512 x 512, prepared at 256 px). The column *at TCIA's CT slices* carries the measured figure to "
        "TCIA's slice count by the rules of [What you need](#what-you-need) (an extrapolation wherever the run "
        "had another number of CT slices); the memory's verdict is on that column, the data stages' on the "
        f"measured figure (their target is set on the TCIA-size phantom itself: {TCIA_SIZE['patients']} patients "
        f"x {TCIA_SIZE['slices']} slices).",
        "",
        "| check | measured | at TCIA's CT slices | target | verdict |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for c in result["checks"]:
        lines.append(
            f"| {c['check']} | {fmt_value(c['measured'], c['unit'])} | {fmt_value(c['at_tcia'], c['unit'])} | "
            f"{c['target']} | {c['verdict']} |"
        )
    return [*lines, ""]


def needs_section(result: dict) -> list[str]:
    run = result["runs"][-1]
    size = " at 2N patients" if len(result["runs"]) > 1 else ""
    source = f"the run above{size} ({run['ct_slices']:,} CT slices)"
    if result.get("needs_from"):  # --combine
        run = result["runs"][0]
        models = result["needs_from"]["models"]
        source = f"the run of {run['patients']} patients ({run['ct_slices']:,} CT slices)" + (
            f", the training, the readers and the models from the run of {models} patients" if models else ""
        )
    rules = [
        f"Extrapolated from {source}, **not measured at the cohorts' sizes** (but for TCIA's data stages), by "
        "these rules:",
        "",
        "- disk and time scale linearly with the CT slices (with the phantom's share of slices with liver, not "
        "the cohort's); the models' weights (of the archs that ran) do not scale;",
        "- a stage's peak private memory is flat where `--double` measured its growth within "
        f"{TARGETS['growth']}, linear in the CT slices where it grew more, and assumed flat where it was not "
        "measured;",
        "- the page cache is the prepared set's size on disk (training and the readers read `data/processed` "
        "again and again); RAM = the largest tree's private memory + that page cache;",
        "- the raw store holds the phantom's gzip NIfTI files: the real downloads (TCIA's DICOM, LiTS' NIfTI) "
        "take another size, and their `fetch` is a download whose time is the network's;",
        f"- a GPU server's data stages: this machine's CPU time of them / {SERVER_CORES} cores (linear in the "
        "cores, not measured);",
        "- the training is the short one (one epoch, one slice per training patient): a full training takes "
        "about train.epochs x train.max_slices_per_patient times its training steps, plus the same predictions.",
    ]
    if not is_tcia_size(run):
        rules += [
            "",
            f"**This run was at matrix {run['matrix']} and {run['image_size']} px, not {MATRIX} and 256, and "
            "fixed costs (starting Python, importing torch) weigh more in a small run: the figures below are "
            "indicative only.**",
        ]
    gpu_here = bool(result["machine"].get("gpu"))
    lines = [
        "## What you need",
        "",
        *rules,
        "",
        "| cohort | CT slices | disk | RAM (largest process / tree + page cache) | data stages here "
        "(slices..split) | short training + readers here | data stages, GPU server | training + readers, "
        "GPU server |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for name, n in result["needs"].items():
        core_h = f" ({n['data_stages_core_h']} core-h)" if n["data_stages_core_h"] is not None else ""
        here = " + ".join(
            fmt_s(n[key]) if n[key] is not None else "not run" for key in ("short_training_s", "readers_s")
        )
        gpu = here if gpu_here else "not measured on this machine (no GPU)"
        lines.append(
            f"| {name} | {n['ct_slices']:,} | {fmt_bytes(n['disk_bytes']['total'])} | "
            f"{fmt_mib(n['process_mib'])} / {fmt_mib(n['tree_mib'])} + {fmt_mib(n['page_cache_mib'])} = "
            f"{fmt_mib(n['ram_mib'])} | {fmt_s(n['data_stages_s'])}{core_h} | {here} | "
            f"{fmt_s(n['server_data_stages_s'])} | {gpu} |"
        )
    lines += ["", "Disk by folder (extrapolated):", ""]
    keys = list(next(iter(result["needs"].values()))["disk_bytes"])
    lines += [
        "| cohort | " + " | ".join(keys) + " |",
        "| --- | " + " | ".join("---:" for _ in keys) + " |",
        *(
            f"| {name} | " + " | ".join(fmt_bytes(n["disk_bytes"][k]) for k in keys) + " |"
            for name, n in result["needs"].items()
        ),
        "",
    ]
    return lines


def render_page(result: dict) -> str:
    m = result["machine"]
    gpu = ", ".join(m["gpu"]) if m["gpu"] else "none"
    lines = [
        "# Scale benchmark",
        "",
        f"Generated by `scripts/bench_scale.py` on {result['generated']}; do not edit, rerun it "
        "([how](../docs/scaling.md#at-the-size-of-the-real-cohorts)). Memory is private memory (anonymous "
        "pages and swap; memory-mapped file pages excluded) from `/proc/<pid>/smaps_rollup`: a single "
        "process's Anonymous + Swap, and the process tree's Pss_Anon + SwapPss (pages a fork shares counted "
        f"once). Every {int(SAMPLE_S * 1000)} ms the sampler reads each process's counters of the same anonymous "
        "pages (`/proc/<pid>/status`: RssAnon + VmSwap), and smaps_rollup of the whole tree whenever they rise "
        f"{100 * (ROLLUP_RISE - 1):.0f}% above their highest so far, a process starts or ends, and at least every "
        f"{result['runs'][0].get('sampler', {}).get('rollup_every_s', ROLLUP_EVERY_S):g} s (so the tree's "
        "figure may fall short of its peak by that 2%; a single process's takes the counters' peaks too).",
        "",
        "| machine | |",
        "| --- | --- |",
        f"| CPU | {m['cpu']} ({m['cores']} cores, {m['cores_usable']} usable) |",
        f"| memory | {m['memory_gib']} GiB |",
        f"| GPU | {gpu} |",
        f"| platform | {m['platform']}, Python {m['python']} |",
        f"| commit | {m['commit']} |",
        "",
        "```bash",
        result["command"],
        "```",
        "",
    ]
    first = result["runs"][0]
    if not is_tcia_size(first):
        lines += [
            f"**This run is smaller than TCIA's collection ({first['patients']} patients, matrix {first['matrix']}, "
            f"{first['image_size']} px): a trial of the benchmark, not the figures of the real cohorts' size "
            "(`make bench-scale` gives those).**",
            "",
        ]
    if not m["gpu"]:
        lines += ["No GPU on this machine: every time on this page is a CPU time.", ""]
    for run in result["runs"]:
        lines += run_section(run, "Per stage" if len(result["runs"]) == 1 else f"Per stage, {run['patients']} patients")
    lines += growth_section(result) + checks_section(result) + needs_section(result)
    return "\n".join(lines).rstrip() + "\n"


def write_outputs(result: dict, json_path: Path, page_path: Path | None) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    if page_path is not None:
        page_path.parent.mkdir(parents=True, exist_ok=True)
        page_path.write_text(render_page(result))
