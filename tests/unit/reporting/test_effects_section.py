"""The report's first screen: one table per lever, estimate beside naive, SHAP and truth."""

from __future__ import annotations

import pandas as pd

from pipeline.core import catalogue
from pipeline.core.io import write_csv
from pipeline.reporting.effects_section import section


def _table(truth: bool) -> pd.DataFrame:
    t = pd.DataFrame(
        {
            "lever": ["payment_reminder", "marketing"],
            "feature": ["reminders_3m", "marketing_contacts_12m"],
            "verdict": ["reduces default", "cannot tell"],
            "ate_pp": [-0.42, 0.05],
            "ci_low_pp": [-0.80, -0.30],
            "ci_high_pp": [-0.05, 0.41],
            "naive_pp": [3.37, -0.41],
            "n_treated": [24491, 36989],
            "n_rows": [82440, 75598],
        }
    )
    if truth:
        t = t.assign(
            true_effect_pp=[-0.31, 0.0], true_effect_se_pp=[0.02, 0.0], covered=[True, True]
        )
    return t


FACTORS = pd.DataFrame(
    {"feature": ["reminders_3m"], "direction": ["raises"], "share": [0.031], "rank": [7]}
)


def test_one_table_per_lever_with_estimate_naive_shap_and_truth(tmp_path):
    write_csv(_table(truth=True), tmp_path / catalogue.EFFECTS_CSV)
    html = section(tmp_path, FACTORS).render()
    assert html.count("<table>") == 2
    assert "-0.42 pp [-0.80, -0.05]" in html  # the estimate with its CI
    assert "+3.37 pp" in html  # the naive difference beside it
    assert "raises PD; 3.1% of attribution, rank 7" in html  # SHAP, the other way round
    assert "-0.31 pp (Monte-Carlo s.e. 0.02); in the CI" in html  # the truth on the simulated book
    assert "not among the model" in html  # marketing's feature is not in the factors


def test_without_truth_no_truth_row_and_without_a_study_an_invitation(tmp_path):
    write_csv(_table(truth=False), tmp_path / catalogue.EFFECTS_CSV)
    assert "True effect" not in section(tmp_path, None).render()
    empty = section(None, FACTORS).render()
    assert "loanrisk effects" in empty and "<table>" not in empty
