"""vw2's log-batch view must answer and store exactly what MLflow's stock view does.

Every case posts the same body (built for a run of its own) through MLflow's real Flask app twice: once
with MLflow's stock `_log_batch` view, once with vw2's (`log_batch_view.fast_view`, what the
`vw2-fast-log-batch` app installs), and compares the HTTP status, Content-Type, response body and what the
database holds for the run afterwards (metrics, latest_metrics, params, tags). Cases: valid batches
(values, steps, timestamps, NaN/±Infinity, duplicates, params + tags), store-level rejections (bad keys,
limits, unknown / deleted runs, param overwrites) and bodies the view must hand to the stock view
(nulls, aliases, numeric strings, bare NaN, bad types, wrong content type, ...). Each case also asserts
which path the fast view takes (`plain_batch`), so the comparisons cannot pass by always falling back.
Both the bulk store (the embedded default) and the stock store serve.

`RealServers` then starts `mlflow server` twice (MLflow's app and `--app-name vw2-fast-log-batch`,
uvicorn, 2 workers) and compares the responses over HTTP.

    .venvs/mlflow/bin/python -m unittest discover -s infra/python/vw2-mlflow-store/tests -v
"""

import json
import math
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from vw2_mlflow_store import log_batch_view
from vw2_mlflow_store.log_batch_view import plain_batch

PATH = "/api/2.0/mlflow/runs/log-batch"
T0 = 1_700_000_000_000
RUN = "<run>"  # stands for the case's run id in bodies and in compared output


def _metric(key, value, ts, step=None):
    m = {"key": key, "value": value, "timestamp": ts}
    if step is not None:
        m["step"] = step
    return m


def _series(n, key="loss", start=0):
    return [_metric(key, 1.0 / (i + 1), T0 + i, i) for i in range(start, start + n)]


# (name, body, plain): body is a dict (run id placeholders replaced, then JSON-encoded), or raw text;
# plain: whether vw2's view handles the body itself (True) or hands it to MLflow's view (False).
VALID = [
    ("a thousand points", {"run_id": RUN, "metrics": _series(1000)}, True),
    ("several keys, no step, ints, extremes", {"run_id": RUN, "metrics": [
        _metric("a", 1, T0), _metric("b", -3, T0 + 1, -2), _metric("a", 2**62 + 1, T0 + 2, 5),
        _metric("c", -0.0, 0, 0), _metric("c", 1.7976931348623157e308, T0, 1), _metric("c", 5e-324, T0, 2),
        _metric("d", 0.1, 2**63 - 1, 2**63 - 1), _metric("d", 0.2, T0, -(2**63)), _metric("a", 0, T0, 5),
    ]}, True),
    ("NaN and infinities as strings", {"run_id": RUN, "metrics": [
        _metric("x", "NaN", T0, 0), _metric("x", "Infinity", T0, 1), _metric("x", "-Infinity", T0, 2),
        _metric("y", "Infinity", T0, 5), _metric("z", "NaN", T0, 9), _metric("x", 0.0, T0, 0),
        _metric("w", "NaN", T0, 1), _metric("w", "NaN", T0, 1),  # the same NaN point twice
    ]}, True),
    ("identical points and ties", {"run_id": RUN, "metrics": [
        _metric("loss", 0.25, T0, 1), _metric("loss", 0.25, T0, 1), _metric("loss", 0.5, T0, 1),
        _metric("a", 9.0, T0 + 1, 7), _metric("a", 0.5, T0 + 9, 7), _metric("a", 9.5, T0 + 1, 7),
    ]}, True),
    ("params, tags and metrics together", {"run_id": RUN, "metrics": _series(3),
        "params": [{"key": "lr", "value": "0.1"}, {"key": "empty", "value": ""}],
        "tags": [{"key": "t", "value": "v"}, {"key": "mlflow.note.content", "value": "hi"}]}, True),
    ("unicode keys and values", {"run_id": RUN, "metrics": [_metric("métrique/β 1", 1.5, T0, 1)],
        "params": [{"key": "naïve", "value": "😀 ünï"}], "tags": [{"key": "t", "value": "\u0000x"}]}, True),
    ("only params", {"run_id": RUN, "params": [{"key": "p", "value": "1"}]}, True),
    ("a param value MLflow truncates", {"run_id": RUN, "params": [{"key": "p", "value": "x" * 6001}]}, True),
    ("only the run id", {"run_id": RUN}, True),
    ("empty arrays", {"run_id": RUN, "metrics": [], "params": [], "tags": []}, True),
]

STORE_REJECTS = [
    ("bad metric key", {"run_id": RUN, "metrics": [_metric("ok", 1.0, T0, 0), _metric("bad key!", 1.0, T0, 0)]}, True),
    ("negative timestamp", {"run_id": RUN, "metrics": [_metric("ok", 1.0, -1, 0)]}, True),
    ("too many metrics", {"run_id": RUN, "metrics": _series(1001)}, True),
    ("too many params", {"run_id": RUN, "params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}, True),
    ("too many entities", {"run_id": RUN, "metrics": _series(950), "params": [{"key": f"p{i}", "value": "v"} for i in range(51)]}, True),
    ("duplicate param keys", {"run_id": RUN, "params": [{"key": "p", "value": "1"}, {"key": "p", "value": "2"}]}, True),
    ("metric key too long", {"run_id": RUN, "metrics": [_metric("k" * 251, 1.0, T0, 0)]}, True),
    ("unknown run", {"run_id": "f" * 32, "metrics": _series(2)}, True),
    ("not a run id", {"run_id": "../etc", "metrics": _series(2)}, True),
]

NOT_PLAIN = [
    ("missing run_id", {"metrics": _series(2)}),
    ("empty run_id", {"run_id": "", "metrics": _series(2)}),
    ("numeric run_id", {"run_id": 5, "metrics": _series(2)}),
    ("runId alias", {"runId": RUN, "metrics": _series(2)}),
    ("run_id and runId", {"run_id": RUN, "runId": RUN, "metrics": _series(2)}),
    ("unknown top-level field", {"run_id": RUN, "metrics": _series(2), "foo": 1}),
    ("metrics null", {"run_id": RUN, "metrics": None}),
    ("metrics an object", {"run_id": RUN, "metrics": {"key": "a"}}),
    ("metric a string", {"run_id": RUN, "metrics": ["a"]}),
    ("metric without value", {"run_id": RUN, "metrics": [{"key": "a", "timestamp": T0}]}),
    ("metric value null", {"run_id": RUN, "metrics": [_metric("a", None, T0)]}),
    ("metric value empty string", {"run_id": RUN, "metrics": [_metric("a", "", T0)]}),
    ("metric value numeric string", {"run_id": RUN, "metrics": [_metric("a", "1.5", T0)]}),
    ("metric value lowercase nan", {"run_id": RUN, "metrics": [_metric("a", "nan", T0)]}),
    ("metric value inf spelling", {"run_id": RUN, "metrics": [_metric("a", "inf", T0)]}),
    ("metric value bool", {"run_id": RUN, "metrics": [_metric("a", True, T0)]}),
    ("metric value huge int", {"run_id": RUN, "metrics": [_metric("a", 10**30, T0)]}),
    ("metric key empty", {"run_id": RUN, "metrics": [_metric("", 1.0, T0)]}),
    ("metric key number", {"run_id": RUN, "metrics": [_metric(7, 1.0, T0)]}),
    ("metric without timestamp", {"run_id": RUN, "metrics": [{"key": "a", "value": 1.0}]}),
    ("timestamp string", {"run_id": RUN, "metrics": [_metric("a", 1.0, str(T0))]}),
    ("timestamp integral float", {"run_id": RUN, "metrics": [_metric("a", 1.0, float(T0))]}),
    ("timestamp fraction", {"run_id": RUN, "metrics": [_metric("a", 1.0, 1.5)]}),
    ("timestamp beyond int64", {"run_id": RUN, "metrics": [_metric("a", 1.0, 2**64)]}),
    ("step null", {"run_id": RUN, "metrics": [{"key": "a", "value": 1.0, "timestamp": T0, "step": None}]}),
    ("step string", {"run_id": RUN, "metrics": [_metric("a", 1.0, T0, "3")]}),
    ("step fraction", {"run_id": RUN, "metrics": [_metric("a", 1.0, T0, 1.5)]}),
    ("step bool", {"run_id": RUN, "metrics": [_metric("a", 1.0, T0, True)]}),
    ("unknown metric field", {"run_id": RUN, "metrics": [{**_metric("a", 1.0, T0, 1), "foo": 1}]}),
    ("metric with model_id", {"run_id": RUN, "metrics": [{**_metric("a", 1.0, T0, 1), "model_id": "m-0"}]}),
    ("metric with run_id", {"run_id": RUN, "metrics": [{**_metric("a", 1.0, T0, 1), "run_id": RUN}]}),
    ("metric with datasetName alias", {"run_id": RUN, "metrics": [{**_metric("a", 1.0, T0, 1), "datasetName": "d"}]}),
    ("param without value", {"run_id": RUN, "params": [{"key": "p"}]}),
    ("param value a number", {"run_id": RUN, "params": [{"key": "p", "value": 1}]}),
    ("param key empty", {"run_id": RUN, "params": [{"key": "", "value": "1"}]}),
    ("tag without key", {"run_id": RUN, "tags": [{"value": "v"}]}),
    ("tags null", {"run_id": RUN, "tags": None}),
    ("metric key with a lone surrogate", '{"run_id": "<run>", "metrics": [{"key": "a\\ud800", "value": 1.0, "timestamp": 1}]}'),
    ("bare NaN literal", '{"run_id": "<run>", "metrics": [{"key": "a", "value": NaN, "timestamp": 1}]}'),
    ("bare Infinity literal", '{"run_id": "<run>", "metrics": [{"key": "a", "value": -Infinity, "timestamp": 1}]}'),
    ("overflowing number", '{"run_id": "<run>", "metrics": [{"key": "a", "value": 1e400, "timestamp": 1}]}'),
    ("not JSON", "run_id=<run>"),
    ("a JSON array", "[1, 2]"),
    ("a JSON string (double-encoded body)", json.dumps(json.dumps({"run_id": RUN, "metrics": _series(2)}))),
    ("empty body", ""),
]


def _encode(body, run_id):
    text = body if isinstance(body, str) else json.dumps(body)
    return text.replace(RUN, run_id).encode("utf-8", "surrogatepass")


def _num(v):
    return "nan" if isinstance(v, float) and math.isnan(v) else v


class _App:
    """MLflow's real Flask app on a fresh database with the given store URI scheme."""

    def __init__(self, scheme):
        self.dir = tempfile.mkdtemp(prefix="vw2-log-batch-view-")
        self.db = os.path.join(self.dir, "mlflow.db")
        os.environ["_MLFLOW_SERVER_FILE_STORE"] = f"{scheme}:///{self.db}"
        os.environ["_MLFLOW_SERVER_REGISTRY_STORE"] = f"sqlite:///{self.db}"
        os.environ["_MLFLOW_SERVER_ARTIFACT_ROOT"] = "mlflow-artifacts:/"
        os.environ["_MLFLOW_SERVER_ARTIFACT_DESTINATION"] = os.path.join(self.dir, "artifacts")
        os.environ["_MLFLOW_SERVER_SERVE_ARTIFACTS"] = "true"
        from mlflow.server import app, handlers

        handlers._tracking_store = None  # the server's store singleton: build it from the URI above
        self.app = app
        self.store = handlers._get_tracking_store()
        self.client = app.test_client()
        # the bodies the stock view fails on with a 500 (e.g. JSON that is not an object) log a traceback each
        self.saved_log_level = app.logger.level
        app.logger.setLevel("CRITICAL")
        self.stock_view = app.view_functions[log_batch_view.STOCK_ENDPOINT]
        assert getattr(self.stock_view, "vw2_stock_view", None) is None, "the stock view is installed"
        self.fast_view = log_batch_view.fast_view(self.stock_view)
        self.experiment = self.store.create_experiment(f"view-{scheme}")

    def close(self):
        from mlflow.server import handlers

        handlers._tracking_store = None
        self.app.logger.setLevel(self.saved_log_level)
        shutil.rmtree(self.dir, True)

    def new_run(self):
        return self.store.create_run(self.experiment, "user", T0, [], "r").info.run_id

    def post(self, view, data, content_type="application/json"):
        """(status, content type, body) of one POST through `view`, or the exception it raised."""
        self.app.view_functions[log_batch_view.STOCK_ENDPOINT] = view
        try:
            r = self.client.post(PATH, data=data, content_type=content_type)
            return r.status_code, r.headers.get("Content-Type"), r.get_data()
        except Exception as e:  # noqa: BLE001  (compared as an outcome: both views must raise alike)
            return ("raised", type(e).__name__, str(e))
        finally:
            self.app.view_functions[log_batch_view.STOCK_ENDPOINT] = self.stock_view

    def stored(self, run_id):
        """What the database holds for the run (its id replaced by RUN)."""
        c = sqlite3.connect(self.db)
        try:
            def rows(sql):
                return sorted(
                    tuple(RUN if v == run_id else _num(v) for v in r) for r in c.execute(sql, (run_id,))
                )

            return {
                "metrics": rows("SELECT key, value, timestamp, step, is_nan, run_uuid FROM metrics WHERE run_uuid = ?"),
                "latest_metrics": rows(
                    "SELECT key, value, timestamp, step, is_nan, run_uuid FROM latest_metrics WHERE run_uuid = ?"
                ),
                "params": rows("SELECT key, value, run_uuid FROM params WHERE run_uuid = ?"),
                "tags": rows("SELECT key, value, run_uuid FROM tags WHERE run_uuid = ?"),
            }
        finally:
            c.close()


def _stock_entities(request_json):
    """The entities MLflow's stock view builds from a (plain) body: protobuf parse, then from_proto."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.protos.service_pb2 import LogBatch
    from mlflow.utils.proto_json_utils import parse_dict

    message = LogBatch()
    parse_dict(request_json, message)
    return (
        message.run_id,
        [Metric.from_proto(m) for m in message.metrics],
        [Param.from_proto(p) for p in message.params],
        [RunTag.from_proto(t) for t in message.tags],
    )


def _comparable(entities):
    run_id, metrics, params, tags = entities
    return (
        run_id,
        [[(name, _num(v)) for name, v in sorted(m.__dict__.items())] for m in metrics],
        [sorted(p.__dict__.items()) for p in params],
        [sorted(t.__dict__.items()) for t in tags],
        [type(m.value) for m in metrics],
    )


class _ViewCases:
    scheme = None

    @classmethod
    def setUpClass(cls):
        cls.env = dict(os.environ)
        cls.app = _App(cls.scheme)

    @classmethod
    def tearDownClass(cls):
        cls.app.close()
        os.environ.clear()
        os.environ.update(cls.env)

    def compare(self, name, body, content_type="application/json", runs=None):
        """Posts `body` through the stock and the fast view (each for its own run); asserts equal outcomes."""
        app = self.app
        runs = runs or {"stock": app.new_run(), "fast": app.new_run()}
        out = {}
        for which, view in (("stock", app.stock_view), ("fast", app.fast_view)):
            result = app.post(view, _encode(body, runs[which]), content_type)
            if result[0] != "raised":
                result = (result[0], result[1], result[2].replace(runs[which].encode(), RUN.encode()))
            out[which] = (result, app.stored(runs[which]))
        self.assertEqual(out["fast"][0], out["stock"][0], f"{name}: response")
        self.assertEqual(out["fast"][1], out["stock"][1], f"{name}: stored data")
        return out["stock"], runs

    def test_valid_batches(self):
        for name, body, plain in VALID:
            with self.subTest(name):
                self.assertEqual(plain_batch(json.loads(_encode(body, "0" * 32))) is not None, plain)
                (response, stored), runs = self.compare(name, body)
                self.assertEqual(response[:2], (200, "application/json"), name)
                # the same batch again (a client's replay), then with more points: still alike
                self.compare(name, body, runs=runs)
        (response, stored), _ = self.compare("count", VALID[0][1])
        self.assertEqual(len(stored["metrics"]), 1000)

    def test_store_rejections(self):
        for name, body, plain in STORE_REJECTS:
            with self.subTest(name):
                self.assertEqual(plain_batch(json.loads(_encode(body, "0" * 32))) is not None, plain)
                (response, _), _ = self.compare(name, body)
                self.assertIn(response[0], (400, 404), name)
                self.assertIn(b'"error_code"', response[2], name)

    def test_param_overwrite_and_inactive_run(self):
        runs = {"stock": self.app.new_run(), "fast": self.app.new_run()}
        self.compare("param", {"run_id": RUN, "params": [{"key": "p", "value": "1"}]}, runs=runs)
        (response, _), _ = self.compare("param changed", {"run_id": RUN, "params": [{"key": "p", "value": "2"}]}, runs=runs)
        self.assertEqual(response[0], 400)
        for run_id in runs.values():
            self.app.store.delete_run(run_id)
        (response, _), _ = self.compare("deleted run", {"run_id": RUN, "metrics": _series(3)}, runs=runs)
        self.assertEqual(response[0], 400)
        self.assertIn(b"must be in the 'active' state", response[2])

    def test_bodies_for_the_stock_view(self):
        for name, body in NOT_PLAIN:
            with self.subTest(name):
                try:
                    parsed = json.loads(_encode(body, "0" * 32))
                except ValueError:
                    parsed = None
                self.assertIsNone(plain_batch(parsed), name)
                self.compare(name, body)

    def test_content_types(self):
        body = {"run_id": RUN, "metrics": _series(3)}
        for content_type in ("text/plain", "application/json; charset=utf-8", "application/x-www-form-urlencoded", None):
            with self.subTest(content_type):
                self.compare(str(content_type), body, content_type=content_type)


class BulkStore(_ViewCases, unittest.TestCase):
    scheme = "vw2-sqlite"  # the embedded server's default store


class StockStore(_ViewCases, unittest.TestCase):
    scheme = "sqlite"


class PlainBatchEntities(unittest.TestCase):
    """For every plain body, `plain_batch` builds exactly the entities of MLflow's protobuf path."""

    def test_same_entities_as_protobuf(self):
        for name, body, plain in VALID + STORE_REJECTS:
            with self.subTest(name):
                request_json = json.loads(_encode(body, "0123456789abcdef" * 2))
                ours = plain_batch(request_json)
                self.assertIsNotNone(ours)
                self.assertEqual(_comparable(ours), _comparable(_stock_entities(request_json)))
                # a fresh float object per NaN point, as protobuf read-backs give (the stores' duplicate
                # detection compares metric objects)
                nans = [m.value for m in ours[1] if isinstance(m.value, float) and math.isnan(m.value)]
                self.assertEqual(len({id(v) for v in nans}), len(nans))


class AppFactory(unittest.TestCase):
    def test_create_app_installs_the_view_once(self):
        from mlflow.server import app

        from vw2_mlflow_store.app import create_app

        stock = app.view_functions[log_batch_view.STOCK_ENDPOINT]
        saved = os.environ.pop("_MLFLOW_SGI_NAME", None)
        try:
            self.assertIs(create_app(), app)  # not under uvicorn: the Flask app itself
            fast = app.view_functions[log_batch_view.STOCK_ENDPOINT]
            self.assertIs(fast.vw2_stock_view, stock)
            log_batch_view.install(app)
            self.assertIs(app.view_functions[log_batch_view.STOCK_ENDPOINT], fast)  # idempotent
            os.environ["_MLFLOW_SGI_NAME"] = "uvicorn"
            from fastapi import FastAPI

            self.assertIsInstance(create_app(), FastAPI)
        finally:
            app.view_functions[log_batch_view.STOCK_ENDPOINT] = stock
            os.environ.pop("_MLFLOW_SGI_NAME", None)
            if saved is not None:
                os.environ["_MLFLOW_SGI_NAME"] = saved


def _read(path):
    with open(path) as f:
        return f.read()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _metric_keys(body):
    """The metric keys a body names (whose histories the real-server test compares)."""
    metrics = body.get("metrics") if isinstance(body, dict) else None
    if not isinstance(metrics, list):
        return []
    return sorted({m["key"] for m in metrics if isinstance(m, dict) and isinstance(m.get("key"), str) and m["key"]})


class RealServers(unittest.TestCase):
    """`mlflow server` with MLflow's app and with vw2's, same store (the bulk store), over HTTP."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="vw2-log-batch-servers-")
        mlflow_bin = os.path.join(os.path.dirname(sys.executable), "mlflow")
        cls.servers = {}
        for which, extra in (("stock", []), ("fast", ["--app-name", "vw2-fast-log-batch"])):
            d = os.path.join(cls.dir, which)
            os.makedirs(d)
            port = _free_port()
            with open(os.path.join(d, "server.log"), "w") as log:
                proc = subprocess.Popen(
                    [mlflow_bin, "server", "--host", "127.0.0.1", "--port", str(port),
                     "--backend-store-uri", f"vw2-sqlite:///{d}/mlflow.db", "--registry-store-uri", f"sqlite:///{d}/mlflow.db",
                     "--artifacts-destination", f"{d}/artifacts", "--serve-artifacts", "--workers", "2", *extra],
                    cwd=d, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                    env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                )
            cls.servers[which] = {"url": f"http://127.0.0.1:{port}", "proc": proc, "log": os.path.join(d, "server.log")}
        deadline = time.time() + 180
        for server in cls.servers.values():
            while True:
                try:
                    urllib.request.urlopen(server["url"] + "/health", timeout=5).read()
                    break
                except (urllib.error.URLError, ConnectionError, OSError):
                    if server["proc"].poll() is not None or time.time() > deadline:
                        raise RuntimeError(f"mlflow server did not start: {_read(server['log'])[-3000:]}")
                    time.sleep(0.5)
            exp = cls.call(server, "POST", "/api/2.0/mlflow/experiments/create", {"name": "view"})
            server["experiment"] = json.loads(exp[2])["experiment_id"]

    @classmethod
    def tearDownClass(cls):
        for server in cls.servers.values():
            os.killpg(server["proc"].pid, 15)
            server["proc"].wait(30)
        shutil.rmtree(cls.dir, True)

    @staticmethod
    def call(server, method, path, body=None, content_type="application/json"):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = {} if content_type is None else {"Content-Type": content_type}
        request = urllib.request.Request(server["url"] + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                return r.status, r.headers.get("Content-Type"), r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type"), e.read()

    def new_run(self, server):
        out = self.call(server, "POST", "/api/2.0/mlflow/runs/create", {"experiment_id": server["experiment"], "start_time": T0})
        return json.loads(out[2])["run"]["info"]["run_id"]

    def test_the_fast_app_serves(self):
        self.assertIn("vw2: MLflow app with the fast log-batch view", _read(self.servers["fast"]["log"]))
        self.assertNotIn("vw2: MLflow app", _read(self.servers["stock"]["log"]))

    def test_same_responses_and_histories(self):
        cases = [(n, b) for n, b, _ in VALID] + [(n, b) for n, b, _ in STORE_REJECTS] + NOT_PLAIN
        for name, body in cases:
            with self.subTest(name):
                out = {}
                for which, server in self.servers.items():
                    run_id = self.new_run(server)
                    status, content_type, data = self.call(server, "POST", PATH, _encode(body, run_id))
                    keys = _metric_keys(body)
                    histories = {}
                    for key in keys:
                        h = self.call(server, "GET", f"/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key={urllib.parse.quote(key)}&max_results=25000", content_type=None)
                        histories[key] = (h[0], sorted(json.dumps(m, sort_keys=True) for m in json.loads(h[2]).get("metrics", [])) if h[0] == 200 else h[2])
                    out[which] = (status, content_type, data.replace(run_id.encode(), RUN.encode()), histories)
                self.assertEqual(out["fast"], out["stock"], name)


if __name__ == "__main__":
    unittest.main()
