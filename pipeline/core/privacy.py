"""Personal data: keyed-hash pseudonyms for loan and customer ids in reports and artefacts.

With `privacy.pseudonymise_ids: true`, every id a report or artefact writer passes through
`pseudonymise_ids` becomes HMAC-SHA256(key, id), truncated to 24 hex digits (96 bits: no
collision in any realistic book). The key comes from the environment variable named by
`privacy.key_env`, never from the config file, so whoever holds the reports cannot reverse or
recompute the pseudonyms. The same key gives the same pseudonym in every run, so outputs can be
joined with each other, and a key holder can map back by hashing the ids of the source tables.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.core.errors import ConfigError

if TYPE_CHECKING:  # the annotation only: core sits below config
    from pipeline.config import PrivacyConfig

ID_COLUMNS = ("loan_id", "customer_id")
MIN_KEY_BYTES = 16
DIGITS = 24


def id_key(cfg: PrivacyConfig) -> bytes | None:
    """The pseudonymisation key, or None when pseudonymisation is off.

    Raises ConfigError when it is on and the environment variable is unset or too short.
    """
    if not cfg.pseudonymise_ids:
        return None
    key = os.environ.get(cfg.key_env, "").encode()
    if len(key) < MIN_KEY_BYTES:
        state = "is not set" if not key else f"holds only {len(key)} bytes"
        raise ConfigError(
            f"privacy.pseudonymise_ids is true but the environment variable {cfg.key_env} "
            f"(privacy.key_env) {state}; expected a secret of at least {MIN_KEY_BYTES} bytes, "
            f'e.g. export {cfg.key_env}="$(openssl rand -hex 32)"'
        )
    return key


def pseudonym(value: object, key: bytes) -> str:
    """HMAC-SHA256 of the id's text (10 and "10" give the same pseudonym)."""
    return hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:DIGITS]


def pseudonymise(values: pd.Series, key: bytes) -> pd.Series:
    """Each distinct id hashed once; missing ids stay missing."""
    uniques = values.dropna().unique()
    mapping = {v: pseudonym(v, key) for v in uniques}
    return values.map(mapping).astype("str").where(values.notna())


def pseudonymise_ids(
    frame: pd.DataFrame, cfg: PrivacyConfig, columns: Iterable[str] = ID_COLUMNS
) -> pd.DataFrame:
    """`frame` with its id columns pseudonymised when the config asks for it, else unchanged.

    The call for every writer of ids (predictions, scores, reports): a no-op by default.
    """
    key = id_key(cfg)
    if key is None:
        return frame
    present = [c for c in columns if c in frame.columns]
    return frame.assign(**{c: pseudonymise(frame[c], key) for c in present})
