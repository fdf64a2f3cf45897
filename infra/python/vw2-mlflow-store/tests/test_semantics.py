"""The bulk store must store exactly what MLflow's stock SqlAlchemyStore stores.

Every scenario runs the same calls against a stock store and a vw2 bulk store (each on its own SQLite
database, both created through MLflow's store registry from their URIs, as the server does) and compares
the resulting metrics, latest_metrics and logged_model_metrics tables, the REST-visible views
(get_metric_history, run.data.metrics) and any error (class, error code, message).

    .venvs/mlflow/bin/python -m unittest discover -s infra/python/vw2-mlflow-store/tests -v
"""

import math
import shutil
import tempfile
import unittest

import sqlalchemy
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.tracking._tracking_service.utils import _tracking_store_registry

from vw2_mlflow_store.store import BulkMetricsSqlAlchemyStore

T0 = 1_700_000_000_000


def _series(n, key="loss", start=0):
    return [Metric(key, 1.0 / (i + 1), T0 + i, i) for i in range(start, start + n)]


class _Stores:
    """A stock and a bulk store (created once: MLflow's schema setup takes seconds per database)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="vw2-store-semantics-")
        self.stores = {
            "stock": _tracking_store_registry.get_store(f"sqlite:///{self.dir}/stock.db", f"{self.dir}/art"),
            "bulk": _tracking_store_registry.get_store(f"vw2-sqlite:///{self.dir}/bulk.db", f"{self.dir}/art"),
        }
        self.experiments = {name: store.create_experiment("semantics") for name, store in self.stores.items()}


class _Pair:
    """One fresh run in each of the two stores."""

    def __init__(self, stores):
        self.stores = stores.stores
        self.experiments = stores.experiments
        self.runs = {name: self.new_run(name) for name in self.stores}

    def new_run(self, name):
        store = self.stores[name]
        return store.create_run(self.experiments[name], "user", T0, [], "r").info.run_id

    def each(self, call):
        """call(store, run_id, name) on both stores; returns {name: ("ok", result) | ("error", ...)}."""
        out = {}
        for name, store in self.stores.items():
            try:
                out[name] = ("ok", call(store, self.runs[name], name))
            except MlflowException as e:
                out[name] = ("error", type(e).__name__, e.error_code, e.message.replace(self.runs[name], "<run>"))
        return out

    def tables(self, name):
        store = self.stores[name]
        run_id = self.runs[name]
        with store.engine.connect() as c:
            def rows(sql):
                return sorted(
                    tuple("<run>" if v == run_id else v for v in r)
                    for r in c.execute(sqlalchemy.text(sql))
                )

            where = f"'{run_id}'"  # a hex run id from the store itself
            return {
                "metrics": rows(f"SELECT key, value, timestamp, step, is_nan, run_uuid FROM metrics WHERE run_uuid = {where}"),
                "latest_metrics": rows(
                    f"SELECT key, value, timestamp, step, is_nan, run_uuid FROM latest_metrics WHERE run_uuid = {where}"
                ),
                "logged_model_metrics": rows(
                    "SELECT metric_name, metric_value, metric_timestamp_ms, metric_step, run_id "
                    f"FROM logged_model_metrics WHERE run_id = {where}"
                ),
            }

    def views(self, name):
        store = self.stores[name]
        run_id = self.runs[name]
        run = store.get_run(run_id)
        return {
            "run.data.metrics": sorted((m.key, _num(m.value), m.timestamp, m.step) for m in run.data._metric_objs),
            "history": {
                key: [(_num(m.value), m.timestamp, m.step) for m in store.get_metric_history(run_id, key)]
                for key in sorted({m.key for m in run.data._metric_objs})
            },
        }


def _num(v):
    return "nan" if isinstance(v, float) and math.isnan(v) else v


class StockSemantics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stores = _Stores()
        assert type(cls.stores.stores["stock"]) is SqlAlchemyStore
        assert type(cls.stores.stores["bulk"]) is BulkMetricsSqlAlchemyStore

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.stores.dir, True)

    def pair(self):
        return _Pair(self.stores)

    def check(self, pair, outcome=None):
        if outcome is not None:
            self.assertEqual(outcome["bulk"], outcome["stock"])
        self.assertEqual(pair.tables("bulk"), pair.tables("stock"))
        self.assertEqual(pair.views("bulk"), pair.views("stock"))

    def log(self, pair, metrics, params=(), tags=(), ok=True):
        out = pair.each(lambda s, r, _: s.log_batch(r, metrics=list(metrics), params=list(params), tags=list(tags)))
        if ok:
            self.assertEqual(out["stock"], ("ok", None))
        return out

    def test_a_thousand_points_with_params_and_tags(self):
        pair = self.pair()
        out = self.log(pair, _series(998), [Param("lr", "0.1")], [RunTag("t", "v")])  # MLflow's limit: 1000 entities
        self.check(pair, out)
        self.assertEqual(len(pair.tables("bulk")["metrics"]), 998)

    def test_several_keys_out_of_order_steps_and_ties(self):
        pair = self.pair()
        batch = [
            Metric("a", 1.0, T0 + 5, 3), Metric("b", 2.0, T0, 0), Metric("a", 9.0, T0 + 1, 7),
            Metric("a", 0.5, T0 + 9, 7), Metric("a", 9.5, T0 + 1, 7), Metric("b", -1.0, T0, 0),
            Metric("c", 3.0, T0, -2), Metric("a", 4.0, T0 + 100, 2),
        ]
        self.check(pair, self.log(pair, batch))
        # later batches: lower step must not move latest_metrics, higher step must
        self.check(pair, self.log(pair, [Metric("a", 100.0, T0 + 1000, 1), Metric("b", 5.0, T0 + 1, 1)]))
        self.check(pair, self.log(pair, [Metric("a", 7.0, T0 + 2, 8), Metric("c", 3.0, T0, -2)]))
        self.check(pair, self.log(pair, [Metric("s", 1.0, T0, 1.5)]))  # MLflow accepts a float step

    def test_identical_points_in_one_batch(self):
        pair = self.pair()
        m = Metric("loss", 0.25, T0, 1)
        self.check(pair, self.log(pair, [m, Metric("loss", 0.25, T0, 1), m, Metric("loss", 0.5, T0, 1)]))

    def test_replayed_and_overlapping_batches(self):
        pair = self.pair()
        self.check(pair, self.log(pair, _series(600)))
        self.check(pair, self.log(pair, _series(600)))  # a whole batch again (lost response, replay)
        self.check(pair, self.log(pair, _series(600, start=300)))  # half stored, half new
        self.assertEqual(len(pair.tables("bulk")["metrics"]), 900)

    def test_nan_and_infinities(self):
        pair = self.pair()
        nan, inf = float("nan"), float("inf")
        batch = [Metric("x", nan, T0, 0), Metric("x", inf, T0, 1), Metric("x", -inf, T0, 2),
                 Metric("y", inf, T0, 5), Metric("z", nan, T0, 9), Metric("x", 0.0, T0, 0)]
        self.check(pair, self.log(pair, batch))
        # distinct NaN objects for the same point: the stock store hits its primary key and recovers
        self.check(pair, self.log(pair, [Metric("w", float("nan"), T0, 1), Metric("w", float("nan"), T0, 1)]))
        self.check(pair, self.log(pair, [Metric("z", nan, T0, 9), Metric("z", nan, T0 + 1, 10)]))

    def test_single_metric_through_log_metric(self):
        pair = self.pair()
        for _ in range(2):
            out = pair.each(lambda s, r, _: s.log_metric(r, Metric("one", 1.5, T0, 3)))
            self.assertEqual(out["stock"], ("ok", None))
            self.check(pair, out)

    def test_invalid_points_fail_alike(self):
        pair = self.pair()
        for bad in ([Metric("ok", 1.0, T0, 0), Metric("v", "not a number", T0, 0)],
                    [Metric("ok", 1.0, T0, 0), Metric("t", 1.0, "soon", 0)],
                    [Metric("bad key!", 1.0, T0, 0)]):
            out = self.log(pair, bad, ok=False)
            self.assertEqual(out["stock"][0], "error", bad)
            self.check(pair, out)
        out = pair.each(lambda s, r, _: s.log_metric(r, Metric("v", "nan-ish", T0, 0)))
        self.assertEqual(out["stock"][0], "error")
        self.check(pair, out)

    def test_inactive_and_unknown_runs_fail_alike(self):
        pair = self.pair()
        pair.each(lambda s, r, _: s.delete_run(r))
        out = self.log(pair, _series(3), ok=False)
        self.assertEqual(out["stock"][0], "error")
        self.assertEqual(out["bulk"], out["stock"])
        out = pair.each(lambda s, r, _: s.log_batch("f" * 32, _series(2), [], []))
        self.assertEqual(out["stock"][0], "error")
        self.assertEqual(out["bulk"], out["stock"])

    def test_model_metrics(self):
        pair = self.pair()
        models = {name: store.create_logged_model(pair.experiments[name], name="m", source_run_id=pair.runs[name]).model_id
                  for name, store in pair.stores.items()}
        out = pair.each(lambda s, r, name: s.log_batch(r, metrics=[
            Metric("acc", 0.9, T0, 1, model_id=models[name]), Metric("acc", 0.95, T0 + 1, 2, model_id=models[name]),
            Metric("loss", 0.1, T0, 1)], params=[], tags=[]))
        self.assertEqual(out["stock"], ("ok", None))
        self.check(pair, out)
        self.assertEqual(len(pair.tables("bulk")["logged_model_metrics"]), 2)


if __name__ == "__main__":
    unittest.main()
