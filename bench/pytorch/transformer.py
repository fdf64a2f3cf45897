"""PyTorch-CPU reference for bench/models.ts: the same pre-LN transformer train step from the same spec.

Reads a JSON object {"specs": [...], "budget_ms": N, "matmul": [n, ...]} on stdin (written by bench/run.ts
from bench/models.ts SPECS), prints one JSON object per line: {"kind": "train", ...} per spec and
{"kind": "matmul", ...} per size. Idiomatic PyTorch, as a researcher would write it: nn.Linear, nn.LayerNorm,
F.scaled_dot_product_attention, GELU (tanh form, as in the tfjs model), torch.optim.Adam, all CPU threads.
The block is @vw2/nn's (bench/models.ts BenchBlock): LayerNorm → multi-head attention → residual → LayerNorm →
Mlp (Linear, tanh-GELU, Linear) → residual; final LayerNorm. q/k/v come from one Linear(D, 3D), the same
function as @vw2/nn's separate wq/wk/wv (its weight is their concatenation) written the fastest idiomatic way
(nanoGPT's c_attn): the reference gets PyTorch at its best, not a copy of our parameter layout.
"""
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: int, causal: bool):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.norm1 = nn.LayerNorm(width, eps=1e-5)
        self.qkv = nn.Linear(width, 3 * width)  # = [wq | wk | wv] of @vw2/nn's MultiHeadAttention
        self.out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, eps=1e-5)
        self.up = nn.Linear(width, mlp_ratio * width)
        self.down = nn.Linear(mlp_ratio * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, T, D]
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(d, dim=-1)
        heads = lambda m: m.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # [B, H, T, dh]
        mixed = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=self.causal)
        x = x + self.out(mixed.transpose(1, 2).reshape(b, t, d))
        return x + self.down(F.gelu(self.up(self.norm2(x)), approximate="tanh"))


class Transformer(nn.Module):
    def __init__(self, spec: dict):
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(spec["width"], spec["heads"], spec["mlpRatio"], spec["causal"]) for _ in range(spec["depth"])
        )
        self.norm = nn.LayerNorm(spec["width"], eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


def train_step_flops(s: dict) -> float:
    """Same count as bench/models.ts trainStepFlops."""
    rows = s["batch"] * s["tokens"]
    dense = 2 * rows * (4 + 2 * s["mlpRatio"]) * s["width"] ** 2
    attention = 2 * 2 * s["batch"] * s["tokens"] ** 2 * s["width"]
    return 3 * s["depth"] * (dense + attention)


def time_train(spec: dict, budget_ms: float, warmup: int = 2, min_steps: int = 3, max_steps: int = 30) -> dict:
    torch.manual_seed(0)
    model = Transformer(spec)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(spec["batch"], spec["tokens"], spec["width"])
    target = torch.randn_like(x)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x), target)
        loss.backward()
        opt.step()
        return loss.item()

    first = step()
    for _ in range(warmup - 1):
        step()
    times, last, start = [], first, time.perf_counter()
    while len(times) < max_steps and (len(times) < min_steps or (time.perf_counter() - start) * 1e3 < budget_ms):
        t0 = time.perf_counter()
        last = step()
        times.append((time.perf_counter() - t0) * 1e3)
    step_ms = statistics.median(times)
    return {
        "kind": "train", "spec": spec["name"], "backend": f"pytorch {torch.__version__}", "steps": len(times),
        "stepMs": step_ms, "samplesPerSec": spec["batch"] / (step_ms / 1e3),
        "gflops": train_step_flops(spec) / (step_ms / 1e3) / 1e9, "firstLoss": first, "lastLoss": last,
    }


def time_matmul(n: int, reps: int = 5) -> dict:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)  # as bench/models.ts matmulGflops
    return {"kind": "matmul", "n": n, "backend": f"pytorch {torch.__version__}", "gflops": 2 * n**3 / median / 1e9}


def main() -> None:
    request = json.load(sys.stdin)
    print(json.dumps({"kind": "info", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "cpu_capability": torch.backends.cpu.get_cpu_capability()}), flush=True)
    for n in request.get("matmul", []):
        print(json.dumps(time_matmul(n)), flush=True)
    for spec in request["specs"]:
        print(json.dumps(time_train(spec, request.get("budget_ms", 4000))), flush=True)


if __name__ == "__main__":
    main()
