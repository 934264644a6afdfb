"""The effect study's outputs: its files in the reports folder and its MLflow run.

    reports/effects/   effects.csv, tiers.csv, overlap.csv, effects.json, effects.html,
                       forest.png, overlap.png (names from `pipeline.core.catalogue`)
    MLflow "effects"   params, per-lever metrics, the three tables, the figures, the CSV and HTML
                       files and the summary text, under the `effects/` artefact folder

The summary and the HTML section come from `pipeline.effects.report`, the figures from
`pipeline.plotting.effects`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure

from pipeline.config import MlflowConfig
from pipeline.core import catalogue
from pipeline.core.io import write_csv, write_json, write_text
from pipeline.core.publish import publish_set
from pipeline.effects.heterogeneity import LinearCate, cate_table
from pipeline.effects.report import html_section, summary_text
from pipeline.effects.schema import EffectStudy
from pipeline.plotting.effects import forest_plot, overlap_plot, qini_plot
from pipeline.runs import tracking


@dataclass
class StudyOutputs:
    """What `write_results` wrote: the summary text, the files by catalogue name, the figures."""

    summary: str
    files: dict[str, Path]
    figures: dict[str, Figure]


def write_results(study: EffectStudy, out_dir: Path, truth_note: str = "") -> StudyOutputs:
    """Write the study's tables (CSV), the JSON document, the HTML section and the two figures
    to `out_dir`, published as one set (`pipeline.core.publish`): a killed study leaves the
    previous files, never a table that disagrees with its plot or the report's section."""
    table = study.table
    summary = summary_text(study, truth_note=truth_note)
    figures = {
        catalogue.FOREST_PNG: forest_plot(table),
        catalogue.OVERLAP_PNG: overlap_plot(study.rows, study.config.propensity_bounds),
    }
    if study.policy is not None:
        figures[catalogue.QINI_PNG] = qini_plot(study.policy.curves)
    with publish_set(out_dir, "effects") as out:
        files = {
            catalogue.EFFECTS_CSV: write_csv(table, out.path(catalogue.EFFECTS_CSV)),
            catalogue.EFFECTS_TIERS_CSV: write_csv(
                study.tiers, out.path(catalogue.EFFECTS_TIERS_CSV)
            ),
            catalogue.EFFECTS_OVERLAP_CSV: write_csv(
                study.overlap, out.path(catalogue.EFFECTS_OVERLAP_CSV)
            ),
            catalogue.EFFECTS_JSON: write_json(
                {
                    "summary": summary,
                    "snapshots": [str(s) for s in study.snapshots],
                    "customers": study.customers,
                    "customers_in_book": study.customers_in_book,
                    "config": study.config.model_dump(mode="json"),
                    "effects": _records(table),
                    "tiers": _records(study.tiers),
                    "overlap": _records(study.overlap),
                    "truth_note": truth_note,
                    "policy": _policy_doc(study),
                },
                out.path(catalogue.EFFECTS_JSON),
            ),
            catalogue.EFFECTS_HTML: write_text(
                html_section(study), out.path(catalogue.EFFECTS_HTML)
            ),
            catalogue.EFFECTS_CATE_CSV: write_csv(
                cate_table([LinearCate(**c) for c in study.cate], study.config.alpha),
                out.path(catalogue.EFFECTS_CATE_CSV),
            ),
            catalogue.EFFECTS_CATE_JSON: write_json(
                {"alpha": study.config.alpha, "levers": with_verdicts(study)},
                out.path(catalogue.EFFECTS_CATE_JSON),
            ),
        }
        if study.policy is not None:
            files[catalogue.EFFECTS_POLICY_CSV] = write_csv(
                study.policy.table, out.path(catalogue.EFFECTS_POLICY_CSV)
            )
            files[catalogue.EFFECTS_QINI_CSV] = write_csv(
                study.policy.qini, out.path(catalogue.EFFECTS_QINI_CSV)
            )
        for name, fig in figures.items():
            fig.savefig(out.path(name), format="png", dpi=110, bbox_inches="tight")
            files[name] = out.path(name)
    return StudyOutputs(summary, {k: out.final(p) for k, p in files.items()}, figures)


def log_results(study: EffectStudy, outputs: StudyOutputs, mlflow_cfg: MlflowConfig) -> None:
    """Log the study to a new MLflow run named "effects" in the configured experiment."""
    folder = catalogue.ARTEFACT_EFFECTS
    tracking.setup(mlflow_cfg)
    with mlflow.start_run(run_name="effects"):
        mlflow.set_tag("stage", "effects")
        mlflow.log_params(_flat_params(study))
        mlflow.log_metrics(_metrics(study.table))
        mlflow.log_table(study.table, f"{folder}/{catalogue.EFFECTS_JSON}")
        mlflow.log_table(study.tiers, f"{folder}/{catalogue.EFFECTS_TIERS_JSON}")
        mlflow.log_table(study.overlap, f"{folder}/{catalogue.EFFECTS_OVERLAP_JSON}")
        for name, fig in outputs.figures.items():
            mlflow.log_figure(fig, f"{folder}/{name}")
        for name in (
            catalogue.EFFECTS_CSV,
            catalogue.EFFECTS_TIERS_CSV,
            catalogue.EFFECTS_OVERLAP_CSV,
            catalogue.EFFECTS_HTML,
            catalogue.EFFECTS_CATE_CSV,
            catalogue.EFFECTS_CATE_JSON,
            catalogue.EFFECTS_POLICY_CSV,
            catalogue.EFFECTS_QINI_CSV,
        ):
            if name in outputs.files:
                mlflow.log_artifact(str(outputs.files[name]), folder)
        mlflow.log_text(outputs.summary, f"{folder}/{catalogue.EFFECTS_SUMMARY_TXT}")


def with_verdicts(study: EffectStudy) -> list[dict[str, Any]]:
    """The levers' conditional effects, each with its average effect's verdict: the next-best
    action offers only levers shown to reduce default on average (a per-loan interval alone,
    across five levers and thousands of loans, would let a null lever through somewhere)."""
    t = study.table
    verdicts = dict(zip(t["lever"], t["verdict"], strict=True)) if "verdict" in t else {}
    return [{**c, "verdict": verdicts.get(c["lever"], "")} for c in study.cate]


def _policy_doc(study: EffectStudy) -> dict[str, Any] | None:
    p = study.policy
    if p is None:
        return None
    return {
        "snapshot": str(p.snapshot),
        "note": p.note,
        "seconds": p.seconds,
        "policies": _records(p.table),
        "qini": _records(p.qini),
    }


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(df.to_json(orient="records", date_format="iso"))


def _flat_params(study: EffectStudy) -> dict[str, Any]:
    ecfg = study.config
    params: dict[str, Any] = {
        f"effects.{k}": v for k, v in ecfg.model_dump(mode="json").items() if k != "levers"
    }
    for lv in ecfg.levers:
        params[f"effects.lever.{lv.name}"] = (
            f"{lv.kind}:{lv.event_type}:w{lv.window_months}:min{lv.min_events}"
        )
    params["effects.n_snapshots"] = len(study.snapshots)
    params["effects.first_snapshot"] = str(study.snapshots[0]) if study.snapshots else ""
    params["effects.last_snapshot"] = str(study.snapshots[-1]) if study.snapshots else ""
    return {k: str(v)[:500] for k, v in params.items()}


def _metrics(table: pd.DataFrame) -> dict[str, float]:
    out = {}
    cols = ("ate_pp", "ci_low_pp", "ci_high_pp", "naive_pp", "placebo_pp", "true_effect_pp")
    for _, r in table.iterrows():
        for c in cols:
            v = r.get(c)
            if v is not None and isinstance(v, (int, float)) and not math.isnan(float(v)):
                out[f"{r['lever']}.{c}"] = float(v)
        out[f"{r['lever']}.n_treated"] = float(r["n_treated"])
    return out
