"""The stores the conformance tests run against: chDB always, a ClickHouse
server too when FLOWSCOPE_TEST_CLICKHOUSE_URL names one (a clickhouse-connect
DSN such as http://default:@localhost:8123/default). Without it the server
variant is not generated at all, rather than skipped: under CI=true a skipped
store test counts as a failure.

chDB holds one engine per process, at one path: each test module opens its
own and closes it when done, so the next module can open another.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from clickhouse_store import Store

from flowscope.common import schema

SERVER_URL_VARIABLE = "FLOWSCOPE_TEST_CLICKHOUSE_URL"
SERVER_URL = os.environ.get(SERVER_URL_VARIABLE, "")


@pytest.fixture(scope="module", params=["chdb", "server"] if SERVER_URL else ["chdb"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    clickhouse_connect = pytest.importorskip("clickhouse_connect")
    if request.param == "chdb":
        pytest.importorskip("chdb")
        dsn = f"chdb://{tmp_path_factory.mktemp('chdb')}"
    else:
        dsn = SERVER_URL
    client = clickhouse_connect.get_client(dsn=dsn)
    table = f"flowscope_test_{uuid.uuid4().hex[:12]}"
    client.command(schema.create_table_sql(table))
    try:
        yield Store(client, table)
    finally:
        client.command(f"DROP TABLE IF EXISTS {table}")
        client.close()
