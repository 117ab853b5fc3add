"""``python -m bench``: run every benchmark, each in a process of its own, and write RESULTS.md.

``python -m bench [--only NAME ...] [--quick] [--results PATH]``. A benchmark that fails or hangs
(``--timeout`` seconds) records its error in RESULTS.md; the others still run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

#: (module, title), in the order they run and appear.
BENCHMARKS = [
    ("loop", "Execution loop: submit -> started"),
    ("notebook", "Notebook steps: warm kernel pool, cold start, bare papermill"),
    ("scheduler", "The same notebook through jupyter-scheduler"),
    ("logs", "Live logs: printed -> seen by 20 viewers at 1,000 lines/s"),
    ("dispatch", "Dispatch: no-op executions per second, submit -> complete"),
    ("api", "API: GET /api/v0/executions/{id}/ against a bare Tornado handler"),
    ("store", "100,000 executions stored: list and filter"),
    ("artifacts", "Artifacts: repeated inputs, 200 MB output upload to S3"),
]


def _run_one(name: str, quick: bool, timeout: float) -> dict[str, Any]:
    fd, out = tempfile.mkstemp(prefix=f"vh-bench-{name}-", suffix=".json")
    os.close(fd)
    argv = [sys.executable, "-m", f"bench.{name}", "--out", out, *(["--quick"] if quick else [])]
    path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    start = time.perf_counter()
    print(f"== {name}", flush=True)
    try:
        proc = subprocess.run(argv, cwd=ROOT, env=env, timeout=timeout, check=False)
        code: int | str = proc.returncode
    except subprocess.TimeoutExpired:
        code = f"timed out after {timeout:.0f} s"
    result: dict[str, Any] = {"name": name, "figures": [], "notes": [], "error": ""}
    try:
        with open(out) as f:
            result = json.load(f)
    except (OSError, ValueError):
        result["error"] = f"the benchmark wrote no results (exit: {code})"
    finally:
        os.unlink(out)
    if code != 0 and not result.get("error"):
        result["error"] = f"exit {code}"
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if value != value:  # nan
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _derived(results: dict[str, dict[str, Any]]) -> None:
    """Ratios across benchmarks measured in the same run (jupyter-scheduler vs ours)."""
    sched = results.get("scheduler")
    nb = results.get("notebook")
    if not sched or not nb or sched.get("error") or nb.get("error"):
        return
    figures = sched["figures"]
    theirs = next((f for f in figures if f["metric"].startswith("jupyter-scheduler")), None)
    if theirs is None:
        return
    for label, target in (("cold (no pool)", 4.0), ("warm pool", 10.0)):
        ours = next(
            (f for f in nb["figures"] if f["metric"].startswith(f"{label}: submit -> complete")),
            None,
        )
        if ours is None or not ours["value"]:
            continue
        ratio = theirs["value"] / ours["value"]
        sched["figures"].append(
            {
                "metric": f"ours, {label}: submit -> complete p50 (from the notebook benchmark)",
                "value": ours["value"],
                "unit": "ms",
                "target": f">= {target:g}x faster than jupyter-scheduler",
                "met": ratio >= target,
                "baseline": "jupyter-scheduler submit -> complete p50",
                "baseline_value": theirs["value"],
                "ratio": ratio,
                "ratio_target": f">= {target:g}x faster",
            }
        )


def write_results(path: str, results: list[dict[str, Any]], total: float, quick: bool) -> None:
    by_name = {r["name"]: r for r in results}
    _derived(by_name)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    try:
        load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "n/a"
    lines = [
        "# Benchmark results",
        "",
        f"Written by `python -m bench{' --quick' if quick else ''}` on {now}; the whole run took "
        f"{total / 60:.1f} min. Machine: {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; load average at the end "
        f"{load}. Every baseline was measured in this same run on this same machine.",
        "",
        "How each figure is measured, and what explains it: docs/performance.md.",
        "",
        "| benchmark | figure | value | target | met | baseline | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    titles = dict(BENCHMARKS)
    for result in results:
        title = titles.get(result["name"], result["name"])
        if result.get("error") and not result["figures"]:
            lines.append(f"| {title} | **failed** | | | | | |")
        for fig in result["figures"]:
            met = {True: "yes", False: "**no**", None: ""}[fig.get("met")]
            base = ""
            if fig.get("baseline"):
                base = f"{fig['baseline']}: {_fmt(fig.get('baseline_value'))} {fig['unit']}"
            ratio = ""
            if fig.get("ratio") is not None:
                ratio = f"{_fmt(fig['ratio'])}" + (
                    f" (target {fig['ratio_target']})" if fig.get("ratio_target") else ""
                )
            lines.append(
                f"| {title} | {fig['metric']} | {_fmt(fig['value'])} {fig['unit']} | "
                f"{fig.get('target', '')} | {met} | {base} | {ratio} |"
            )
    lines += ["", "## Notes and errors", ""]
    for result in results:
        title = titles.get(result["name"], result["name"])
        lines.append(f"### {title} ({result.get('seconds', 0):.0f} s)")
        lines.append("")
        for note in result.get("notes", []):
            lines.append(f"- {note}")
        if result.get("error"):
            lines += ["- **error:**", "", "```", result["error"].strip(), "```"]
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description="Run every benchmark; write bench/RESULTS.md.")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per benchmark")
    parser.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    args = parser.parse_args()
    names = [n for n, _ in BENCHMARKS if not args.only or n in args.only]
    unknown = set(args.only or []) - {n for n, _ in BENCHMARKS}
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    start = time.perf_counter()
    results = [_run_one(name, args.quick, args.timeout) for name in names]
    total = time.perf_counter() - start
    write_results(args.results, results, total, args.quick)
    print(f"wrote {args.results} ({total / 60:.1f} min)")


if __name__ == "__main__":
    main()
