"""The run report: one self-contained HTML page per run, from the CLI on a tiny book."""

from __future__ import annotations

import html
import json
import re

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.reporting import html as report_html
from pipeline.reporting.inputs import ReportInputs
from pipeline.reporting.page import render, with_effect_study
from tests.helpers import latest_train_result, tiny_overrides

runner = CliRunner()
SECTIONS = (
    "Which relationship factors reduce default?",
    "Data",
    "Model performance",
    "Gains, lift and calibration",
    "Segments (test split)",
    "Validation: calibration, uncertainty, time",
    "Population stability (PSI)",
    "Tuning",
    "Promotion decision",
)
# Values planted in the input customers: they must never reach the report.
SENTINEL_BIRTH_YEAR = 1917
SENTINEL_INCOME = 918273.64


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def _opts(overrides: list[str]) -> list[str]:
    return [x for o in overrides for x in ("-o", o)]


def _text_without_images(page: str) -> str:
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,", page)


def _occurs(value: str, text: str) -> bool:
    """`value` as a whole number in `text` (not inside a longer number, id or hash)."""
    return re.search(rf"(?<![\w.,]){re.escape(value)}(?![\w]|[.,]\d)", text) is not None


@pytest.mark.training
def test_run_writes_a_self_contained_report_then_train_prints_a_summary(tmp_path):
    ov = _opts([*tiny_overrides(tmp_path, trials=2), "explain.stability_refits=2"])
    _invoke("generate", *ov)
    customers_path = tmp_path / "raw" / "customers.parquet"
    customers = pd.read_parquet(customers_path)
    customers.loc[:19, "birth_year"] = SENTINEL_BIRTH_YEAR
    customers.loc[:19, "annual_income"] = SENTINEL_INCOME
    customers.to_parquet(customers_path, index=False)

    result = _invoke("run", *ov)
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    run_id = metrics["run_id"]
    path = tmp_path / "reports" / run_id / "report.html"
    assert str(path) in result.output
    page = path.read_text()

    for heading in SECTIONS:
        assert f">{heading}</h2>" in page, heading
    pngs = list((tmp_path / "reports" / run_id).glob("*.png"))
    assert len(pngs) >= 6
    # every PNG of the run folder plus the two tuning plots from MLflow
    assert page.count('src="data:image/png;base64,') >= len(pngs) + 1
    assert not re.search(r'(src|href)="(?!data:|#)', page), "no external asset"
    assert f"{metrics['test']['auc']:.4f}" in page
    assert f"{metrics['oracle_auc']:.4f}" in page and f"{metrics['baseline_auc']:.4f}" in page
    # The customer-disjoint view beside the out-of-time AUC.
    unseen = metrics["unseen_customers"]
    assert 0 < unseen["n"] < metrics["test"]["n"]
    assert "Test AUC on customers unseen in training" in page
    assert f"<b>{unseen['auc']:.4f}</b>, against {metrics['test']['auc']:.4f}" in page
    assert "what the model uses, not what causes default" in page
    # The validation section: the overall calibration test, coloured, and the intervals.
    cal, (lo, hi) = metrics["calibration"], metrics["intervals"]["auc"]
    assert f"O/E <b>{cal['o_e']:.3f}</b>" in page
    assert f'<td class="light-{cal["light"]}">{cal["light"]}</td>' in page
    assert f"AUC {metrics['test']['auc']:.4f} [{lo:.4f}, {hi:.4f}]" in page
    assert "performance_over_time" not in page  # a known plot: captioned, not "More plots"
    assert "out of time" in page and "The split is random" not in page
    # The simulated book's truth table; under monotone constraints a direction is imposed, and
    # the page says so rather than counting it as found.
    assert "Planted effects vs what the model found" in page and "recovers <b>" in page
    assert "direction imposed by a monotone constraint" in page
    assert "A <i>constrained</i> factor" in page
    assert "<i>stable_share</i>: the share of refits" in page

    text = _text_without_images(page)
    assert not _occurs(str(SENTINEL_BIRTH_YEAR), text)
    assert "918273" not in text and "918,273" not in text
    for year in customers["birth_year"].dropna().astype(int).unique():
        assert not _occurs(str(year), text), f"birth year {year} in the report"
    for income in customers["annual_income"].dropna().unique()[:200]:
        for form in (f"{income:.2f}", f"{income:.4f}", f"{income:,.0f}"):
            assert not _occurs(form, text), f"income {form} in the report"

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns.db'}")
    logged = [a.path for a in MlflowClient().list_artifacts(run_id, "report")]
    assert logged == ["report/model_card.md", "report/report.html"]
    # The model card: in the run folder and as the registered version's description.
    card = (tmp_path / "reports" / run_id / "model_card.md").read_text()
    version = json.loads((tmp_path / "reports" / run_id / "train_result.json").read_text())
    assert card.startswith(f"# Model card: loanrisk v{version['model_version']}")
    for heading in ("Intended use", "Default definition", "Calibration", "Challengers"):
        assert f"\n## {heading}\n" in card, heading
    assert "90+ days past due" in card and "No materiality threshold" in card
    assert f"- AUC {metrics['test']['auc']:.4f} [{lo:.4f}, {hi:.4f}]" in card
    assert "| dpd_now | rises |" in card  # a constrained feature and its direction
    described = MlflowClient().get_model_version("loanrisk", version["model_version"])
    assert described.description == card
    assert not _occurs(str(SENTINEL_BIRTH_YEAR), card)
    # Stability: the score's PSI and the feature that moved the score most (CSI) in both
    assert "\n## Stability (train vs test)\n" in card and "- PSI of the score " in card
    csi = pd.read_csv(tmp_path / "reports" / run_id / "csi_train_test.csv")
    assert f"| {csi['feature'].iloc[0]} |" in card
    assert "Characteristic stability (CSI)" in page and csi["feature"].iloc[0] in page

    # `loanrisk train` alone ends with its summary table; `loanrisk report` renders that run.
    out = _invoke("train", *ov).output
    for row in ("train rows", "valid rows", "test rows", "valid AUC", "test AUC", "calibration"):
        assert row in out, row
    assert "champion" in out and "seconds" in out
    latest = latest_train_result(tmp_path)
    assert f"{latest['test_auc']:.4f}" in out
    out = _invoke("report", *ov).output
    second = tmp_path / "reports" / latest["run_id"] / "report.html"
    assert str(second) in out
    page2 = second.read_text()
    assert html.escape(latest["decision"]["reason"]) in page2
    assert "champion before" in page2 and ">1<" in page2  # the first run's version


def test_table_drops_personal_columns_and_escapes_cells():
    df = pd.DataFrame({"region": ["<b>north</b>"], "birth_year": [1980], "auc": [0.71234]})
    out = report_html.table(df)
    assert "birth_year" not in out and "1980" not in out
    assert "&lt;b&gt;north&lt;/b&gt;" in out and "<b>" not in out
    assert "0.7123" in out


def _png(path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    FigureCanvasAgg(fig)
    fig.add_subplot().plot([0, 1], [0, 1])
    fig.savefig(path, format="png")


def test_render_embeds_effects_section_and_any_extra_plot(tmp_path):
    run_dir = tmp_path / "reports" / "abc123"
    run_dir.mkdir(parents=True)
    _png(run_dir / "shap_dependence_tenure_months.png")  # a factor's dependence plot
    _png(run_dir / "odd_plot.png")  # a plot the report does not know
    effects = tmp_path / "reports" / "effects"
    effects.mkdir()
    (effects / "effects.html").write_text(
        '<section id="effects"><h2>Relationship effect study</h2><p>checkin: -1.20 pp</p></section>'
    )
    _png(effects / "forest.png")
    inputs = ReportInputs(
        run_id="abc123",
        run_dir=run_dir,
        latest={"test_auc": 0.7321, "decision": {"promoted": False, "reason": "kept v3"}},
        metrics={"split_kind": "random", "splits": {}},
        effects_dir=effects,
    )
    page = render(inputs)
    assert ">More plots</h2>" in page and "Odd plot." in page
    assert "tenure_months: SHAP against its value." in page
    assert "checkin: -1.20 pp" in page
    assert page.index('id="promotion"') < page.index('id="effects"')
    assert page.count("data:image/png;base64,") == 3
    assert "0.7321" in page and "kept v3" in page and "NOT promoted" in page
    assert "No SHAP tables" in page  # explain has not run: say so instead of failing
    assert "The split is random" in page


def test_truth_table_gains_the_effect_study_estimate_of_each_lever(tmp_path):
    truth = pd.DataFrame(
        {"effect": ["payment_reminder", "tenure"], "lever": ["payment_reminder", None]}
    )
    assert with_effect_study(truth, None) is truth  # no study yet: the table as it was
    pd.DataFrame(
        {
            "lever": ["payment_reminder"],
            "ate_pp": [-0.06],
            "ci_low_pp": [-0.42],
            "ci_high_pp": [0.3],
            "true_effect_pp": [-0.14],
        }
    ).to_csv(tmp_path / "effects.csv", index=False)
    out = with_effect_study(truth, tmp_path).set_index("effect")["effect_study"]
    assert out["payment_reminder"] == "-0.06 pp [-0.42, +0.30], truth -0.14"
    assert out["tenure"] == ""  # not a lever
