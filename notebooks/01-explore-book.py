# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (loanrisk)
#     language: python
#     name: loanrisk
# ---

# %% [markdown]
# # 01 · Explore the book
#
# The four input tables, default rates over time, and how the relationship factors (contacts,
# complaints, satisfaction, financial education, ...) go with default. Everything is computed
# by the package (`pipeline.sources`, `pipeline.features`), so what you see here is what the
# model is trained on.
#
# The data is the one of the config (`LOANRISK_CONFIG`, default `configs/default.yaml`): the
# files in `data.raw_dir` or the database of `data.sql`. When there are no tables, a simulated
# book of size `LOANRISK_BOOK_SIZE` (default `tiny`) is generated into `data.raw_dir` first.
# Run from the repository root. Only ids and aggregates are shown: no customer's details.

# %% tags=["parameters"]
import os
import warnings

# tqdm (via optuna) asks for ipywidgets; the notebooks need none.
warnings.filterwarnings("ignore", message="IProgress not found")

CONFIG = os.environ.get("LOANRISK_CONFIG", "configs/default.yaml")
BOOK_DIR = os.environ.get("LOANRISK_BOOK_DIR")  # replaces data.raw_dir when set
BOOK_SIZE = os.environ.get("LOANRISK_BOOK_SIZE", "tiny")  # size of a generated book
TOP_FACTORS = int(os.environ.get("LOANRISK_TOP_FACTORS", "6"))

# %%
import matplotlib.pyplot as plt
import pandas as pd

from pipeline import features, runner
from pipeline.riskmath import metrics
from pipeline.simulator import simulate
from pipeline.config import load_config
from pipeline.core.contract import KEYS, TABLES
from pipeline.sources.configured_source import load_source
from pipeline.sources.validation import validate_tables

# The package selects matplotlib's Agg backend on import: figures inline again.
# %matplotlib inline

overrides = [f"generate.size={BOOK_SIZE}"]
if BOOK_DIR:
    overrides.append(f"data.raw_dir={BOOK_DIR}")
cfg = load_config(CONFIG, overrides)
if cfg.data.sql is None and not runner.has_tables(cfg):
    simulate.generate(
        cfg.data.raw_dir,
        cfg.generate,
        seed=cfg.seed,
        window_months=cfg.features.performance_window_months,
    )
tables = validate_tables(load_source(cfg.data))
source = repr(cfg.data.sql) if cfg.data.sql else str(cfg.data.raw_dir)
print(f"book from {source}")

# %% [markdown]
# ## The four tables
# Rows, columns, whether the key is unique, and the date range each table covers.

# %%
def date_range(frame: pd.DataFrame) -> str:
    dates = frame.select_dtypes("datetime")
    if dates.empty:
        return ""
    return f"{dates.min().min():%Y-%m-%d} .. {dates.max().max():%Y-%m-%d}"


overview = pd.DataFrame(
    [
        {
            "table": name,
            "rows": len(frame),
            "columns": frame.shape[1],
            "key": ", ".join(KEYS[name]),
            "key unique": not frame.duplicated(list(KEYS[name])).any(),
            "dates": date_range(frame),
        }
        for name, frame in tables.items()
    ]
)
overview

# %% [markdown]
# Per column: type, share missing and distinct values (aggregates only).

# %%
columns = pd.concat(
    {
        name: pd.DataFrame(
            {
                "dtype": frame.dtypes.astype(str),
                "missing %": (100 * frame.isna().mean()).round(1),
                "distinct": frame.nunique(),
            }
        )
        for name, frame in tables.items()
    }
)
columns

# %%
tables["crm_interactions"]["type"].value_counts().rename("CRM interactions by type").to_frame()

# %% [markdown]
# ## Default rates over time
# The feature matrix has one row per active loan and snapshot date; `label` is 1 when the loan
# reaches 90+ days past due within the performance window after the snapshot (missing while the
# window is incomplete).

# %%
matrix, specs = features.build_features_from_frames(tables, cfg)
labelled = matrix[matrix["label"].notna()].copy()
labelled["label"] = labelled["label"].astype(int)
by_date = labelled.groupby("snapshot_date")["label"].agg(
    loans="size", default_rate=metrics.default_rate
)
print(
    f"{len(matrix):,} loan-snapshots, {len(labelled):,} labelled; overall default rate "
    f"{metrics.default_rate(labelled['label']):.2%}"
)
by_date

# %%
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(by_date.index, 100 * by_date["default_rate"], marker="o")
ax.set_ylabel("default rate (%)")
ax.set_title("12-month default rate by snapshot date")
ax2 = ax.twinx()
ax2.bar(by_date.index, by_date["loans"], width=20, alpha=0.2, color="grey")
ax2.set_ylabel("labelled loans")
plt.show()

# %% [markdown]
# ## Relationship factors vs default
# For each relationship feature: the rank correlation with default, and whether its sign agrees
# with the direction the business expects (`lowers` = more of it, less default). Then the
# default rate by quintile of the strongest ones.

# %%
relationship = [s for s in specs if s.family == "relationship" and s.kind == "numeric"]
rows = []
for spec in relationship:
    x = labelled[spec.name].astype(float)
    if x.notna().sum() < 10 or x.nunique() < 2:
        continue
    corr = x.corr(labelled["label"], method="spearman")
    found = "lowers" if corr < 0 else "raises"
    rows.append(
        {
            "feature": spec.name,
            "description": spec.description,
            "expected": spec.expected,
            "spearman vs default": round(corr, 3),
            "agrees": None if spec.expected == "unknown" else found == spec.expected,
        }
    )
factors = pd.DataFrame(rows).sort_values("spearman vs default", key=abs, ascending=False)
factors.reset_index(drop=True)

# %%
top = factors["feature"].head(TOP_FACTORS).tolist()
fig, axes = plt.subplots(1, len(top), figsize=(3 * len(top), 3), sharey=True, squeeze=False)
for ax, name in zip(axes[0], top, strict=True):
    bins = pd.qcut(labelled[name].rank(method="first"), 5, labels=[1, 2, 3, 4, 5])
    rate = labelled.groupby(bins, observed=True)["label"].mean()
    ax.bar(rate.index.astype(str), 100 * rate.to_numpy())
    ax.set_title(name, fontsize=8)
    ax.set_xlabel("quintile (1 = least)")
axes[0][0].set_ylabel("default rate (%)")
fig.tight_layout()
plt.show()

# %%
print(f"tables: {', '.join(TABLES)}; snapshots: {len(by_date)}; factors shown: {len(top)}")
