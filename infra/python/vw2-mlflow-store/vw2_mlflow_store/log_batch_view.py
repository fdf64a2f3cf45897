"""A faster view for `POST /api/2.0/mlflow/runs/log-batch` that answers exactly like MLflow's own.

Why: of the ~36 ms of server CPU a 1000-metric log-batch costs (packages/tracking/README.md,
"Throughput"), ~12 ms go into turning the JSON body into entities: protobuf's pure-Python
`json_format.ParseDict` walks all 1000 metric objects field by field (~9 ms), MLflow's
`_reject_conflicting_field_aliases` walks them again (~2.5 ms), then `Metric.from_proto` reads each
field back out of the message (~1 ms). For the bodies clients actually send, the result of that walk is
known without protobuf: a `Metric(key, float(value), timestamp, step)` per JSON object.

So the view reads the body with MLflow's own `_get_request_json` and checks that it is *plain*: exactly
the shapes for which the stock parse provably succeeds, MLflow's request schema passes, and the entities
are the ones built here (see `_plain_batch`). A plain body goes straight to the same store call
(`log_batch`, which runs all of MLflow's entity validation) and gets the same response; anything else —
wrong content type, non-object JSON, unknown or camelCase fields, nulls, bools, numeric strings, bare
NaN/Infinity, out-of-range integers, unpaired surrogates, missing or empty required fields — is handed to
MLflow's stock view unchanged, so every rejection (status, error_code, message) is MLflow's own.
tests/test_log_batch_view.py checks both against the stock view on the same inputs.
"""

import math
import re

__all__ = ["install", "plain_batch", "STOCK_ENDPOINT"]

# The Flask endpoint MLflow registers the log-batch view under (both /api/2.0 and /ajax-api/2.0 paths).
STOCK_ENDPOINT = "_log_batch"

_METRIC_FIELDS = frozenset(("key", "value", "timestamp", "step"))
_ENTITY_FIELDS = frozenset(("key", "value"))
_BATCH_FIELDS = frozenset(("run_id", "metrics", "params", "tags"))
# protobuf's JSON mapping of non-finite doubles; `float()` of these strings is exactly what
# json_format._ConvertFloat returns for them
_NON_FINITE = frozenset(("NaN", "Infinity", "-Infinity"))
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
# json_format rejects strings with unpaired surrogates (ParseError); any surrogate here means "not plain"
_SURROGATE = re.compile("[\ud800-\udfff]")


def _plain_string(value, allow_empty=False):
    """A str the protobuf string field takes as is (and, unless allowed, non-empty: MLflow's
    `_assert_required` rejects "" for required keys)."""
    return (
        type(value) is str
        and (allow_empty or value != "")
        and (value.isascii() or _SURROGATE.search(value) is None)
    )


def _plain_int64(value):
    return type(value) is int and _INT64_MIN <= value <= _INT64_MAX


def plain_batch(request_json):
    """(run_id, metrics, params, tags) as MLflow's stock parse would build them, or None when the body is
    not plain (then the stock view must handle it).

    Plain means, field by field, what the stock path (`_get_request_message(LogBatch(), schema)` then
    `X.from_proto`) accepts without error and maps one to one:
    - the body is a JSON object whose fields are among run_id, metrics, params, tags (no json_name
      aliases such as runId, no unknown fields: ParseDict would ignore or merge those);
    - run_id: a non-empty string (schema: `_assert_string`, `_assert_required`);
    - metrics / params / tags: absent or arrays (absent = empty, as a repeated proto field);
    - a metric: an object with key (non-empty string), value, timestamp and optionally step (proto default 0),
      nothing else; value a finite JSON number or one of "NaN", "Infinity", "-Infinity" (json_format's
      spellings; `float()` of them, like json_format), an integer value within int64 (then float(value),
      as json_format does); timestamp and step JSON integers within int64 (no floats, no strings, no bools);
    - a param / tag: an object with exactly key (non-empty string) and value (string).
    """
    # imported here: the `mlflow.app` entry point module must stay light for the `mlflow server` CLI
    from mlflow.entities import Metric, Param, RunTag

    if type(request_json) is not dict or not request_json.keys() <= _BATCH_FIELDS:
        return None
    run_id = request_json.get("run_id")
    if not _plain_string(run_id):
        return None
    raw_metrics = request_json.get("metrics", [])
    raw_params = request_json.get("params", [])
    raw_tags = request_json.get("tags", [])
    if type(raw_metrics) is not list or type(raw_params) is not list or type(raw_tags) is not list:
        return None

    metrics = []
    plain_keys = set()
    isfinite = math.isfinite
    for m in raw_metrics:
        if type(m) is not dict or not m.keys() <= _METRIC_FIELDS:
            return None
        key = m.get("key")
        if type(key) is not str:
            return None
        if key not in plain_keys:
            if not _plain_string(key):
                return None
            plain_keys.add(key)
        value = m.get("value")
        value_type = type(value)
        if value_type is float:
            if not isfinite(value):  # bare NaN / Infinity in the JSON: json_format refuses them
                return None
        elif value_type is int:
            if not _INT64_MIN <= value <= _INT64_MAX:
                return None
            value = float(value)
        elif value_type is str and value in _NON_FINITE:
            value = float(value)  # a new float per point, as each proto read-back gives
        else:
            return None
        timestamp = m.get("timestamp")
        if not _plain_int64(timestamp):
            return None
        step = m.get("step", 0)
        if not _plain_int64(step):
            return None
        metrics.append(Metric(key, value, timestamp, step))

    params = _plain_key_values(raw_params, Param)
    tags = _plain_key_values(raw_tags, RunTag)
    if params is None or tags is None:
        return None
    return run_id, metrics, params, tags


def _plain_key_values(raw, entity):
    out = []
    for item in raw:
        if (
            type(item) is not dict
            or item.keys() != _ENTITY_FIELDS
            or not _plain_string(item["key"])
            or not _plain_string(item["value"], allow_empty=True)
        ):
            return None
        out.append(entity(item["key"], item["value"]))
    return out


def fast_view(stock_view):
    """The log-batch view: plain bodies parsed here, everything else by `stock_view` (MLflow's own)."""
    from flask import Response
    from mlflow.exceptions import MlflowException
    from mlflow.protos.service_pb2 import LogBatch
    from mlflow.server.handlers import (
        _disable_if_artifacts_only,
        _get_request_json,
        _get_tracking_store,
        catch_mlflow_exception,
    )
    from mlflow.utils.proto_json_utils import message_to_json
    from mlflow.utils.validation import _validate_batch_log_api_req

    # the stock view's response body for success ("{}"), built the same way
    ok_body = message_to_json(LogBatch.Response())

    # same decorators, same order as the stock view: MlflowException -> MLflow's JSON error response,
    # 503 in --artifacts-only mode
    @catch_mlflow_exception
    @_disable_if_artifacts_only
    def _log_batch():
        try:
            request_json = _get_request_json()
        except MlflowException:
            return stock_view()  # e.g. a wrong Content-Type: the stock view reports it
        batch = plain_batch(request_json)
        if batch is None:
            return stock_view()
        run_id, metrics, params, tags = batch
        # the stock view's checks, in its order; its request schema passes for every plain body
        _validate_batch_log_api_req(request_json)
        _get_tracking_store().log_batch(run_id=run_id, metrics=metrics, params=params, tags=tags)
        response = Response(mimetype="application/json")
        response.set_data(ok_body)
        return response

    _log_batch.vw2_stock_view = stock_view
    return _log_batch


def install(flask_app):
    """Replaces MLflow's log-batch view in `flask_app` (all its paths, Flask hooks unchanged). Idempotent."""
    current = flask_app.view_functions.get(STOCK_ENDPOINT)
    if current is None:
        raise RuntimeError(
            f"vw2_mlflow_store: the MLflow app has no '{STOCK_ENDPOINT}' endpoint; this view is written "
            "for mlflow==3.17.2 (infra/python/requirements-mlflow.txt)"
        )
    if getattr(current, "vw2_stock_view", None) is not None:
        return
    flask_app.view_functions[STOCK_ENDPOINT] = fast_view(current)
