"""The state store: SQLite by default, PostgreSQL for shared deployments (see `Store`)."""

from connector.store.repo import Store, SystemStatus

__all__ = ["Store", "SystemStatus"]
