"""Benchmark of the run report's page (not a test; run on demand, after `make train`).

    .venv/bin/python bench/report.py                      # the latest run folder under reports/
    .venv/bin/python bench/report.py --run-dir reports/<run_id>

Re-embeds every PNG of a run folder the way the report does (`html.compact_png`: 256-colour
palette, no dithering, zlib optimised) and prints the plots' bytes before and after, the
seconds it took, and the size of the folder's report.html; the goal for the default book's page
is at most 1.5 MB.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.reporting.html import compact_png  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", type=Path, default=None)
    args = p.parse_args()
    run_dir = args.run_dir or _latest(ROOT / "reports")
    pngs = sorted(run_dir.glob("*.png"))
    if not pngs:
        raise SystemExit(f"no PNG in {run_dir}: run `make train` first")
    raw = [p.read_bytes() for p in pngs]
    start = time.perf_counter()
    small = [compact_png(b) for b in raw]
    seconds = time.perf_counter() - start
    before, after = sum(map(len, raw)), sum(map(len, small))
    print(f"run folder {run_dir}: {len(pngs)} plots")
    print(
        f"plots {before / 1024:.0f} KB -> {after / 1024:.0f} KB ({after / before:.0%}) "
        f"in {seconds:.2f} s ({1000 * seconds / len(pngs):.0f} ms a plot)"
    )
    page = run_dir / "report.html"
    if page.exists():
        print(
            f"report.html {page.stat().st_size / 1024:.0f} KB (goal <= 1500 KB on the default book)"
        )


def _latest(reports: Path) -> Path:
    folders = [p.parent for p in reports.glob("*/report.html")]
    if not folders:
        raise SystemExit(f"no report under {reports}: run `make train` first, or pass --run-dir")
    return max(folders, key=lambda p: (p / "report.html").stat().st_mtime)


if __name__ == "__main__":
    main()
