"""MLflow's SqlAlchemyStore with a bulk insert for log-batch metrics.

Why: a 1000-metric log-batch spends most of its server time building 1000 SQLAlchemy ORM objects and
flushing them through the unit of work (see packages/tracking/README.md, "Throughput"). This store is the
stock store except for `_log_metrics_once`, which writes the same rows with one Core executemany and
updates `latest_metrics` through the stock code. Semantics are MLflow's:

- every metric is validated by MLflow's `_validate_metric` (same error messages and paths): in `log_batch`
  by the stock `_validate_batch_log_data` before anything is written (as in the stock store, which then
  validates each metric a second time in `_log_metrics_once`; that repeat of a pure check on the same
  values is skipped), in `log_metric` by `_log_metrics_once`;
- identical metrics within a batch are dropped with the same `seen` set as the stock code;
- NaN / ±Inf are sanitised by the stock `sanitize_metric_value` (value 0 + is_nan, ±max float);
- `latest_metrics` is updated by the stock `_update_latest_metrics_if_necessary`, given per key the metric
  it would have ended up with (the first strictly greatest (step, timestamp, value), as its comparison keeps);
- on SQLite the rows go to the driver's executemany as tuples (no per-row SQLAlchemy parameter processing),
  and metrics write transactions queue for SQLite's single write lock on an flock next to the database
  instead of polling it from SQLite's busy handler (`store._WriterQueue`: same data, less waiting);
- any IntegrityError (a point already stored: a replayed batch) rolls back and reruns the stock
  `_log_metrics_once`, whose recovery inserts exactly the missing points;
- everything else (params, tags, model metrics, deadlock retry, reads) is inherited unchanged.

The package also holds vw2's MLflow server app (`app.create_app`, entry point `mlflow.app` named
`vw2-fast-log-batch`): MLflow's own app with a faster view for POST runs/log-batch (`log_batch_view`).

URIs: `vw2-sqlite:///<path>` and `vw2-postgresql://...` are the stock `sqlite` / `postgresql` URIs with a
`vw2-` prefix; the database schema is MLflow's own, so the same database can be served by a stock server.
"""

# MLflow loads `mlflow.tracking_store` entry points while `mlflow.tracking` is still being imported, so
# the entry point is the lightweight `make_store` and the store class lives in `.store` (imported on use).

__all__ = ["make_store", "stock_uri"]

SCHEME_PREFIX = "vw2-"


def stock_uri(uri: str) -> str:
    """`vw2-sqlite:///x.db` -> `sqlite:///x.db` (stock URIs pass through)."""
    return uri[len(SCHEME_PREFIX):] if uri.startswith(SCHEME_PREFIX) else uri


def make_store(store_uri=None, artifact_uri=None):
    """The `mlflow.tracking_store` builder for the vw2-* URI schemes."""
    from vw2_mlflow_store.store import BulkMetricsSqlAlchemyStore

    return BulkMetricsSqlAlchemyStore(stock_uri(store_uri), artifact_uri)
