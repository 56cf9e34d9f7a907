"""One sync run at a time per state store, on both backends; separate stores never block each other."""

from __future__ import annotations

from connector.store import Store


def test_lock_is_exclusive_per_store(state_url, store_factory):
    first, second = store_factory(state_url), store_factory(state_url)
    with first.lock() as held:
        assert held
        with second.lock() as also:
            assert not also
    with second.lock() as now_free:
        assert now_free


def test_two_postgres_schemas_do_not_share_the_lock(pg_schemas, store_factory):
    a, b = store_factory(pg_schemas()), store_factory(pg_schemas())
    with a.lock() as held_a, b.lock() as held_b:
        assert held_a and held_b


def test_lock_is_released_when_the_holder_dies(sqlite_url, store_factory):
    import subprocess
    import sys

    store: Store = store_factory(sqlite_url)
    code = (f"from connector.store import Store; import os; s = Store.open({sqlite_url!r})\n"
            "with s.lock() as held:\n    assert held\n    os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    with store.lock() as held:
        assert held
