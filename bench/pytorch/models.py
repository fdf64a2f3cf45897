"""PyTorch twins of the new mini models' train steps (bench/models.ts TWINS): the dLDM warm-up step with the conv
U-Net decoder (@vw2/dldm), the mini VDM's pre-training step (@vw2/diffusion VideoDiT + the mini rectified-flow
objective) and the craft judge's step classifier (@vw2/eval StepClassifier + classifierLoss).

Reads {"twins": [{"name", "kind": "dldm" | "vdm" | "judge", "batch", "config", "optim"}], "budget_ms", "threads"}
on stdin; the configs are the decoded stage configs bench/run.ts takes from the TypeScript packages, so a twin
follows a preset change. Prints one JSON line per twin: parameter count (trainable) and the median train-step
time. Layer for layer the same networks (channels, kernels, norms, activations, attention widths, batch, frames,
resolution), written as a researcher would write them in PyTorch: NCHW convolutions, nn.GroupNorm,
F.scaled_dot_product_attention, nn.RMSNorm, broadcasting instead of tfjs's expand-by-matmul, q/k/v of a
self-attention from one Linear (the same parameters as @vw2/nn's wq/wk/wv, the fastest idiomatic layout), and
torch.optim.AdamW(fused=True) with the stages' hyper-parameters (decay on rank ≥ 2 parameters, as @vw2/nn's AdamW).
"""
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

# The dLDM and the parts the twins share live in python/vw2_torch (the PyTorch warm-up process stage trains the same
# model); the source tree is put on the path so the bench runs whether or not vw2_torch is pip-installed in the venv.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python" / "vw2_torch" / "src"))
from vw2_torch.dldm import Dldm, adamw, patchify, unpatchify  # noqa: E402


# ---- shared parts (the rest in vw2_torch.dldm) ----

def sinusoidal(pos: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """@vw2/nn sinusoidalEmbedding: [L] → [L, dim] = cos | sin."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(max_period) / half))
    args = pos.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], 1)


# ---- VDM (packages/diffusion: VideoDiT.ts, DiTBlock.ts, DiTAttention.ts, RectifiedFlow.ts) ----

class DiTAttention(nn.Module):
    """Bias-free q/k/v/output projections, per-head RMSNorm on q and k."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        if context_dim is None:
            self.qkv_proj = nn.Linear(dim, 3 * dim, bias=False)
        else:
            self.q_proj = nn.Linear(dim, dim, bias=False)
            self.kv_proj = nn.Linear(context_dim, 2 * dim, bias=False)
        self.output_proj = nn.Linear(dim, dim, bias=False)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        b, l, d = x.shape
        if context is None:
            q, k, v = self.qkv_proj(x).split(d, -1)
        else:
            q = self.q_proj(x)
            k, v = self.kv_proj(context).split(d, -1)
        heads = lambda t: t.view(b, -1, self.heads, self.head_dim).transpose(1, 2)
        o = F.scaled_dot_product_attention(self.q_norm(heads(q)), self.k_norm(heads(k)), heads(v))
        return self.output_proj(o.transpose(1, 2).reshape(b, l, d))


class AdaLN3(nn.Module):
    """emb [B, Tn, D] → shift, scale, gate [B, Tn, 1, D] (zero-initialised Linear, no LoRA at the mini preset)."""

    def __init__(self, d: int):
        super().__init__()
        self.up = nn.Linear(d, 3 * d, bias=False)
        nn.init.zeros_(self.up.weight)

    def forward(self, emb: torch.Tensor):
        return self.up(F.silu(emb))[:, :, None].chunk(3, -1)


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


class DiTBlock(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        d = c["width"]
        self.self_attn, self.ada_self = DiTAttention(d, c["heads"]), AdaLN3(d)
        self.cross_attn, self.ada_cross = DiTAttention(d, c["heads"], c["contextDim"]), AdaLN3(d)
        hidden = round(d * c["mlpRatio"])
        self.layer1, self.layer2, self.ada_mlp = nn.Linear(d, hidden, bias=False), nn.Linear(hidden, d, bias=False), AdaLN3(d)

    def forward(self, h: torch.Tensor, emb: torch.Tensor, context: torch.Tensor) -> torch.Tensor:  # h [B, Tn, P, D]
        b, tn, p, d = h.shape
        ln = lambda x: F.layer_norm(x, (d,), eps=1e-6)
        s1, c1, g1 = self.ada_self(emb)
        x = h + g1 * self.self_attn(modulate(ln(h), s1, c1).reshape(b, tn * p, d)).view(b, tn, p, d)
        s2, c2, g2 = self.ada_cross(emb)
        x = x + g2 * self.cross_attn(modulate(ln(x), s2, c2).reshape(b, tn * p, d), context).view(b, tn, p, d)
        s3, c3, g3 = self.ada_mlp(emb)
        return x + g3 * self.layer2(F.gelu(self.layer1(modulate(ln(x), s3, c3)), approximate="tanh"))


class VideoDiT(nn.Module):
    """diffusion VideoDiT without the control branch (vdm-pretrain): first-frame + condition-mask input channels,
    timestep MLP + RMSNorm, fixed 3D sin/cos positions, FA-CA-MLP blocks with per-frame AdaLN, final AdaLN layer."""

    def __init__(self, c: dict, frames: int, height: int, width: int):
        super().__init__()
        if c["control"]["enabled"] or c["adalnLoraDim"] != 0 or c["positionEncoding"] != "sincos" or c["concatPaddingMask"]:
            raise ValueError("the VDM twin mirrors the mini vdm-pretrain DiT: no control branch, no AdaLN-LoRA, sincos positions")
        self.c = c
        d, ps, pt, ch = c["width"], c["patchSpatial"], c["patchTemporal"], c["inChannels"]
        p = ps * ps * pt
        in_patch = (ch * (2 if c["firstFrameChannels"] else 1) + 1) * p
        self.x_embedder = nn.Linear(in_patch, d, bias=False)
        self.t_linear_1, self.t_linear_2 = nn.Linear(d, d), nn.Linear(d, d, bias=False)
        self.t_embedding_norm = nn.RMSNorm(d, eps=1e-6)
        # the code context's projections: parameters of the model, unused without codes (no gradient on either side)
        self.code_proj = nn.Linear(c["codeDim"], c["contextDim"])
        self.code_modulation = nn.Linear(2 * c["codeQueries"] * c["codeDim"], d, bias=False) if c["codeModulation"] else None
        self.blocks = nn.ModuleList(DiTBlock(c) for _ in range(c["depth"]))
        self.final_adaln_up = nn.Linear(d, 2 * d, bias=False)
        self.final_linear = nn.Linear(d, p * ch, bias=False)
        nn.init.zeros_(self.final_adaln_up.weight)
        nn.init.zeros_(self.final_linear.weight)
        self.rows, self.cols = height // ps, width // ps
        self.register_buffer("positions", self.video_positions(frames // pt, self.rows, self.cols, d)[None].view(1, frames // pt, self.rows * self.cols, d))

    @staticmethod
    def video_positions(frames: int, rows: int, cols: int, dim: int) -> torch.Tensor:
        dr = 2 * (dim // 6)
        i = torch.arange(frames * rows * cols)
        return torch.cat([sinusoidal(i // (rows * cols), dim - 2 * dr), sinusoidal((i // cols) % rows, dr), sinusoidal(i % cols, dr)], 1)

    def forward(self, x: torch.Tensor, time: torch.Tensor, cond_mask: torch.Tensor) -> torch.Tensor:  # x [B, T, C, H, W]
        c = self.c
        b, t, ch, h, w = x.shape
        channels = [x]
        if c["firstFrameChannels"]:
            channels.append((x[:, :1] * cond_mask[:, :1, None, None, None]).expand(-1, t, -1, -1, -1))
        channels.append(cond_mask[:, :, None, None, None].expand(-1, -1, 1, h, w))
        patches = patchify(torch.cat(channels, 2), c["patchTemporal"], c["patchSpatial"])  # [B, Tn, P, in_patch]
        tn = patches.shape[1]
        token_time = time[:, :: c["patchTemporal"]] * c["timeScale"]
        emb = sinusoidal(token_time.reshape(-1), c["width"]).view(b, tn, -1)
        emb = self.t_embedding_norm(self.t_linear_2(F.silu(self.t_linear_1(emb))))
        context = torch.zeros(b, 1, c["contextDim"])  # no codes in pre-training: the unconditional context
        hidden = self.x_embedder(patches) + self.positions
        for block in self.blocks:
            hidden = block(hidden, emb, context)
        shift, scale = self.final_adaln_up(F.silu(emb))[:, :, None].chunk(2, -1)
        out = self.final_linear(modulate(F.layer_norm(hidden, (c["width"],), eps=1e-6), shift, scale))
        return unpatchify(out, c["patchTemporal"], c["patchSpatial"], self.rows, self.cols, ch)


def flow_loss(net: VideoDiT, x0: torch.Tensor, o: dict) -> torch.Tensor:
    """RectifiedFlow.rectifiedFlowObjective with the mini objective's switches (edm scalings, residual, σ not frame-scaled)."""
    if o["preconditioning"] != "edm" or not o["residual"] or o["scaleSigmaByFrames"] or o["conditionFrames"] != 1:
        raise ValueError("the VDM twin mirrors miniFlowObjective (edm, residual, one condition frame)")
    b, t = x0.shape[:2]
    sigma = torch.exp(torch.randn(b) * o["pStd"] + o["pMean"])
    signal = x0 - x0[:, :1]
    s5 = sigma.view(b, 1, 1, 1, 1)
    x_sigma = signal + s5 * torch.randn_like(x0)
    d2 = o["sigmaData"] ** 2
    total = s5**2 + d2
    c_in, c_skip, c_out = total.rsqrt(), d2 / total, s5 * o["sigmaData"] * total.rsqrt()
    cond = torch.zeros(t)
    cond[0] = 1
    keep = (1 - cond).view(1, t, 1, 1, 1)
    net_in = cond.view(1, t, 1, 1, 1) * x0 + keep * (c_in * x_sigma)
    time = (1 - cond)[None] * (sigma / (1 + sigma))[:, None] + cond[None] * o["conditionFrameTime"]
    pred = c_skip * x_sigma + c_out * net(net_in, time, cond[None].expand(b, t))
    sq = (pred - signal) ** 2 * keep  # the condition frame carries no loss
    weight = (s5**2 + d2) / (s5**2 * d2)
    return (sq * weight).sum() / (x0.numel() / t * (t - 1))


# ---- judge (packages/eval/src/judge/StepClassifier.ts) ----

class StepClassifier(nn.Module):
    """Per-frame standardisation → 3×3 stem → stride-2 3×3 stages to 4×4 → fc → per-task logits; hand mask from the half-resolution map."""

    def __init__(self, c: dict):
        super().__init__()
        self.tasks, self.classes = c["tasks"], c["classes"]
        convs, ch, size = [nn.Conv2d(3, c["channels"], 3, padding=1)], c["channels"], max(c["height"], c["width"])
        while size > 4:
            nxt = min(c["maxChannels"], ch * 2)
            convs.append(nn.Conv2d(ch, nxt, 3, stride=2, padding=1))  # tfjs "same" pads 0/1, PyTorch 1/1: same shapes and cost
            ch, size = nxt, math.ceil(size / 2)
        self.convs = nn.ModuleList(convs)
        self.fc = nn.Linear(size * size * ch, c["hidden"])
        self.states = nn.Linear(c["hidden"], self.tasks * self.classes)
        self.hand_conv = nn.Conv2d(convs[1].out_channels, 16, 3, padding=1)
        self.hand_out = nn.Conv2d(16, 1, 1)

    def forward(self, frames: torch.Tensor):  # [B, 3, H, W] in [0, 1]
        var, mean = torch.var_mean(frames, dim=(1, 2, 3), keepdim=True, correction=0)
        x = (frames - mean) / torch.sqrt(var + 1e-4)
        half = None
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i == 1:
                half = x
        logits = self.states(F.relu(self.fc(x.flatten(1)))).view(-1, self.tasks, self.classes)
        return logits, self.hand_out(F.relu(self.hand_conv(half)))[:, 0]


def judge_loss(model: StepClassifier, batch: dict, hand_weight: float) -> torch.Tensor:
    """StepClassifier.classifierLoss: weighted per-head cross-entropy + weighted per-pixel BCE of the hand mask."""
    logits, hand = model(batch["frames"])
    labels = batch["labels"]
    nll = F.cross_entropy(logits.flatten(0, 1), labels.clamp(min=0).flatten(), reduction="none").view(labels.shape)
    w = batch["weights"] * (labels >= 0).float()
    ce = (nll * w).sum() / w.sum().clamp(min=1e-6)
    bce = F.binary_cross_entropy_with_logits(hand, batch["hand"], reduction="none")
    per_frame = (bce * (1 + batch["hand"] * 4)).mean((1, 2))  # hand pixels weigh 5×
    hand_loss = (per_frame * batch["hand_weights"]).sum() / batch["hand_weights"].sum().clamp(min=1e-6)
    return ce + hand_loss * hand_weight


# ---- timing ----

def build(twin: dict):
    """→ (model, loss closure, clip norm or None)."""
    kind, c, b = twin["kind"], twin["config"], twin["batch"]
    g = torch.Generator().manual_seed(3)
    if kind == "dldm":
        model = Dldm(c)
        video = torch.rand(b, c["frames"], 3, c["height"], c["width"], generator=g)
        return model, lambda: model.warmup_loss(video)
    if kind == "vdm":
        clip = twin["clip"]
        model = VideoDiT(c, clip["length"], clip["height"], clip["width"])
        x0 = torch.rand(b, clip["length"], c["inChannels"], clip["height"], clip["width"], generator=g) * 2 - 1
        return model, lambda: flow_loss(model, x0, twin["objective"])
    if kind == "judge":
        model = StepClassifier(c)
        h2, w2 = math.ceil(c["height"] / 2), math.ceil(c["width"] / 2)
        batch = {
            "frames": torch.rand(b, 3, c["height"], c["width"], generator=g),
            "labels": torch.randint(-1, c["classes"], (b, c["tasks"]), generator=g),
            "weights": torch.rand(b, c["tasks"], generator=g),
            "hand": (torch.rand(b, h2, w2, generator=g) < 0.05).float(),
            "hand_weights": torch.ones(b),
        }
        return model, lambda: judge_loss(model, batch, twin["handWeight"])
    raise ValueError(f"unknown twin kind {kind}")


def time_twin(twin: dict, budget_ms: float, warmup: int = 3, min_steps: int = 5, max_steps: int = 60) -> dict:
    torch.manual_seed(0)
    model, loss_fn = build(twin)
    model.train()
    opt = adamw(model, twin["optim"])
    clip = twin["optim"].get("clipNorm") or None
    params = [p for p in model.parameters() if p.requires_grad]

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        return loss.item()

    first = step()
    for _ in range(warmup - 1):
        step()
    times, cpu, last, start = [], [], first, time.perf_counter()
    while len(times) < max_steps and (len(times) < min_steps or (time.perf_counter() - start) * 1e3 < budget_ms):
        t0, c0 = time.perf_counter(), time.process_time()  # process CPU time of all threads, as bench/models.ts timeTwin
        last = step()
        cpu.append((time.process_time() - c0) * 1e3)
        times.append((time.perf_counter() - t0) * 1e3)
    step_ms = statistics.median(times)
    return {
        "kind": "twin", "name": twin["name"], "backend": f"pytorch {torch.__version__}", "params": sum(p.numel() for p in params),
        "steps": len(times), "stepMs": step_ms, "cpuMs": statistics.median(cpu), "samplesPerSec": twin["batch"] / (step_ms / 1e3),
        "firstLoss": first, "lastLoss": last,
    }


def main() -> None:
    request = json.load(sys.stdin)
    if request.get("threads"):
        torch.set_num_threads(request["threads"])
    print(json.dumps({"kind": "info", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "cpu_capability": torch.backends.cpu.get_cpu_capability()}), flush=True)
    for twin in request["twins"]:
        print(json.dumps(time_twin(twin, request.get("budget_ms", 4000))), flush=True)


if __name__ == "__main__":
    main()
