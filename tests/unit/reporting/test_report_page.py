"""The report page's own rules on small inputs: the table of contents, booleans and whole
numbers as a reader says them, the model by name and version, the purge gap in rows, the causal
caveat and its link only where they apply, and the embedded PNGs' compression."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from pipeline.core import catalogue
from pipeline.reporting import html as h
from pipeline.reporting.inputs import ReportInputs, plot_place
from pipeline.reporting.page import render

DATES = {
    "train": ["2021-01-01", "2022-04-01"],
    "valid": ["2023-04-01", "2023-07-01"],
    "test": ["2023-10-01", "2024-01-01"],
}


def _plot_png(points: int = 400) -> bytes:
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    ax.scatter(rng.normal(size=points), rng.normal(size=points), c=rng.uniform(size=points))
    ax.set_title("a scatter with a colour scale")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def _inputs(tmp_path, **kw) -> ReportInputs:
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    base = dict(
        run_id="r1",
        run_dir=run_dir,
        latest={"model_version": 3, "model_uri": "models:/m-4c08abc", "decision": {}},
        metrics={
            "split_kind": "out_of_time",
            "split_dates": DATES,
            "splits": {"train": {"n": 600}, "valid": {"n": 150}, "test": {"n": 250}},
        },
        gap_months=12,
        labelled_rows=1300,
    )
    base.update(kw)
    return ReportInputs(**base)


def _write(run_dir, name: str, frame: pd.DataFrame) -> None:
    frame.to_csv(run_dir / f"{name}.csv", index=False)


def _rel() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rank": [1],
            "feature": ["tenure_months"],
            "description": ["Months since the relationship began"],
            "share": [0.2],
            "direction": ["lowers"],
            "expected": ["lowers"],
            "agrees": [True],
            "constrained": [False],
        }
    )


def test_cells_say_yes_no_and_whole_numbers_without_decimals():
    assert [h.cell(v) for v in (True, False, "True", "false")] == ["yes", "no", "yes", "no"]
    assert h.number("119.0") == 119 and isinstance(h.number("119.0"), int)
    assert h.number("0.25") == 0.25 and h.number("gbdt") == "gbdt"
    table = h.table(pd.DataFrame({"agrees": [True, False], "n": [1, 2]}))
    assert ">yes<" in table and ">no<" in table and "True" not in table


def test_every_section_is_in_the_contents_and_every_link_has_its_target(tmp_path):
    page = render(_inputs(tmp_path, run_params={"best_min_child_samples": "285.0"}))
    ids = re.findall(r'<section id="([^"]+)"', page)
    links = re.findall(r'<a href="#([^"]+)"', page)
    assert ids and links == ids  # the contents list every section, in page order
    assert ">285<" in page and "285.0" not in page  # a whole-number parameter as an int


def test_the_model_is_named_by_registry_name_and_version(tmp_path):
    page = render(_inputs(tmp_path, model_name="loanrisk"))
    assert "loanrisk v3" in page and "models:/loanrisk/3" in page
    assert "models:/m-4c08abc" not in page


def test_the_purge_gap_is_explained_with_its_dates_and_rows(tmp_path):
    page = render(_inputs(tmp_path))
    assert "Training ends at 2022-04-01 and validation starts at 2023-04-01" in page
    assert "12-month purge gap" in page
    assert "<b>1,000 of the 1,300</b> labelled rows are used (300 left out, 23%)" in page
    random = render(_inputs(tmp_path, metrics={"split_kind": "random", "splits": {}}))
    assert "purge gap" not in random
    # A prepared table split by its time column has no gap unless configured: say so.
    none = render(_inputs(tmp_path, gap_months=0, labelled_rows=None))
    assert "with no purge gap (<code>split.gap_months</code> 0)" in none
    assert "0-month" not in none


def test_caveat_mentions_crm_only_with_relationship_data_and_links_only_to_a_study(tmp_path):
    # SHAP tables without relationship factors: a table without CRM data (German Credit).
    (tmp_path / "run").mkdir()
    _write(tmp_path / "run", catalogue.SHAP_IMPORTANCE, _rel().assign(family="customer_loan"))
    bare = render(_inputs(tmp_path))
    assert "what the model uses, not what causes default" in bare
    assert "Lenders contact risky customers" not in bare
    _write(tmp_path / "run", catalogue.RELATIONSHIP_FACTORS, _rel())
    _write(
        tmp_path / "run",
        catalogue.TRUTH_RECOVERY,
        pd.DataFrame({"effect": ["tenure"], "matches": [True], "verdict": ["recovered"]}),
    )
    crm = render(_inputs(tmp_path))
    assert "Lenders contact risky customers" in crm
    assert "#effect-study" not in crm and "effect_study" not in crm  # no study, no pointer
    assert "<code>loanrisk effects</code>" in crm

    effects = tmp_path / "effects"
    effects.mkdir()
    (effects / catalogue.EFFECTS_HTML).write_text(
        '<section id="effects"><h2>Relationship effect study</h2></section>'
    )
    studied = render(_inputs(tmp_path, effects_dir=effects))
    assert 'href="#effect-study">relationship effect study</a>' in studied
    assert 'id="effect-study"' in studied


def test_dependence_plots_sit_in_a_closed_grid_of_their_own_section(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("tenure_months", "nps_last"):
        (run_dir / catalogue.shap_dependence_png(name)).write_bytes(_plot_png(50))
    assert plot_place(catalogue.shap_dependence_png("nps_last")) == ("dependence", "nps_last")
    page = render(_inputs(tmp_path))
    section = page[page.index('<section id="dependence">') :]
    section = section[: section.index("</section>")]
    assert "<details><summary>Show the 2 dependence plots</summary>" in section
    assert section.count("<img ") == 2 and 'class="grid"' in section
    assert "More plots" not in page


def test_compact_png_keeps_the_picture_in_a_third_of_the_bytes():
    png = _plot_png()
    small = h.compact_png(png)
    assert len(small) < len(png) / 2
    before, after = Image.open(io.BytesIO(png)), Image.open(io.BytesIO(small))
    assert after.size == before.size and after.mode == "P"
    # Quantised, not blurred: the picture differs from the original by little on average.
    a = np.asarray(before.convert("RGB"), dtype=float)
    b = np.asarray(after.convert("RGB"), dtype=float)
    assert np.abs(a - b).mean() < 2.0


def test_sentence_columns_keep_their_width_and_wide_tables_scroll_in_their_box():
    frame = pd.DataFrame({"effect": ["x"], "verdict": ["a long sentence " * 5]})
    table = h.table(frame, wide=["verdict"])
    assert table.startswith('<div class="table">') and '<td class="wide">' in table
    assert "div.table{max-width:100%;overflow-x:auto}" in h.CSS


def test_the_answer_says_which_test_rows_the_shap_tables_read(tmp_path):
    from pipeline.reporting.page import _shap_rows

    sampled = _inputs(tmp_path, run_metrics={"explain_rows": 100.0})
    assert "a random sample of 100 of the 250 test rows" in _shap_rows(sampled)
    assert "explain.max_rows" in _shap_rows(sampled)
    whole = _inputs(tmp_path, run_metrics={"explain_rows": 250.0})
    assert _shap_rows(whole) == "<p>Mean |SHAP| over the 250 test rows.</p>"
    assert _shap_rows(_inputs(tmp_path)) == ""  # a run explained before the metric existed


def test_a_column_format_overrides_the_default_precision_but_not_missing_cells():
    frame = pd.DataFrame({"loss avoided": [25360.847, None], "pp": [-0.29614, 1.5]})
    table = h.table(frame, formats={"loss avoided": "{:,.0f}".format})
    assert '<td class="n">25,361</td>' in table and "25360.8" not in table
    assert "<td>-0.2961</td>" in table.replace(' class="n"', "")  # the default elsewhere
    assert table.count("<td></td>") + table.count('<td class="n"></td>') == 1  # NaN stays blank


def test_the_effect_study_policy_table_reads_as_money_and_counts():
    from types import SimpleNamespace

    from pipeline.effects.policy import PolicyReplay
    from pipeline.effects.report import _policy_html

    table = pd.DataFrame(
        {"policy": ["recommended"], "contacts": [500], "loss_avoided": [25360.847]}
    )
    replay = PolicyReplay(table, pd.DataFrame({"lever": ["reminder"], "qini": [0.0123]}))
    html_text = "".join(_policy_html(SimpleNamespace(policy=replay)))
    assert ">25,361<" in html_text and ">loss avoided<" in html_text
    assert ">500<" in html_text and ">0.0123<" in html_text


def test_the_constraints_cost_names_the_rows_of_a_sampled_pair(tmp_path):
    params = {"best_monotone_constraints_method": "advanced"}
    # train_result.json names the pair's rows as null when every row was tuned on
    whole = {"test_auc": 0.84, "test_auc_unconstrained": 0.845, "constraints_pair_rows": None}
    page = render(
        _inputs(tmp_path, run_params=params, latest={**_inputs(tmp_path).latest, **whole})
    )
    assert "vs without 0.8450 (uncalibrated refit with the same parameters)" in page
    assert "test AUC with constraints" in page and "refit on" not in page
    pair = {**whole, "test_auc_constrained_refit": 0.838, "constraints_pair_rows": 99_873.0}
    page = render(_inputs(tmp_path, run_params=params, latest={**_inputs(tmp_path).latest, **pair}))
    assert "0.8380 vs without 0.8450 (two uncalibrated refits" in page
    assert "tuning sample of 99,873 training rows" in page
    assert "test AUC with constraints (refit on 99,873 rows)" in page
