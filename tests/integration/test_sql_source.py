"""Database sources: SQLite and a real PostgreSQL server give the same validated tables and the
same feature matrix as the same book in Parquet; passwords never reach a log line, an error or
the config dump that MLflow records."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
import yaml

from pipeline.config import Config, GenerateConfig, SqlSourceConfig, load_config
from pipeline.core.contract import KEYS, TABLES
from pipeline.core.errors import ConfigError, DataError
from pipeline.simulator import simulate
from pipeline.sources.configured_source import load_sql_tables
from pipeline.sources.file_source import read_table
from pipeline.stages import features, ingest
from tests.helpers import REPO
from tests.pg_server import missing_binaries, pg_server

PASSWORD = "s3cr3t-Pa55word"
CHUNK_ROWS = 5_000  # the tiny book's event tables span several chunks


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def book_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny simulated book as Parquet files."""
    out = tmp_path_factory.mktemp("book") / "raw"
    simulate.generate(out, GenerateConfig(size="tiny"), seed=11)
    return out


@pytest.fixture(scope="module")
def parquet_result(book_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """(validated tables, feature matrix) of the Parquet book: the reference."""
    root = tmp_path_factory.mktemp("from_parquet")
    cfg = _cfg(root, raw_dir=book_dir)
    ingest.run(cfg)
    return _interim(root), features.build_features(root / "interim", cfg)[0]


@pytest.fixture(scope="module")
def sqlite_db(book_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("sqlite") / "book.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        for t in TABLES:
            pd.read_parquet(book_dir / f"{t}.parquet").to_sql(t, engine, index=False)
    finally:
        engine.dispose()
    return db


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server on a free 127.0.0.1 port; fails (never skips) without it."""
    why = missing_binaries()
    if why:
        pytest.fail(why, pytrace=False)
    with pg_server() as server:
        logging.getLogger(__name__).info("postgres started in %.1f s", server.start_seconds)
        yield server


# PostgreSQL holds the book under other names, in a schema, one table behind a query: the
# config maps each contract table to its source.
PG_TABLES = {
    "customers": "lending.customer_master",
    "loans": "lending.loan_book",
    "repayments": (
        "SELECT loan_id, installment_no, due_date, amount_due, paid_date, amount_paid "
        "FROM lending.instalments"
    ),
    "crm_interactions": "WITH e AS (SELECT * FROM lending.crm_events) SELECT * FROM e",
}


@pytest.fixture(scope="module")
def pg_book(postgres, book_dir: Path) -> str:
    """Load the tiny book into database `book`; return its URL (with a password, which trust
    auth ignores, so the masking is tested on a real connection)."""
    with psycopg.connect(host=postgres.host, port=postgres.port, user=postgres.user,
                         dbname="postgres", autocommit=True) as conn:  # fmt: skip
        conn.execute("CREATE DATABASE book")
    url = postgres.url("book", PASSWORD)
    engine = sa.create_engine(url)
    names = {t: PG_TABLES[t] for t in ("customers", "loans")}
    names |= {"repayments": "lending.instalments", "crm_interactions": "lending.crm_events"}
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE SCHEMA lending"))
        for t in TABLES:
            schema, table = names[t].split(".")
            frame = pd.read_parquet(book_dir / f"{t}.parquet")
            frame.to_sql(table, engine, schema=schema, index=False, chunksize=5_000)
            with engine.connect() as conn:
                n = conn.execute(sa.text(f"SELECT count(*) FROM {names[t]}")).scalar_one()
            assert n == len(frame)
        with engine.begin() as conn:
            # Money as NUMERIC, as ledgers keep it: the driver returns Decimal objects.
            for column in ("amount_due", "amount_paid"):
                conn.execute(sa.text(f"ALTER TABLE lending.instalments ALTER COLUMN {column} "
                                     "TYPE numeric(14, 2)"))  # fmt: skip
    finally:
        engine.dispose()
    return url


def _cfg(root: Path, raw_dir: Path | None = None, sql: dict | None = None) -> Config:
    data = {"interim_dir": root / "interim", "features_dir": root / "features"}
    if raw_dir is not None:
        data["raw_dir"] = raw_dir
    if sql is not None:
        data["raw_dir"] = root / "no-raw-tables"
        data["sql"] = {"chunk_rows": CHUNK_ROWS, **sql}
    return Config.model_validate({"data": data, "features": {"duckdb_threads": 1}})


def _interim(root: Path) -> dict[str, pd.DataFrame]:
    return {t: pd.read_parquet(root / "interim" / f"{t}.parquet") for t in TABLES}


def _by_key(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    return frame.sort_values(list(KEYS[table])).reset_index(drop=True)


# --- SQLite ----------------------------------------------------------------------------------


def test_sqlite_gives_the_parquet_tables_and_features(sqlite_db, parquet_result, tmp_path, caplog):
    tables_pq, matrix_pq = parquet_result
    cfg = _cfg(tmp_path, sql={"url": f"sqlite:///{sqlite_db}"})
    with caplog.at_level(logging.INFO, logger="pipeline"):
        ingest.run(cfg)
    tables_sql = _interim(tmp_path)
    for t in TABLES:
        pd.testing.assert_frame_equal(tables_sql[t], tables_pq[t], obj=t)
    matrix_sql = features.build_features(tmp_path / "interim", cfg)[0]
    assert len(matrix_sql) > 100
    pd.testing.assert_frame_equal(matrix_sql, matrix_pq)
    # Read in chunks: the repayments table is larger than one chunk.
    assert len(tables_pq["repayments"]) > CHUNK_ROWS
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("read repay"))
    assert f"in {-(-len(tables_pq['repayments']) // CHUNK_ROWS)} chunk(s)" in line


def test_read_table_accepts_a_database_url(sqlite_db, book_dir):
    from_db = read_table(f"sqlite:///{sqlite_db}", "loans")
    from_file = read_table(book_dir / "loans.parquet", "loans")
    pd.testing.assert_frame_equal(from_db, from_file)


def test_missing_table_is_named_with_its_source(sqlite_db, tmp_path):
    cfg = _cfg(tmp_path, sql={"url": f"sqlite:///{sqlite_db}", "tables": {"loans": "loan_tape"}})
    with pytest.raises(DataError) as info:
        ingest.run(cfg)
    assert "loans: could not read table loan_tape" in str(info.value)
    assert "no such table" in str(info.value)
    assert not (tmp_path / "interim").exists()


def test_empty_query_result_is_an_error(sqlite_db, tmp_path):
    sql = {"url": f"sqlite:///{sqlite_db}", "tables": {"customers": "SELECT * FROM customers "
                                                                     "WHERE 1 = 0"}}  # fmt: skip
    with pytest.raises(DataError, match="customers: query holds no rows"):
        ingest.run(_cfg(tmp_path, sql=sql))


@pytest.mark.parametrize(
    "source",
    ["loans; DROP TABLE loans", "a.b.c", "loans--", "'loans'", "DELETE FROM loans", ""],
)
def test_unsafe_table_names_are_config_errors(source):
    with pytest.raises(ConfigError, match="data.sql.tables"):
        load_config(
            Path("configs/default.yaml"),
            ["data.sql.url=sqlite:///x.db", f"data.sql.tables.loans={source!r}"],
        )


def test_queries_are_sent_as_text_and_names_quoted_by_the_dialect():
    from pipeline.sources.sql_source import statement

    engine = sa.create_engine("sqlite://")
    table = str(statement("Lending.Loan_Book").compile(engine))
    assert table == 'SELECT * \nFROM "Lending"."Loan_Book"'
    query = "WITH x AS (SELECT 1 AS a) SELECT a FROM x"
    assert str(statement(query).compile(engine)) == query
    assert SqlSourceConfig(url="sqlite://", tables={"loans": query}).source_for("loans") == query
    assert SqlSourceConfig(url="sqlite://").source_for("loans") == "loans"


def test_missing_server_binaries_are_named(tmp_path):
    why = missing_binaries(tmp_path / "no-postgres")
    assert why is not None and "initdb" in why and "apt-get install -y postgresql" in why


def test_unknown_table_key_and_table_mode_are_config_errors():
    with pytest.raises(ConfigError, match="unknown table"):
        load_config(None, ["data.sql.url=sqlite:///x.db", "data.sql.tables.loan=loans"])
    with pytest.raises(ConfigError, match="needs data.kind 'tables'"):
        load_config(
            None,
            ["data.sql.url=sqlite:///x.db", "data.kind=table", "data.path=x.parquet",
             "data.target=y", "data.id=i"],
        )  # fmt: skip


def test_missing_driver_is_a_config_error():
    with pytest.raises(ConfigError, match="driver"):
        load_sql_tables(SqlSourceConfig(url="mysql+nosuchdriver://u@h/db"))


# --- passwords -------------------------------------------------------------------------------


def test_password_is_hidden_in_connection_errors_and_logs(caplog):
    from tests.helpers import free_port

    url = f"postgresql+psycopg://loanrisk:{PASSWORD}@127.0.0.1:{free_port()}/book"
    with caplog.at_level(logging.DEBUG), pytest.raises(DataError) as info:
        load_sql_tables(SqlSourceConfig(url=url))
    message = str(info.value)
    assert "Could not connect to the database postgresql+psycopg://loanrisk:***@127.0" in message
    assert PASSWORD not in message and PASSWORD not in caplog.text
    with caplog.at_level(logging.DEBUG), pytest.raises(DataError) as info:
        read_table(url, "loans")
    assert PASSWORD not in str(info.value) and PASSWORD not in caplog.text


def test_password_is_hidden_in_config_errors_dumps_and_repr():
    url = f"postgresql+psycopg://loanrisk:{PASSWORD}@db.example:5432/book"
    bad_port = url.replace(":5432", ":port")
    with pytest.raises(ConfigError, match="expected a SQLAlchemy URL") as info:
        load_config(None, [f"data.sql.url={bad_port}"])
    assert "loanrisk:***@db.example" in str(info.value)
    assert PASSWORD not in str(info.value)
    # A section-level error quotes the whole data section, URL included.
    table_mode = ["data.kind=table", "data.path=x.parquet", "data.target=y", "data.id=i"]
    with pytest.raises(ConfigError) as info:
        load_config(None, [f"data.sql.url={url}", *table_mode])
    assert "loanrisk:***@db.example" in str(info.value)
    assert PASSWORD not in str(info.value)

    cfg = load_config(None, [f"data.sql.url={url}"])
    # What train logs to MLflow (params and config.json) is this dump.
    dumped = cfg.model_dump_json()
    assert json.loads(dumped)["data"]["sql"]["url"] == (
        "postgresql+psycopg://loanrisk:***@db.example:5432/book"
    )
    assert PASSWORD not in dumped
    assert PASSWORD not in repr(cfg) and PASSWORD not in str(cfg.data)
    # ...while the connection still gets the real password.
    assert cfg.data.sql.resolved_url().password == PASSWORD


def test_password_from_environment(monkeypatch):
    sql = SqlSourceConfig(url="postgresql+psycopg://loanrisk@db/book", password_env="LR_DB_PW")
    with pytest.raises(ConfigError, match="LR_DB_PW, which is not set"):
        sql.resolved_url()
    monkeypatch.setenv("LR_DB_PW", PASSWORD)
    assert sql.resolved_url().password == PASSWORD
    assert PASSWORD not in sql.model_dump_json()


# --- PostgreSQL ------------------------------------------------------------------------------


def test_postgres_gives_the_parquet_tables_and_features(pg_book, parquet_result, tmp_path, caplog):
    tables_pq, matrix_pq = parquet_result
    cfg = _cfg(tmp_path, sql={"url": pg_book, "tables": PG_TABLES})
    with caplog.at_level(logging.DEBUG):
        ingest.run(cfg)
    tables_pg = _interim(tmp_path)
    for t in TABLES:
        pd.testing.assert_frame_equal(_by_key(tables_pg[t], t), _by_key(tables_pq[t], t), obj=t)
    matrix_pg = features.build_features(tmp_path / "interim", cfg)[0]
    pd.testing.assert_frame_equal(matrix_pg, matrix_pq)
    assert "read repayments from postgresql+psycopg://loanrisk:***@127.0.0.1" in caplog.text
    assert PASSWORD not in caplog.text
    assert PASSWORD not in cfg.model_dump_json()


def test_postgres_query_errors_name_the_table_not_the_password(pg_book, tmp_path, caplog):
    tables = {**PG_TABLES, "loans": "SELECT * FROM lending.no_such_table"}
    cfg = _cfg(tmp_path, sql={"url": pg_book, "tables": tables})
    with caplog.at_level(logging.DEBUG), pytest.raises(DataError) as info:
        ingest.run(cfg)
    message = str(info.value)
    assert "loans: could not read query" in message and "no_such_table" in message
    # One failed query does not abort the others: only loans is reported.
    assert "customers:" not in message and "repayments:" not in message
    assert PASSWORD not in message and PASSWORD not in caplog.text


def test_the_commented_example_in_the_default_config_is_valid():
    lines = Path("configs/default.yaml").read_text().splitlines()
    start = lines.index("  # sql:")
    block = ["sql:"]
    for line in lines[start + 1 :]:
        if not line.startswith("  #   "):
            break
        block.append(line.replace("  #   ", "  ", 1))
    example = SqlSourceConfig.model_validate(yaml.safe_load("\n".join(block))["sql"])
    assert example.password_env == "LOANRISK_DB_PASSWORD"
    assert example.source_for("loans").startswith("SELECT")
    assert example.source_for("repayments") == "repayments"


def test_the_readme_database_example_is_a_valid_config(tmp_path):
    readme = (REPO / "README.md").read_text()
    section = readme.split("### From a database", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "my.yaml"
    path.write_text(block)
    cfg = load_config(path)
    assert cfg.data.sql is not None and cfg.data.sql.password_env == "LOANRISK_DB_PASSWORD"
    assert set(cfg.data.sql.tables) == set(TABLES)
