"""Sources: the input tables read, converted to contract types and checked against the contract.

configured_source  where the config says the tables are: files or a database
file_source        <table>.parquet / <table>.csv files, with diagnostics for unreadable ones
sql_source         a SQL database through SQLAlchemy, passwords hidden
conversion         each contract column to its contract type, noting what did not convert
schemas            pandera schemas of the data contract
validation         the four tables checked together; every problem in one DataError
messages           how problems are worded: row listings, cells, plurals
example_data       real public credit data shipped inside PyPI packages
"""
