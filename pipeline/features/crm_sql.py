"""DuckDB SQL of the relationship family around its aggregates: the staged CRM events and the
final SELECT's relationship features over the aggregates `crm_win` and `crm_hist` that
`crm_arrays` computes. Event types and channels are staged as small integer codes: the array
code compares and carries integers, not strings."""

from __future__ import annotations

from pipeline.core.contract import CRM_CHANNELS, CRM_TYPES
from pipeline.features.specs import CHANNEL_WINDOWS

LENDER_INITIATED = ("payment_reminder", "proactive_checkin", "marketing")
TYPE = {name: code for code, name in enumerate(CRM_TYPES)}  # any other type: 99
CHANNEL = {name: code for code, name in enumerate(CRM_CHANNELS)}


def _codes(column: str, codes: dict[str, int], other: str) -> str:
    whens = " ".join(f"WHEN '{name}' THEN {code}" for name, code in codes.items())
    return f'CAST(CASE "{column}" {whens} ELSE {other} END AS TINYINT)'


def staged_crm(has_direction: bool, has_answered: bool) -> str:
    """The CRM events as used: type and channel codes, the PIT resolution time of complaints
    and requests in epoch microseconds (timestamp + resolution_days; NULL days = resolved at
    once), and
    `answered_out`, the answer of outbound contacts (NULL when unknown, or without the optional
    columns)."""
    if has_answered and has_direction:
        answered = "CASE WHEN direction = 'outbound' THEN answered END"
    elif has_answered:
        answered = "answered"
    else:
        answered = "CAST(NULL AS BOOLEAN)"
    lender = ", ".join(str(TYPE[t]) for t in LENDER_INITIATED)
    return f"""
    SELECT customer_id, interaction_id, ts, t, c, t NOT IN ({lender}) AS own,
           resolved_us, resolution_days, sat, nps, answered_out
    FROM (
        SELECT customer_id, interaction_id, CAST("timestamp" AS TIMESTAMP) AS ts,
               {_codes("type", TYPE, "99")} AS t,
               {_codes("channel", CHANNEL, "NULL")} AS c,
               CASE WHEN resolved THEN epoch_us(CAST("timestamp" AS TIMESTAMP))
                        + CAST(round(coalesce(resolution_days, 0) * 86400000000) AS BIGINT) END
                   AS resolved_us,
               CAST(resolution_days AS DOUBLE) AS resolution_days,
               CAST(satisfaction AS BIGINT) AS sat, CAST(nps AS BIGINT) AS nps,
               CAST({answered} AS BOOLEAN) AS answered_out
        FROM crm_interactions
    )
    """


def select_columns() -> list[str]:
    """Final SELECT expressions of the relationship features (aliases: cw = crm_win,
    ch = crm_hist, cg = cgrid, r = rep, c = customers, g = grid)."""

    def n(col: str) -> str:
        return f"CAST(coalesce(cw.{col}, 0) AS DOUBLE)"

    cols = ["date_diff('day', CAST(c.customer_since AS DATE), g.s) / 30.4375 AS tenure_months"]
    cols += [f"{n(f'n_{w}m')} / {w} AS contacts_per_month_{w}m" for w in (3, 6, 12)]
    for ch in CRM_CHANNELS:
        for w in CHANNEL_WINDOWS:
            cols.append(f"{n(f'n_{ch}_{w}m')} / {w} AS contacts_{ch}_per_month_{w}m")
    cols += [
        f"{n('reminders_3m')} AS reminders_3m",
        "r.reminded_on_time_12m / nullif(r.reminded_12m, 0) AS reminders_paid_on_time_share_12m",
        f"{n('checkins_3m')} AS checkins_3m",
        f"{n('checkins_12m')} AS checkins_12m",
        f"({n('reminders_3m')} + {n('checkins_3m')}) / 3 AS lender_contacts_per_month_3m",
        f"{n('complaints_3m')} AS complaints_3m",
        f"{n('complaints_12m')} AS complaints_12m",
        f"{n('complaints_resolved_6m')} AS complaints_resolved_6m",
        f"{n('complaints_6m')} - {n('complaints_resolved_6m')} AS complaints_unresolved_6m",
        "cw.complaints_resolved_12m / nullif(cw.complaints_12m, 0)"
        " AS complaint_resolution_rate_12m",
        "CAST(cw.resolution_days_median AS DOUBLE) AS complaint_resolution_days_median_12m",
        f"{n('service_requests_12m')} AS service_requests_12m",
        "CAST(ch.sat_last AS DOUBLE) AS satisfaction_last",
        "cw.sat_sum / nullif(cw.sat_n, 0) AS satisfaction_mean_12m",
        # OLS slope of rating on day, per month; needs two ratings on different days
        """CASE WHEN cw.sat_n >= 2 AND cw.sat_n * cw.sat_sxx - cw.sat_sx * cw.sat_sx > 0
                THEN CAST(cw.sat_n * cw.sat_sxy - cw.sat_sx * cw.sat_sum AS DOUBLE)
                     / CAST(cw.sat_n * cw.sat_sxx - cw.sat_sx * cw.sat_sx AS DOUBLE) * 30.4375
           END AS satisfaction_trend_12m""",
        "CAST(ch.nps_last AS DOUBLE) AS nps_last",
        "cw.nps_sum / nullif(cw.nps_n, 0) AS nps_mean_12m",
        "CAST(coalesce(ch.edu_cum, 0) AS DOUBLE) AS fin_edu_sessions_total",
        f"{n('hardship_3m')} AS hardship_requests_3m",
        f"{n('hardship_12m')} AS hardship_requests_12m",
        f"{n('marketing_12m')} AS marketing_contacts_12m",
        "CAST(cg.products_held AS DOUBLE) AS products_held",
        # channels are validated to the contract's six, so a count of the non-zero ones
        "CAST("
        + " + ".join(f"(coalesce(cw.n_{ch}_12m, 0) > 0)::INT" for ch in CRM_CHANNELS)
        + " AS DOUBLE) AS channel_diversity_12m",
        "CASE WHEN cw.act_9m > 0 THEN 3.0 * cw.act_3m / cw.act_9m - 1 END"
        " AS activity_change_3m_vs_9m",
        "CAST(date_diff('day', CAST(ch.last_ts AS DATE), g.s) AS DOUBLE)"
        " AS days_since_last_contact",
        "cw.answered_12m / nullif(cw.outbound_12m, 0) AS answered_share_12m",
    ]
    return cols
