"""The store across restarts: migrations from scratch and from an older version,
cursors and spool that survive a restart, TTLs from configuration, the disk
watermark, and the cluster DDL as text."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from store_support import config, drop, realistic, running, stored_count

from flowscope.common import schema
from flowscope.relay.store import ddl, migrations
from flowscope.relay.store.config import StoreConfig, dsn_for

pytestmark = pytest.mark.store

GOLDEN = Path(__file__).parent / "golden" / "cluster.sql"


def _client(settings: StoreConfig):  # type: ignore[no-untyped-def]
    import clickhouse_connect

    return clickhouse_connect.get_client(dsn=settings.dsn)


def test_migrations_from_scratch_are_idempotent(backend: str, tmp_path: Path) -> None:
    settings = config(backend, tmp_path)
    layout = ddl.Layout(settings.database)
    client = _client(settings)
    try:
        assert migrations.migrate(client, layout) == [step.version for step in migrations.STEPS]
        assert migrations.migrate(client, layout) == []
        assert migrations.current_version(client, layout) == migrations.LATEST
    finally:
        client.close()
    drop(settings)


def test_upgrade_from_version_1_backfills_the_rollups(backend: str, tmp_path: Path) -> None:
    settings = config(backend, tmp_path)
    flows = realistic(300)
    client = _client(settings)
    try:
        assert migrations.migrate(client, ddl.Layout(settings.database), upto=1) == [1]
        client.insert_arrow(f"{settings.database}.flows", schema.flows_to_arrow(flows))
    finally:
        client.close()
    with running(settings) as store:
        for rollup in ddl.ROLLUPS:
            (row,) = store.select(f"SELECT sum(flows) FROM {settings.database}.{rollup.name}", {})
            assert row[0] == len(flows), rollup.name
        assert store.cursors() == {
            node: max(f.node_sequence for f in flows if f.node_name == node)
            for node in {f.node_name for f in flows}
        }
    drop(settings)


def test_upgrade_to_the_map_rollup_keeps_what_the_raw_table_lost(
    backend: str, tmp_path: Path
) -> None:
    # Flows 5 hours ago remain only in the per-minute rollup (as if expired from
    # the raw table); flows 2 hours ago are in both.
    settings = config(backend, tmp_path)
    expired, kept = realistic(200, hours_ago=5), realistic(300, hours_ago=2)
    client = _client(settings)
    try:
        assert migrations.migrate(client, ddl.Layout(settings.database), upto=5) == [1, 2, 3, 4, 5]
        client.insert_arrow(f"{settings.database}.flows", schema.flows_to_arrow(expired))
        client.command(f"TRUNCATE TABLE {settings.database}.flows")
        client.insert_arrow(f"{settings.database}.flows", schema.flows_to_arrow(kept))
    finally:
        client.close()
    with running(settings) as store:
        rows = store.select(
            "SELECT time < toDateTime({cut:Int64}, 'UTC') AS old, is_reply, sum(flows)"
            f" FROM {settings.database}.map_edges_1m GROUP BY old, is_reply ORDER BY old, is_reply",
            {"cut": kept[0].time.seconds // 60 * 60},
        )
    replies = Counter(f.is_reply.value if f.HasField("is_reply") else None for f in kept)
    assert [tuple(row) for row in rows] == [
        (False, False, replies[False]),
        (False, True, replies[True]),
        (False, None, replies[None]),
        (True, None, len(expired)),
    ]
    drop(settings)


def test_cursors_and_spool_survive_a_restart(backend: str, tmp_path: Path) -> None:
    settings = config(backend, tmp_path)
    flows = realistic(400)

    def refuse(table: str) -> None:
        raise ConnectionError("store down")

    with running(settings) as store:
        store.write(flows[:200])
        assert store.drain()
        cursors = store.cursors()
    with running(settings, refuse) as store:
        assert store.cursors() == cursors
        store.write(flows[150:300])  # 50 already stored, 100 spooled
        assert store.drain()
        assert store.counters().writer.duplicates == 50
        assert store.counters().writer.spooled == 100
        assert store.counters().spool_files >= 1  # one or more inserts, by lane and time
    with running(settings) as store:  # the spool is replayed after the restart
        expected = {
            node: max(f.node_sequence for f in flows[:300] if f.node_name == node)
            for node in {f.node_name for f in flows}
        }
        assert store.cursors() == expected
        assert store.drain()
        assert store.counters().writer.replayed == 100
        assert stored_count(store) == (300, 300)
        assert store.queries.cursors() == expected
    drop(settings)


def test_ttls_follow_the_configuration(backend: str, tmp_path: Path) -> None:
    settings = config(backend, tmp_path, raw_ttl=timedelta(days=10))
    with running(settings) as store:
        ((ddl_text,),) = store.select(f"SHOW CREATE TABLE {settings.database}.flows", {})
        assert "TTL toDateTime(time) + toIntervalSecond(864000)" in ddl_text
        assert "ttl_only_drop_parts = 1" in ddl_text
        # partitions are 1/24 of the TTL they were created with
        assert "toStartOfInterval(time, toIntervalSecond(36000))" in ddl_text
    longer = replace(settings, raw_ttl=timedelta(days=20), hour_ttl=timedelta(days=90))
    with running(longer) as store:
        ((ddl_text,),) = store.select(f"SHOW CREATE TABLE {settings.database}.flows", {})
        ((hourly,),) = store.select(f"SHOW CREATE TABLE {settings.database}.edges_1h", {})
    assert "TTL toDateTime(time) + toIntervalSecond(1728000)" in ddl_text
    assert "TTL toDateTime(time) + toIntervalSecond(7776000)" in hourly
    drop(settings)


def test_disk_watermark_drops_the_oldest_partitions(backend: str, tmp_path: Path) -> None:
    # A 1-day TTL makes 1-hour partitions; flows over the last 4 hours fill 4 or 5.
    settings = config(
        backend, tmp_path, raw_ttl=timedelta(days=1), disk_watermark_bytes=1, watermark_interval=0
    )
    spread = realistic(200, hours_ago=4)
    for i, flow in enumerate(spread):
        flow.time.seconds += (i * 4 * 3600) // len(spread)
    with running(settings) as store:
        store.write(spread)
        assert store.drain()
        covered = store.queries.covered()
        assert covered is not None
        newest_hour = covered.newest // 3_600_000_000_000
        assert covered.oldest // 3_600_000_000_000 == newest_hour  # only the newest is left
        assert store.counters().partitions_dropped >= 3
    drop(settings)


def test_cluster_ddl_is_golden() -> None:
    layout = ddl.Layout("flowscope", cluster="flows_cluster")
    text = ";\n\n".join(migrations.plan(layout)) + ";\n"
    assert text == GOLDEN.read_text()


def test_system_log_ttls() -> None:
    assert ddl.system_log_ttls(["query_log", "trace_log"], timedelta(days=30)) == [
        "ALTER TABLE system.query_log MODIFY TTL event_date + toIntervalDay(30)",
        "ALTER TABLE system.trace_log MODIFY TTL event_date + toIntervalDay(30)",
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"batch_max_rows": 0}, "store batch_max_rows 0: expected 1 to 1000000"),
        ({"database": "a-b"}, "store database 'a-b': expected a plain identifier"),
        ({"raw_ttl": timedelta(minutes=5)}, "store raw_ttl 0:05:00: expected at least 1 hour"),
        ({"cluster": "c"}, "store cluster 'c': needs a ClickHouse server, not chDB"),
    ],
)
def test_bad_config_is_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(Exception, match=message):
        StoreConfig(**settings)  # type: ignore[arg-type]


def test_store_option_to_dsn() -> None:
    assert dsn_for("/var/lib/flowscope/store") == "chdb:///var/lib/flowscope/store"
    assert dsn_for("http://default:@db:8123") == "http://default:@db:8123"
    assert dsn_for("data").startswith("chdb:///") and dsn_for("data").endswith("/data")
    with pytest.raises(Exception, match="--store 'ftp://x': expected a directory or an http"):
        dsn_for("ftp://x")
