"""A small torch training loop on the checkpoint helper: checkpoint every config.every steps into the resume dir,
resume from the newest valid one, random data drawn from the global RNGs (so a resume is only exact when the
checkpoint restored them), final weights to output `model`."""
import time

import torch

import vw2_stage as stage
from vw2_stage.checkpoint import Checkpoints

spec = stage.load()
torch.set_num_threads(1)
torch.manual_seed(spec.seed)
c = spec.config
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
ckpts = Checkpoints(spec.resume_dir)
restored = ckpts.load_latest(model=model, optimizer=opt)
start = restored.step if restored else 0
if restored:
    print(f"resumed from checkpoint at step {start} data position {restored.data_position}", flush=True)
for step in range(start, c["steps"]):
    x = torch.randn(32, 8)  # global RNG: exact only if the checkpoint restored it
    loss = ((model(x) - x.sum(1, keepdim=True).sin()) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    stage.metrics({"train/loss": loss.item()}, step)
    if (step + 1) % c["every"] == 0:
        ckpts.save(step + 1, model=model, optimizer=opt, data_position=step + 1, total=c["steps"])
    time.sleep(c.get("sleep", 0))
torch.save(model.state_dict(), spec.output("model") / "model.pt")
