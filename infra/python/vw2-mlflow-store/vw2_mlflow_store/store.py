"""The store class of vw2_mlflow_store (see the package docstring for what it changes and why)."""

import sqlalchemy
from mlflow.store.tracking.dbmodels.models import SqlMetric
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.utils.validation import _validate_metric

__all__ = ["BulkMetricsSqlAlchemyStore"]


class _LatestCandidate:
    """The attributes `_update_latest_metrics_if_necessary` reads from a logged metric."""

    __slots__ = ("run_uuid", "key", "value", "timestamp", "step", "is_nan")

    def __init__(self, row):
        self.run_uuid = row["run_uuid"]
        self.key = row["key"]
        self.value = row["value"]
        self.timestamp = row["timestamp"]
        self.step = row["step"]
        self.is_nan = row["is_nan"]


class BulkMetricsSqlAlchemyStore(SqlAlchemyStore):
    def __init__(self, db_uri, default_artifact_root, read_db_uri=None):
        super().__init__(db_uri, default_artifact_root, read_db_uri)
        if self.db_type == "sqlite":
            _use_wal(self.engine)

    def _log_metrics_once(self, run_id, metrics):
        rows = []
        seen = set()
        is_single_metric = len(metrics) == 1
        for idx, metric in enumerate(metrics):
            _validate_metric(
                metric.key,
                metric.value,
                metric.timestamp,
                metric.step,
                path="" if is_single_metric else f"metrics[{idx}]",
            )
            if metric not in seen:
                is_nan, value = self.sanitize_metric_value(metric.value)
                rows.append({
                    "run_uuid": run_id,
                    "key": metric.key,
                    "value": value,
                    "timestamp": metric.timestamp,
                    "step": metric.step,
                    "is_nan": is_nan,
                })
            seen.add(metric)

        with self.ManagedSessionMaker(read_only=False) as session:
            run = self._get_run(run_uuid=run_id, session=session)
            self._check_run_is_active(run)
            if not rows:
                return
            try:
                session.execute(sqlalchemy.insert(SqlMetric.__table__), rows)
                self._update_latest_metrics_if_necessary(_latest_per_key(rows), session)
                session.commit()
                return
            except sqlalchemy.exc.IntegrityError:
                session.rollback()
        # Some point is already stored (e.g. a client replaying a batch after a lost response): the stock
        # path finds which ones and inserts exactly the others.
        super()._log_metrics_once(run_id, metrics)


def _latest_per_key(rows):
    """Per key, the row the stock comparison would keep: the first strictly greatest (step, timestamp, value)."""
    best = {}
    for row in rows:
        current = best.get(row["key"])
        if current is None or (row["step"], row["timestamp"], row["value"]) > (
            current["step"],
            current["timestamp"],
            current["value"],
        ):
            best[row["key"]] = row
    return [_LatestCandidate(row) for row in best.values()]


def _use_wal(engine):
    """SQLite in WAL mode (synchronous stays FULL: every commit is on disk before the response).

    Why: SQLite has one writer at a time, so the INSERT + COMMIT of every log-batch request is serialised
    across server workers. With the default rollback journal a commit costs several fsyncs (journal, then
    database); WAL appends the new pages to one log with one fsync, and readers (the UI, get-history) no
    longer block the writer. The mode is stored in the database file, so stock servers on the same
    database use it too.
    """

    @sqlalchemy.event.listens_for(engine, "connect")
    def _wal(dbapi_connection, _record):
        # a no-op once the file is in WAL mode; a busy database (another worker switching it) is fine:
        # the next connection retries
        try:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
        except Exception:  # noqa: BLE001
            pass

    # connections opened by the stock constructor (schema checks) predate the listener
    engine.dispose()
