"""A process stage that reports one of everything, and prints free-form text on stdout/stderr."""
import sys

import vw2_stage as stage

spec = stage.load()
print("free-form stdout line", flush=True)
print("free-form stderr line", file=sys.stderr, flush=True)
stage.log(f"config {spec.config['greeting']} seed {spec.seed} rank {spec.rank}/{spec.world_size}")
stage.progress(1, 3)
stage.progress(2, 3, "halfway")
stage.metrics({"train/loss": 0.25, "train/bad": float("nan")}, step=7, timestamp=1234)
out = spec.output("report")
(out / "plots").mkdir()
(out / "plots" / "loss.txt").write_text(spec.input("data").kind)
stage.upload(out / "plots" / "loss.txt")
stage.upload("report/summary.json")
stage.checkpointed(5, 10)
sys.exit(int(spec.config.get("exit", 0)))
