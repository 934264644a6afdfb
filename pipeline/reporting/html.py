"""HTML building blocks of the run report: sections, figures, tables, cells, the page's CSS.

Tables drop columns named like personal data (`PERSONAL_COLUMNS`) whatever table they come
from, and every cell is escaped. Figures are embedded as palette PNGs (`compact_png`): a
matplotlib plot has few colours, and 256 of them keep it exact to the eye at a third of the
bytes, which keeps the default book's page mailable.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

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


# Colours of an embedded figure's palette; shap's colour bars are the only gradients, and their
# banding at 256 levels is invisible.
PALETTE_COLOURS = 256


@dataclass(frozen=True)
class Section:
    """One section of the page: its anchor (`id`), its title (also the table of contents' entry)
    and its HTML body. `html` is the whole element, for a fragment that brings its own
    `<section>` (the effect study's)."""

    id: str
    title: str
    body: str = ""
    html: str = ""

    def render(self) -> str:
        if self.html:
            return self.html
        return f'<section id="{esc(self.id)}"><h2>{esc(self.title)}</h2>{self.body}</section>'


def section(anchor: str, title: str, body: str) -> Section:
    return Section(anchor, title, body)


def contents(sections: Iterable[Section]) -> str:
    """The table of contents: a link to every section, in page order."""
    items = "".join(f'<li><a href="#{esc(s.id)}">{esc(s.title)}</a></li>' for s in sections)
    return f'<nav id="contents" aria-label="Contents"><b>Contents</b><ol>{items}</ol></nav>'


def collapsed(summary: str, body: str, open_: bool = False) -> str:
    """`body` behind a disclosure the reader opens: long tables and plot sets."""
    flag = " open" if open_ else ""
    return f"<details{flag}><summary>{esc(summary)}</summary>{body}</details>"


def figure(png: bytes, caption: str) -> str:
    data = base64.b64encode(compact_png(png)).decode("ascii")
    return (
        f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def grid(figures: Iterable[str]) -> str:
    """Figures side by side, as many per row as fit (two at 1280 px)."""
    return f'<div class="grid">{"".join(figures)}</div>'


def compact_png(png: bytes) -> bytes:
    """`png` as a palette PNG of PALETTE_COLOURS colours without dithering (text stays crisp),
    or unchanged when that is not smaller."""
    with Image.open(io.BytesIO(png)) as img:
        rgb = img.convert("RGB")  # our figures are opaque: alpha only costs bytes
    quantised = rgb.quantize(
        PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    out = io.BytesIO()
    quantised.save(out, format="PNG", optimize=True)
    small = out.getvalue()
    return small if len(small) < len(png) else png


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
    wide: Iterable[str] = (),
    formats: Mapping[str, Callable[[Any], str]] | None = None,
) -> str:
    """An HTML table of an aggregate frame; every cell escaped; personal columns dropped.

    pct: columns shown as percentages; lights: columns of traffic lights (green, amber, red),
    coloured as such; wide: columns of sentences, kept wide enough to read; formats: column ->
    how its (non-missing) values are written, where the default precision does not suit. A
    table wider than the page scrolls inside its own box, never the page."""
    if cols is not None:
        df = df[[c for c in cols if c in df.columns]]
    df = df[[c for c in df.columns if str(c).lower() not in PERSONAL_COLUMNS]]
    pct, lights = set(pct), set(lights)
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    wide = set(wide)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for c, v in zip(df.columns, row, strict=True):
            if formats and c in formats and cell(v) != "":
                text = formats[c](v)
            else:
                text = percent(v) if c in pct else cell(v)
            cls = ' class="n"' if is_number(v) else ""
            if c in lights and v in LIGHTS:
                cls = f' class="light-{v}"'
            elif c in wide:
                cls = ' class="wide"'
            cells.append(f"<td{cls}>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    rows = "".join(body)
    return (
        f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>'
        "</table></div>"
    )


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, bool) or str(v) in BOOLEAN_TEXT:
        return BOOLEAN_TEXT[str(v)]
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


# Booleans as a reader says them; a CSV read back gives them as text.
BOOLEAN_TEXT = {"True": "yes", "False": "no", "true": "yes", "false": "no"}


def number(text: str) -> Any:
    """An MLflow param (always a string) as the number it holds, when it holds one; a whole
    number as an int, however it was written ("119.0")."""
    for kind in (int, float):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            continue
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            return int(value)
        return value
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
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1140px;
margin:24px auto;padding:0 16px;color:#222;line-height:1.45}
nav#contents{border:1px solid #ddd;border-radius:6px;padding:8px 14px;margin:14px 0;
background:#fafbfc}nav#contents ol{columns:2;margin:4px 0;padding-left:22px}
nav#contents a{text-decoration:none;color:#2b5d9c}
details{margin:10px 0}summary{cursor:pointer;color:#2b5d9c;font-weight:600}
div.table{max-width:100%;overflow-x:auto}td.wide{min-width:20em}
pre{white-space:pre-wrap;overflow-wrap:anywhere}
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
figure{margin:14px 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:8px 16px}
.grid figure{margin:4px 0}
figcaption{color:#555;font-size:.88em}footer{margin-top:40px;color:#888;font-size:.8em}
td.light-green{background:#e3f4e3}td.light-amber{background:#fff1cc}
td.light-red{background:#f9d6d2;font-weight:600}
"""
