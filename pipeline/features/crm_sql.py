"""DuckDB SQL of the relationship family's staging: the CRM events as the array code
(`crm_arrays`) reads them. Event types and channels are staged as small integer codes: the
array code compares and carries integers, not strings."""

from __future__ import annotations

from pipeline.core.contract import CRM_CHANNELS, CRM_TYPES

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
