"""HTML building blocks of the run report: sections, figures, tables, cells, the page's CSS.

Tables drop columns named like personal data (`PERSONAL_COLUMNS`) whatever table they come
from, and every cell is escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.core.io import spreadsheet_text

# Never rendered, whatever table they turn up in: the customer table's personal fields.
PERSONAL_COLUMNS = frozenset(
    {
        "birth_year",
        "annual_income",
        "name",
        "first_name",
        "last_name",
        "email",
        "phone",
        "address",
        "date_of_birth",
        "gender",
        "sex",
        "personal_status_and_sex",
    }
)


LIGHTS = ("green", "amber", "red")


# -- helpers -------------------------------------------------------------------------------------
def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{body}</section>'


def figure(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def caption(name: str) -> str:
    return Path(name).stem.replace("_", " ").capitalize() + "."


def read_csv(path: Path) -> pd.DataFrame | None:
    """A table a stage wrote with `core.io.write_csv`, its text as the stage had it."""
    if not path.exists():
        return None
    df = pd.read_csv(path)
    return df.assign(**{c: spreadsheet_text(df[c]) for c in df.columns})


def table(
    df: pd.DataFrame,
    cols: Iterable[str] | None = None,
    pct: Iterable[str] = (),
    lights: Iterable[str] = (),
) -> str:
    """An HTML table of an aggregate frame; every cell escaped; personal columns dropped.

    pct: columns shown as percentages; lights: columns of traffic lights (green, amber, red),
    coloured as such."""
    if cols is not None:
        df = df[[c for c in cols if c in df.columns]]
    df = df[[c for c in df.columns if str(c).lower() not in PERSONAL_COLUMNS]]
    pct, lights = set(pct), set(lights)
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for c, v in zip(df.columns, row, strict=True):
            text = percent(v) if c in pct else cell(v)
            cls = ' class="n"' if is_number(v) else ""
            if c in lights and v in LIGHTS:
                cls = f' class="light-{v}"'
            cells.append(f"<td{cls}>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def number(text: str) -> Any:
    """An MLflow param (always a string) as the number it holds, when it holds one."""
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            continue
    return text


def percent(v: Any) -> str:
    if v is None or not is_number(v) or v != v:
        return cell(v)
    return f"{v:.2%}"


def fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "-" if x != x else f"{x:.{digits}f}"


def esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:24px auto;
padding:0 16px;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:4px}h2{border-bottom:2px solid #4477aa;padding-bottom:3px;
margin-top:36px}h3{margin-top:20px;font-size:1.05em}
.meta{color:#666;font-size:.9em}code{background:#f3f3f3;padding:0 3px;border-radius:3px}
.kpis{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}.kpi{border:1px solid #ddd;
border-radius:6px;padding:8px 14px;min-width:110px}.kpi .v{font-size:1.3em;font-weight:600}
.kpi .k{color:#666;font-size:.85em}.lead{font-size:1.08em}
.caveat{background:#fff7e0;border-left:4px solid #e0a800;padding:8px 12px}
.warn{background:#fdecea;border-left:4px solid #cc3311;padding:8px 12px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:.85em}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f0f4f8}
td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:14px 0}figure img{max-width:min(100%,760px);border:1px solid #eee}
figcaption{color:#555;font-size:.88em}footer{margin-top:40px;color:#888;font-size:.8em}
td.light-green{background:#e3f4e3}td.light-amber{background:#fff1cc}
td.light-red{background:#f9d6d2;font-weight:600}
"""
