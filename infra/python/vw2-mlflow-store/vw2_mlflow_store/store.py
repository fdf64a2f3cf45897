"""The store class of vw2_mlflow_store (see the package docstring for what it changes and why)."""

import contextlib
import contextvars
import fcntl
import logging
import math
import os
import threading

import sqlalchemy
from mlflow.store.tracking.dbmodels.models import SqlMetric
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.utils.validation import _validate_metric

__all__ = ["BulkMetricsSqlAlchemyStore"]

_logger = logging.getLogger(__name__)

# True while `log_batch` runs: it has already passed every metric through `_validate_metric`
# (`_validate_batch_log_data`), so `_log_metrics_once` need not repeat that pure check on the same values.
_metrics_validated = contextvars.ContextVar("vw2_metrics_validated", default=False)


# A metrics row, in the order of `_ROW_COLUMNS`.
_ROW_COLUMNS = ("run_uuid", "key", "value", "timestamp", "step", "is_nan")
# The same INSERT the Core statement compiles to on SQLite, for the driver's executemany: SQLAlchemy's
# per-row parameter processing of 1000 dicts costs more than SQLite's insert of them (profile in
# packages/tracking/README.md "Throughput"). The values are plain str / float / int / bool, which need
# no type processing on SQLite (tests/test_semantics.py compares the stored rows with the stock store's).
_SQLITE_INSERT = f"INSERT INTO metrics ({', '.join(_ROW_COLUMNS)}) VALUES ({', '.join('?' * len(_ROW_COLUMNS))})"


class _LatestCandidate:
    """The attributes `_update_latest_metrics_if_necessary` reads from a logged metric."""

    __slots__ = _ROW_COLUMNS

    def __init__(self, row):
        self.run_uuid, self.key, self.value, self.timestamp, self.step, self.is_nan = row


class BulkMetricsSqlAlchemyStore(SqlAlchemyStore):
    def __init__(self, db_uri, default_artifact_root, read_db_uri=None):
        super().__init__(db_uri, default_artifact_root, read_db_uri)
        self._metrics_writer = contextlib.nullcontext()
        if self.db_type == "sqlite":
            _use_wal(self.engine)
            if self.engine.url.database not in (None, "", ":memory:"):
                self._metrics_writer = _WriterQueue(f"{self.engine.url.database}.vw2-writer.lock")

    def log_batch(self, run_id, metrics, params, tags):
        token = _metrics_validated.set(True)
        try:
            return super().log_batch(run_id, metrics, params, tags)
        finally:
            _metrics_validated.reset(token)

    def _log_metrics_once(self, run_id, metrics):
        if not _metrics_validated.get():  # log_metric: nothing has validated these yet
            is_single_metric = len(metrics) == 1
            for idx, metric in enumerate(metrics):
                _validate_metric(
                    metric.key,
                    metric.value,
                    metric.timestamp,
                    metric.step,
                    path="" if is_single_metric else f"metrics[{idx}]",
                )
        rows = []
        seen = set()
        isfinite = math.isfinite
        for metric in metrics:
            if metric not in seen:
                seen.add(metric)
                value = metric.value
                # a finite value is stored as is (what sanitize_metric_value returns for it); NaN / ±Inf
                # go through the stock sanitiser
                if isfinite(value):
                    is_nan = False
                else:
                    is_nan, value = self.sanitize_metric_value(value)
                rows.append((run_id, metric.key, value, metric.timestamp, metric.step, is_nan))

        with self.ManagedSessionMaker(read_only=False) as session:
            run = self._get_run(run_uuid=run_id, session=session)
            self._check_run_is_active(run)
            if not rows:
                return
            try:
                with self._metrics_writer:
                    if self.db_type == "sqlite":
                        session.connection().exec_driver_sql(_SQLITE_INSERT, rows)
                    else:
                        session.execute(sqlalchemy.insert(SqlMetric.__table__), [dict(zip(_ROW_COLUMNS, row)) for row in rows])
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
        _, key, value, timestamp, step, _ = row
        current = best.get(key)
        if current is None or (step, timestamp, value) > (current[4], current[3], current[2]):
            best[key] = row
    return [_LatestCandidate(row) for row in best.values()]


class _WriterQueue:
    """Lets one metrics write transaction at a time (threads of this process, and server worker processes
    through an flock on a file next to the database) reach SQLite's write lock.

    Why: SQLite admits one writer; a connection that finds the write lock taken sleeps in its busy handler
    for 1, 2, 5, 10, ... 100 ms before looking again, so with requests from two workers overlapping, an
    insert that needs ~5 ms of CPU waited ~80 ms on average (measured in the server: INSERT wall 83 ms vs
    CPU 4.5 ms, 8 requests in flight) while the lock sat free between the sleeps. Waiting here instead wakes
    the next writer as soon as the previous one commits. Only the order of writers changes; what is stored,
    and when a request is answered relative to its commit, do not. Writers that do not take this queue
    (params, tags, run updates: MLflow's own code) still meet SQLite's lock and busy handler as before.
    """

    def __init__(self, path):
        self._path = path
        self._threads = threading.Lock()
        self._fd = None
        self._pid = None  # an flock is shared by every process that inherited its descriptor: one per process

    def __enter__(self):
        self._threads.acquire()
        try:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                try:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                except OSError as e:
                    # e.g. a read-only directory: writers then meet at SQLite's lock, as without this queue
                    self._fd = None
                    _logger.warning("vw2 store: no writer queue across processes (%s): %s", self._path, e)
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(self, *exc):
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()
        return False


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
