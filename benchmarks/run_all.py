"""Run every ``benchmarks/bench_*.py`` and collect their tables in one markdown page.

Quick mode by default (each script's ``--quick``), ``--full`` on request. Each script runs
in its own process (``OMP_NUM_THREADS=1`` unless set); its markdown table lines (``| ... |``)
and the lines right before them are kept. The page is written to
``docs/benchmarks/results.md``, which the documentation includes.

    python benchmarks/run_all.py                    # quick, all scripts
    python benchmarks/run_all.py --full
    python benchmarks/run_all.py --only metrics datasets --timeout 600
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUT = REPO / "docs" / "benchmarks" / "results.md"


def scripts(only=None):
    found = sorted(HERE.glob("bench_*.py"))
    if only:
        wanted = {f"bench_{n.removeprefix('bench_').removesuffix('.py')}.py" for n in only}
        unknown = wanted - {p.name for p in found}
        if unknown:
            raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; have "
                             f"{[p.name for p in found]}")
        found = [p for p in found if p.name in wanted]
    return found


def tables(text):
    """The markdown tables of a script's output, each with its caption line."""
    lines = text.splitlines()
    keep, prev = [], ""
    for i, line in enumerate(lines):
        if line.lstrip().startswith("|"):
            if not (i > 0 and lines[i - 1].lstrip().startswith("|")):
                keep.append("")
                caption = prev.strip().lstrip("#").strip()  # no headings inside a section
                if caption:
                    keep.append(f"**{caption}**" if prev.lstrip().startswith("#") else caption)
                    keep.append("")
            keep.append(line.rstrip())
        else:
            prev = line if line.strip() else prev
    return "\n".join(keep).strip()


def run(path, full, timeout):
    env = {**os.environ}
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MPLBACKEND", "Agg")
    cmd = [sys.executable, str(path), "--full" if full else "--quick"]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout)
        status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
        out = proc.stdout
        err = proc.stderr.strip().splitlines()[-1:] if proc.returncode else []
    except subprocess.TimeoutExpired as exc:
        status, err = f"timed out after {timeout} s", []
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    return status, time.perf_counter() - start, tables(out), err


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full mode of every script")
    parser.add_argument("--only", nargs="+", default=None,
                        help="benchmark names (e.g. metrics datasets)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per script")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown page to write")
    args = parser.parse_args(argv)

    mode = "full" if args.full else "quick"
    found = scripts(args.only)
    sections, summary = [], []
    for path in found:
        print(f"[run_all] {path.name} --{mode} ...", flush=True)
        status, seconds, body, err = run(path, args.full, args.timeout)
        print(f"[run_all] {path.name}: {status} in {seconds:.0f} s", flush=True)
        summary.append(f"| `{path.name}` | {status} | {seconds:.0f} |")
        text = body or "_no table printed_"
        if err:
            text += f"\n\nLast error line: `{err[0][:200]}`"
        sections.append(f"## `{path.name}`\n\n{text}\n")
        pending = [p.name for p in found[len(summary):]]
        write_page(args.out, mode, summary, sections, pending)
    print(f"[run_all] wrote {args.out}")
    return 0 if all("| ok |" in s for s in summary) else 1


def write_page(out, mode, summary, sections, pending=()):
    """Write the results page (after every script, so an interrupted run keeps its part)."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = [
        "# All benchmark results (generated)",
        "",
        f"Written by `python benchmarks/run_all.py{' --full' if mode == 'full' else ''}` on "
        f"{stamp} ({mode} mode, {platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs). Timings come from a shared machine: compare ratios within "
        "a table, not across runs. The topic pages next to this one explain each table.",
        "",
        "| script | status | wall s |",
        "|---|---|---:|",
        *summary,
        *[f"| `{name}` | not run yet | |" for name in pending],
        "",
        *sections,
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(page).rstrip() + "\n")


if __name__ == "__main__":
    sys.exit(main())
