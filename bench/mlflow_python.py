"""Python-client side of bench/mlflow.ts: metric points/second into the same MLflow server.

    python bench/mlflow_python.py <tracking_uri> <log_metric|log_batch> <points>

Prints one JSON line {"mode", "points", "seconds"}; counts only the logging calls.
"""
import json
import sys
import time

from mlflow import MlflowClient
from mlflow.entities import Metric

uri, mode, points = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = MlflowClient(tracking_uri=uri)
exp = client.get_experiment_by_name("bench-python")
exp_id = exp.experiment_id if exp else client.create_experiment("bench-python")
run = client.create_run(exp_id, run_name=f"python-{mode}")
run_id = run.info.run_id
now = int(time.time() * 1000)

start = time.perf_counter()
if mode == "log_metric":
    for i in range(points):
        client.log_metric(run_id, "loss", 1.0 / (i + 1), timestamp=now + i, step=i)
elif mode == "log_batch":
    metrics = [Metric("loss", 1.0 / (i + 1), now + i, i) for i in range(points)]
    client.log_batch(run_id, metrics=metrics)  # the client splits it into requests of 1000
else:
    raise SystemExit(f"unknown mode {mode}")
seconds = time.perf_counter() - start
client.set_terminated(run_id)
print(json.dumps({"mode": mode, "points": points, "seconds": seconds, "run_id": run_id}))
