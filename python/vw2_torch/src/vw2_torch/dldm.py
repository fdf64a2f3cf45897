"""The mini dLDM in PyTorch (docs/paper.md "dLDM"; packages/dldm: Encoder.ts, VideoBlock.ts, QFormer.ts,
LatentNorm.ts, @vw2/nn Fsq.ts, ConvUNetDecoder.ts, Dldm.ts): causal video encoder → Q-Former queries per transition →
latent norm → FSQ codes → conv U-Net decoder rendering each transition from the previous frame.

Layer for layer the networks of the tfjs package (channels, kernels, norms, activations, attention widths), written
as a researcher would write them in PyTorch: NCHW convolutions, nn.GroupNorm, F.scaled_dot_product_attention,
q/k/v of a self-attention from one Linear. It mirrors the mini preset's choices only (conv-unet decoder, batch
latent norm, attention temporal mixing) and says so when a config asks for another. bench/pytorch/models.py
times its warm-up step against the tfjs one; vw2_torch.dldm_warmup trains it as a process stage.

Axis legend: B batch, T frames, K latent frames, J = K−1 transitions, N queries, S tokens per latent frame, D width.
"""
import math

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


# ---- shared parts ----

class Attention(nn.Module):
    """@vw2/nn MultiHeadAttention (wq/wk/wv/wo with bias): self-attention packs q/k/v in one Linear, cross-attention k/v."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None):
        super().__init__()
        self.heads = heads
        if context_dim is None:
            self.qkv = nn.Linear(dim, 3 * dim)
        else:
            self.q = nn.Linear(dim, dim)
            self.kv = nn.Linear(context_dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        b, l, d = x.shape
        if context is None:
            q, k, v = self.qkv(x).split(d, -1)
        else:
            q = self.q(x)
            k, v = self.kv(context).split(d, -1)
        heads = lambda t: t.view(b, -1, self.heads, d // self.heads).transpose(1, 2)  # [B, H, L, dh]
        o = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=is_causal)
        return self.out(o.transpose(1, 2).reshape(b, l, d))


class Mlp(nn.Module):
    """@vw2/nn Mlp: Linear → GELU (tanh) → Linear."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


def haar_matrix(n: int) -> torch.Tensor:
    """Orthonormal Haar matrix (as @vw2/nn haarMatrix)."""
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < n:
        m = h.shape[0]
        top = torch.kron(h, torch.tensor([[1.0, 1.0]], dtype=torch.float64))
        bottom = torch.kron(torch.eye(m, dtype=torch.float64), torch.tensor([[1.0, -1.0]], dtype=torch.float64))
        h = torch.cat([top, bottom]) * math.sqrt(0.5)
    return h


def haar_patch_matrix(t: int, s: int, channels: int) -> torch.Tensor:
    """@vw2/nn haarPatchMatrix: (H_t ⊗ H_s ⊗ H_s ⊗ I_C)ᵀ over (pt, ps, ps, C) patch vectors."""
    m = torch.kron(torch.kron(torch.kron(haar_matrix(t), haar_matrix(s)), haar_matrix(s)), torch.eye(channels, dtype=torch.float64))
    return m.T.float().contiguous()


def patchify(x: torch.Tensor, t: int, s: int) -> torch.Tensor:
    """[B, T, C, H, W] → [B, T/t, (H/s)(W/s), t·s·s·C], patch vectors ordered (pt, ps_y, ps_x, C) as @vw2/nn patchify."""
    b, f, c, h, w = x.shape
    x = x.view(b, f // t, t, c, h // s, s, w // s, s).permute(0, 1, 4, 6, 2, 5, 7, 3)
    return x.reshape(b, f // t, (h // s) * (w // s), t * s * s * c)


def unpatchify(tokens: torch.Tensor, t: int, s: int, rows: int, cols: int, c: int) -> torch.Tensor:
    """Inverse of patchify: [B, Tn, rows·cols, t·s·s·C] → [B, Tn·t, C, rows·s, cols·s]."""
    b, tn = tokens.shape[:2]
    x = tokens.view(b, tn, rows, cols, t, s, s, c).permute(0, 1, 4, 7, 2, 5, 3, 6)
    return x.reshape(b, tn * t, c, rows * s, cols * s)




def adamw(model: nn.Module, optim: dict) -> torch.optim.AdamW:
    """@vw2/nn AdamW: weight decay on parameters of rank ≥ 2 only. fused=True: PyTorch's fastest AdamW on CPU
    (one kernel over all parameters, as @vw2/native's fused op on the tfjs side); the default per-parameter
    loop measured 18 ms vs 3–9 ms a step for the dLDM's 176 parameter tensors here."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": optim["weightDecay"]},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=optim["lr"], betas=(optim["beta1"], optim["beta2"]), eps=optim.get("eps", 1e-8), fused=True)




# ---- dLDM (packages/dldm: Encoder.ts, QFormer.ts, LatentNorm.ts, Fsq.ts, ConvUNetDecoder.ts, Dldm.ts) ----

class VideoBlock(nn.Module):
    """dldm VideoBlock: spatial attention per latent frame, causal temporal attention per token, MLP (pre-LN)."""

    def __init__(self, d: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1, self.spatial = nn.LayerNorm(d), Attention(d, heads)
        self.norm2, self.temporal = nn.LayerNorm(d), Attention(d, heads)
        self.norm3, self.mlp = nn.LayerNorm(d), Mlp(d, round(mlp_ratio * d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, K, S, D]
        b, k, s, d = x.shape
        x = x + self.spatial(self.norm1(x).reshape(b * k, s, d)).view(b, k, s, d)
        per_token = self.norm2(x).transpose(1, 2).reshape(b * s, k, d)  # one time series per token
        x = x + self.temporal(per_token, is_causal=True).view(b, s, k, d).transpose(1, 2)
        return x + self.mlp(self.norm3(x))


class Encoder(nn.Module):
    """dldm CausalVideoEncoder: frame 0 padded, Haar-fused patch embedding + frame-difference embedding, positions, blocks."""

    def __init__(self, c: dict):
        super().__init__()
        self.tc, self.s, self.gain = c["temporalCompression"], c["spatialCompression"], c["frameDiff"]
        e = c["encoder"]
        d = e["width"]
        k = 1 + (c["frames"] - 1) // self.tc
        tokens = (c["height"] // self.s) * (c["width"] // self.s)
        patch = self.tc * self.s * self.s * 3
        self.embed = nn.Linear(patch, d)
        self.embed_diff = nn.Linear(patch, d) if self.gain > 0 else None
        self.spatial_pos = nn.Parameter(torch.randn(tokens, d) * 0.02)
        self.temporal_pos = nn.Parameter(torch.randn(k, d) * 0.02)
        self.blocks = nn.ModuleList(VideoBlock(d, e["heads"], e["mlpRatio"]) for _ in range(e["depth"]))
        self.norm_out = nn.LayerNorm(d)
        self.register_buffer("haar", haar_patch_matrix(self.tc, self.s, 3) if c["patching"] == "haar" else torch.eye(patch))

    def pad_first(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[:, :1].expand(-1, self.tc - 1, -1, -1, -1), x], 1)

    def forward(self, video: torch.Tensor) -> torch.Tensor:  # [B, T, 3, H, W] in [0, 1] → [B, K, S, D]
        x = self.pad_first(video * 2 - 1)
        # Haar fused into the embedding, as PatchTransform.projectIn: tokens · (H · W)
        h = F.linear(patchify(x, self.tc, self.s), self.embed.weight @ self.haar.T, self.embed.bias)
        if self.embed_diff is not None:
            x2 = self.pad_first(video * 2)
            prev = torch.cat([x2[:, :1], x2[:, :-1]], 1)
            h = h + self.embed_diff(patchify((x2 - prev) * self.gain, self.tc, self.s))
        h = h + self.spatial_pos + self.temporal_pos[: h.shape[1], None]
        for block in self.blocks:
            h = block(h)
        return self.norm_out(h)


class QFormerLayer(nn.Module):
    def __init__(self, d: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1, self.self_attn = nn.LayerNorm(d), Attention(d, heads)
        self.norm2, self.norm_ctx, self.cross_attn = nn.LayerNorm(d), nn.LayerNorm(d), Attention(d, heads, context_dim=d)
        self.norm3, self.mlp = nn.LayerNorm(d), Mlp(d, round(mlp_ratio * d))

    def forward(self, q: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        h = q + self.self_attn(self.norm1(q))
        h = h + self.cross_attn(self.norm2(h), self.norm_ctx(context))
        return h + self.mlp(self.norm3(h))


class QFormer(nn.Module):
    """dldm QFormer: N queries per transition over [f_{j}, f_{j+1}(, f_{j+1} − f_j)] with role embeddings."""

    def __init__(self, c: dict):
        super().__init__()
        d, q = c["encoder"]["width"], c["qformer"]
        self.with_diff = q["context"] == "pair-diff"
        self.queries = nn.Parameter(torch.randn(c["queries"], d) * q["queryInit"])
        self.role = nn.Parameter(torch.randn(3 if self.with_diff else 2, d) * 0.02)
        self.layers = nn.ModuleList(QFormerLayer(d, q["heads"], c["encoder"]["mlpRatio"]) for _ in range(q["depth"]))
        self.norm_out = nn.LayerNorm(d)
        self.to_code = nn.Linear(d, len(c["fsqLevels"]))

    def forward(self, f: torch.Tensor) -> torch.Tensor:  # [B, K, S, D] → z [B, K−1, N, levels]
        b, k, s, d = f.shape
        f0, f1 = f[:, :-1], f[:, 1:]
        parts = [f0 + self.role[0], f1 + self.role[1]] + ([f1 - f0 + self.role[2]] if self.with_diff else [])
        context = torch.cat(parts, 2).reshape(b * (k - 1), len(parts) * s, d)
        q = self.queries.expand(b * (k - 1), -1, -1)
        for layer in self.layers:
            q = layer(q, context)
        return self.to_code(self.norm_out(q)).view(b, k - 1, self.queries.shape[0], -1)


class FSQ(nn.Module):
    """@vw2/nn FSQ (release formula): tanh bound, straight-through rounding, indices by mixed radix. Constants are
    non-persistent buffers: they follow the module to its device and stay out of the checkpoint."""

    def __init__(self, levels: list[int], eps: float = 1e-3):
        super().__init__()
        half = torch.tensor([(l - 1) * (1 + eps) / 2 for l in levels])
        offset = torch.tensor([0.5 if l % 2 == 0 else 0.0 for l in levels])
        basis, acc = [], 1
        for l in levels:
            basis.append(acc)
            acc *= l
        self.register_buffer("half_range", half, persistent=False)
        self.register_buffer("offset", offset, persistent=False)
        self.register_buffer("shift", torch.atanh(offset / half), persistent=False)
        self.register_buffer("half_width", torch.tensor([float(l // 2) for l in levels]), persistent=False)
        self.register_buffer("basis", torch.tensor(basis, dtype=torch.float32), persistent=False)

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        bounded = torch.tanh(z + self.shift) * self.half_range - self.offset
        return (bounded + (bounded.round() - bounded).detach()) / self.half_width

    def indices(self, codes: torch.Tensor) -> torch.Tensor:
        return ((codes * self.half_width + self.half_width).round() * self.basis).sum(-1).int()


def _all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Σ over ranks with a gradient (the backward of a sum all-reduce is a sum all-reduce); identity in one process."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        from torch.distributed._functional_collectives import all_reduce  # differentiable (PyTorch's advice over the deprecated torch.distributed.nn)

        return all_reduce(x, "sum", dist.group.WORLD)
    return x


class LatentNorm(nn.Module):
    """dldm LatentNorm: per (query slot, code dimension) standardisation with the batch's statistics over (clips,
    transitions) in training, running averages (momentum 0.99, population variance, as tf.moments) otherwise, no
    affine; `running_in_train` (a saved buffer) switches training to the running statistics too.

    Under DDP the batch statistics are those of the global batch (Σ and Σ(z − mean)² all-reduced, with gradient,
    SyncBatchNorm-style, which PyTorch ships for GPUs only): each rank's shard is then normalised exactly as in one
    process with the whole batch, so k-process training equals single-process training."""

    def __init__(self, queries: int, dim: int, momentum: float = 0.99, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(queries, dim))
        self.register_buffer("running_var", torch.ones(queries, dim))
        self.register_buffer("running_in_train", torch.zeros(1))

    def use_running_statistics(self) -> None:
        self.running_in_train.fill_(1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z [B, J, N, L]
        if not self.training:
            return (z - self.running_mean) / torch.sqrt(self.running_var + self.eps)
        rows = z.reshape(-1, *z.shape[2:])  # [B·J, N, L]
        count = _all_reduce_sum(torch.tensor(float(rows.shape[0]), device=z.device))
        mean = _all_reduce_sum(rows.sum(0)) / count
        var = _all_reduce_sum(((rows - mean) ** 2).sum(0)) / count  # two passes: as tf.moments, no cancellation
        if self.running_in_train.item() > 0.5:
            # the running values before this step's update, as LatentNorm.ts; no gradient through them
            used_mean, used_var = self.running_mean.clone(), self.running_var.clone()
        else:
            used_mean, used_var = mean, var
        with torch.no_grad():
            self.running_mean.mul_(self.momentum).add_(mean.detach() * (1 - self.momentum))
            self.running_var.mul_(self.momentum).add_(var.detach() * (1 - self.momentum))
        return (z - used_mean) / torch.sqrt(used_var + self.eps)


class FiLMBlock(nn.Module):
    """ConvUNetDecoder FiLMBlock: [×2 nearest] conv → GN → FiLM(z) → SiLU, then residual conv → GN → SiLU."""

    def __init__(self, cin: int, cout: int, code_dim: int, groups: int, down: bool = False, up: bool = False):
        super().__init__()
        self.up = up
        # tfjs "same" padding: kernel 4 stride 2 pads 1 each side, kernel 3 stride 1 pads 1
        self.conv = nn.Conv2d(cin, cout, 4 if down else 3, stride=2 if down else 1, padding=1)
        self.norm = nn.GroupNorm(groups, cout)
        self.film = nn.Linear(code_dim, 2 * cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # x [M, C, H, W], z [M, Z]
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        h0 = self.norm(self.conv(x))
        scale, shift = self.film(z)[:, :, None, None].chunk(2, 1)
        h = F.silu(h0 * (1 + scale) + shift)
        return F.silu(self.norm2(self.conv2(h))) + h


def gn_groups(c: int) -> int:
    return next(g for g in range(8, 0, -1) if c % g == 0)


class ConvUNetDecoder(nn.Module):
    """dldm ConvUNetDecoder: FiLM U-Net on the previous frame, gated copy output (tc frames per transition)."""

    def __init__(self, c: dict):
        super().__init__()
        o = c["decoder"]
        self.tc, self.gated, levels = c["temporalCompression"], o["output"] == "gated", o["levels"]
        code_dim = c["queries"] * len(c["fsqLevels"])
        ch = lambda i: o["channels"] * min(2**i, 4)
        block = lambda cin, cout, **kw: FiLMBlock(cin, cout, code_dim, gn_groups(cout), **kw)
        self.inp = block(3, ch(0))
        self.down = nn.ModuleList(block(ch(i), ch(i + 1), down=True) for i in range(levels))
        self.mid = block(ch(levels), ch(levels))
        self.up = nn.ModuleList(block(ch(levels - i) * 2, ch(levels - i - 1), up=True) for i in range(levels))
        self.per_frame = 4 if self.gated else 3
        self.out = nn.Conv2d(ch(0) * 2, self.per_frame * self.tc, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        with torch.no_grad():
            self.out.bias.zero_()
            if self.gated:
                self.out.bias[:: self.per_frame] = -4.0  # start as a copy of the previous frame

    def forward(self, prev: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # [M, 3, H, W], [M, Z] → [M, tc, 3, H, W]
        m, _, h, w = prev.shape
        x = self.inp(prev * 2 - 1, z)
        skips = [x]
        for d in self.down:
            x = d(x, z)
            skips.append(x)
        x = self.mid(x, z)
        for i, u in enumerate(self.up):
            x = u(torch.cat([x, skips[-1 - i]], 1), z)
        raw = self.out(torch.cat([x, skips[0]], 1)).view(m, self.tc, self.per_frame, h, w)
        if not self.gated:
            return prev[:, None] + raw
        mix = torch.sigmoid(raw[:, :, :1])  # weight of the new content
        return (1 - mix) * prev[:, None] + mix * torch.sigmoid(raw[:, :, 1:] * 2)


class Dldm(nn.Module):
    """dldm Dldm (conv-unet decoder): encode → queries → latent norm → FSQ → teacher-forced decoding."""

    def __init__(self, c: dict):
        super().__init__()
        check_twin_config(c)
        self.c = c
        self.encoder = Encoder(c)
        self.qformer = QFormer(c)
        self.fsq = FSQ(c["fsqLevels"])
        self.latent_norm = LatentNorm(c["queries"], len(c["fsqLevels"]))
        self.decoder = ConvUNetDecoder(c)

    def codes_of(self, video: torch.Tensor) -> torch.Tensor:  # video [B, T, 3, H, W] in [0, 1] → codes [B, J, N, L]
        return self.fsq.quantize(self.latent_norm(self.qformer(self.encoder(video))))

    def reconstruct(self, video: torch.Tensor, codes: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced: transition j from the true frame tc·j (+ `noise` [B, J, 3, H, W], clipped to [0, 1]),
        frame 0 the clip's own → [B, T, 3, H, W]."""
        tc = self.c["temporalCompression"]
        b, j, n, lv = codes.shape
        _, t, c, h, w = video.shape
        assert t == 1 + tc * j, f"reconstruct: {j} transitions need {1 + tc * j} frames, got {t}"
        prev = video[:, 0 : tc * j : tc]  # x_0, x_tc, … [B, J, 3, H, W]
        if noise is not None:
            prev = (prev + noise).clamp(0, 1)
        nxt = self.decoder(prev.reshape(b * j, c, h, w), codes.reshape(b * j, n * lv)).reshape(b, j * tc, c, h, w)
        return torch.cat([video[:, :1], nxt], 1)

    def reconstruction_loss(self, video: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        """Dldm.reconstructionLoss: MSE·4 or L1·2 (the [0, 1] error in [−1, 1] pixel units)."""
        if self.c["reconstructionLoss"] == "mse":
            return F.mse_loss(recon, video) * 4
        return F.l1_loss(recon, video) * 2

    def forward(self, video: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """The warm-up loss (DDP wraps `forward`, so the training step goes through it)."""
        return self.warmup_loss(video, noise)

    def warmup_loss(self, video: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """WarmupStage's objective; without `noise` it draws the decoder's input noise (std decoder.inputNoise)."""
        codes = self.codes_of(video)
        self.fsq.indices(codes)  # Dldm.forward computes them in the step too (the bench times the same work)
        if noise is None:
            b, j = codes.shape[:2]
            noise = torch.randn(b, j, *video.shape[2:], device=video.device) * self.c["decoder"]["inputNoise"]
        return self.reconstruction_loss(video, self.reconstruct(video, codes, noise))


def check_twin_config(c: dict) -> None:
    """The PyTorch twin implements the mini preset's architecture choices; anything else fails here, naming the key."""
    wanted = {
        ("decoder", "kind"): "conv-unet", ("latentNorm",): "batch", ("temporalMixing",): "attention",
        ("firstFrameSkip",): False, ("flowWarp",): False,
    }
    for path, value in wanted.items():
        got = c
        for k in path:
            got = got[k]
        if got != value:
            raise ValueError(f"model.{'.'.join(path)} = {got!r}: the PyTorch dLDM twin implements {value!r} only (use the tfjs stage for this config)")
    if c["patching"] not in ("haar", "linear"):
        raise ValueError(f"model.patching = {c['patching']!r}: expected 'haar' or 'linear'")
    if (c["frames"] - 1) % c["temporalCompression"] != 0:
        raise ValueError(f"model.frames: T − 1 = {c['frames'] - 1} must be divisible by temporalCompression {c['temporalCompression']}")
