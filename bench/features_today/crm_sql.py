"""DuckDB SQL of the relationship family: CRM events per customer and snapshot.

Reads the staged tables of `pipeline.features.engine` (`crm`, `snaps`, `cgrid`) and creates
`crm_win` (events of the 12 months before s, conditional aggregates) and `crm_hist` (whole
history as of s, by an ASOF join on running totals). All sums are of integers, so the results are
bit-identical from run to run. Event types and channels are staged as small integer codes: the
window join carries millions of (event, snapshot) pairs, and integer compares and narrow rows
are several times cheaper than strings there.
"""

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
    and requests (timestamp + resolution_days; NULL days = resolved at once), and
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
    CREATE TEMP TABLE crm AS
    SELECT customer_id, interaction_id, ts, t, c, t NOT IN ({lender}) AS own,
           resolved_at, resolution_days, sat, nps, answered_out
    FROM (
        SELECT customer_id, interaction_id, CAST("timestamp" AS TIMESTAMP) AS ts,
               {_codes("type", TYPE, "99")} AS t,
               {_codes("channel", CHANNEL, "NULL")} AS c,
               CASE WHEN resolved THEN CAST("timestamp" AS TIMESTAMP) + to_microseconds(
                        CAST(round(coalesce(resolution_days, 0) * 86400000000) AS BIGINT)) END
                   AS resolved_at,
               CAST(resolution_days AS DOUBLE) AS resolution_days,
               CAST(satisfaction AS BIGINT) AS sat, CAST(nps AS BIGINT) AS nps,
               CAST({answered} AS BOOLEAN) AS answered_out
        FROM crm_interactions
    )
    """


def window() -> str:
    """Aggregates over the customer's events with timestamp in [s - 12 months, s)."""
    in3, in6 = "ts >= lo3_ts", "ts >= lo6_ts"
    res = "resolved_at < s_ts"
    cmp = f"t = {TYPE['complaint']}"

    def is_(name: str) -> str:
        return f"t = {TYPE[name]}"

    aggs = [
        f"count(*) FILTER (WHERE {in3}) AS n_3m",
        f"count(*) FILTER (WHERE {in6}) AS n_6m",
        "count(*) AS n_12m",
    ]
    for ch, code in CHANNEL.items():
        for w in CHANNEL_WINDOWS:
            cond = f"c = {code}" + ("" if w == 12 else f" AND ts >= lo{w}_ts")
            aggs.append(f"count(*) FILTER (WHERE {cond}) AS n_{ch}_{w}m")
    aggs += [
        f"count(*) FILTER (WHERE {is_('payment_reminder')} AND {in3}) AS reminders_3m",
        f"count(*) FILTER (WHERE {is_('proactive_checkin')} AND {in3}) AS checkins_3m",
        f"count(*) FILTER (WHERE {is_('proactive_checkin')}) AS checkins_12m",
        f"count(*) FILTER (WHERE {cmp} AND {in3}) AS complaints_3m",
        f"count(*) FILTER (WHERE {cmp} AND {in6}) AS complaints_6m",
        f"count(*) FILTER (WHERE {cmp}) AS complaints_12m",
        f"count(*) FILTER (WHERE {cmp} AND {in6} AND {res}) AS complaints_resolved_6m",
        f"count(*) FILTER (WHERE {cmp} AND {res}) AS complaints_resolved_12m",
        f"median(resolution_days) FILTER (WHERE {cmp} AND {res}) AS resolution_days_median",
        f"count(*) FILTER (WHERE {is_('service_request')}) AS service_requests_12m",
        f"count(*) FILTER (WHERE {is_('hardship_request')} AND {in3}) AS hardship_3m",
        f"count(*) FILTER (WHERE {is_('hardship_request')}) AS hardship_12m",
        f"count(*) FILTER (WHERE {is_('marketing')}) AS marketing_12m",
        # satisfaction: x = days relative to s (negative), y = rating; integer sums for the slope
        "count(sat) AS sat_n",
        "sum(sat) AS sat_sum",
        "sum(x) FILTER (WHERE sat IS NOT NULL) AS sat_sx",
        "sum(x * x) FILTER (WHERE sat IS NOT NULL) AS sat_sxx",
        "sum(x * sat) AS sat_sxy",
        "count(nps) AS nps_n",
        "sum(nps) AS nps_sum",
        f"count(*) FILTER (WHERE own AND {in3}) AS act_3m",
        f"count(*) FILTER (WHERE own AND NOT {in3}) AS act_9m",
        "count(answered_out) AS outbound_12m",
        "count(*) FILTER (WHERE answered_out) AS answered_12m",
    ]
    sep = ",\n           "
    return f"""
    CREATE TEMP TABLE crm_win AS
    SELECT customer_id, s,
           {sep.join(aggs)}
    FROM (
        SELECT cg.customer_id, cg.s, sn.s_ts, sn.lo3_ts, sn.lo6_ts, e.ts, e.t, e.c, e.own,
               e.resolved_at, e.resolution_days, e.sat, e.nps, e.answered_out,
               CAST(date_diff('day', cg.s, CAST(e.ts AS DATE)) AS BIGINT) AS x
        FROM crm e
        JOIN snaps sn ON e.ts < sn.s_ts AND e.ts >= sn.lo12_ts
        JOIN cgrid cg ON cg.customer_id = e.customer_id AND cg.s = sn.s
    )
    GROUP BY customer_id, s
    """


# Whole history as of s: last contact, running count of financial-education sessions, last
# satisfaction and NPS answers. Running values over the customer's events in (ts,
# interaction_id) order; of several events at one timestamp only the last row is kept, so the
# ASOF join on ts (last event strictly before s) has a unique match.
HISTORY = f"""
CREATE TEMP TABLE crm_hist AS
WITH running AS (
    SELECT customer_id, ts,
           sum(CAST(t = {TYPE["financial_education"]} AS INTEGER)) OVER w AS edu_cum,
           last_value(sat IGNORE NULLS) OVER w AS sat_last,
           last_value(nps IGNORE NULLS) OVER w AS nps_last,
           lead(ts) OVER w AS next_ts
    FROM crm
    WINDOW w AS (PARTITION BY customer_id ORDER BY ts, interaction_id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), cg AS (
    SELECT customer_id, s, CAST(s AS TIMESTAMP) AS s_ts FROM cgrid
)
SELECT cg.customer_id, cg.s, r.ts AS last_ts, r.edu_cum, r.sat_last, r.nps_last
FROM cg ASOF LEFT JOIN (SELECT * FROM running WHERE next_ts IS NULL OR next_ts > ts) r
    ON cg.customer_id = r.customer_id AND cg.s_ts > r.ts
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
