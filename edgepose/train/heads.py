"""Pose heads and their losses (torch). Every head emits ONE tensor; `decoding` is the manifest `output` section
that edgepose.decode (numpy, device half) uses, and training evaluates through the same decoder.

  rot6d  (N, 6)      first two columns of R; geodesic loss                         (6DRepNet)
  euler  (N, 3)      yaw, pitch, roll in degrees; MSE + periodic (1 - cos) loss
  sincos (N, 6)      sin(yaw, pitch, roll), cos(...); MSE on the unit circle
  bins   (N, 3 * 66) Hopenet bins of 3 deg from -99; cross-entropy + expectation MSE
  camera (N, 6)      3DDFA_V2's 3DMM head cut to the first two rows of its affine camera (= the first two columns of
                     R), de-normalised; squared Frobenius loss on the rotation
"""
from __future__ import annotations

import torch
from torch import nn

BIN_WIDTH, BIN_COUNT, BIN_OFFSET = 3.0, 66, -99.0


class _Head(nn.Module):
    outputs = 0

    def __init__(self, in_features: int, hidden: int = 1024, dropout: float = 0.2):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_features, hidden), nn.Hardswish(), nn.Dropout(dropout),
                                 nn.Linear(hidden, self.outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)

    def decoding(self, name: str) -> dict:
        raise NotImplementedError

    def loss(self, out: torch.Tensor, target_r: torch.Tensor, target_deg: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def to_degrees(self, out: torch.Tensor) -> torch.Tensor:
        """(N, 3) yaw, pitch, roll in degrees, differentiable."""
        raise NotImplementedError

    def to_matrix(self, out: torch.Tensor) -> torch.Tensor:
        """(N, 3, 3) rotation, differentiable (for distillation against a teacher's pose)."""
        return euler_to_matrix_torch(self.to_degrees(out))


class Rot6DHead(_Head):
    """Predicts the 6D rotation representation (first two columns of R, as [c0, c1]).

    Loss: geodesic distance, plus `euler_weight` x the L1 error of the decoded Euler angles (radians). Near
    |yaw| = 90 deg pitch and roll trade against each other at almost no geodesic cost (gimbal lock: at yaw 75,
    pitch = roll = 30 is 7.7 deg from pitch = roll = 0), so a geodesic loss alone leaves the Euler split that
    AFLW-style benchmarks score essentially unconstrained; the Euler term teaches the labels' split.
    """

    outputs = 6
    euler_weight = 0.0  # set per recipe by the trainer (train.euler_weight)

    def decoding(self, name: str) -> dict:
        return {"type": "rot6d", "name": name}

    def loss(self, out, target_r, target_deg):
        pred = rot6d_to_matrix(out)
        loss = geodesic_loss(pred, target_r)
        if self.euler_weight:
            err = torch.deg2rad(matrix_to_euler_torch(pred) - target_deg)
            loss = loss + self.euler_weight * torch.atan2(torch.sin(err), torch.cos(err)).abs().mean()
        return loss

    def to_matrix(self, out):
        return rot6d_to_matrix(out)

    def to_degrees(self, out):
        return matrix_to_euler_torch(rot6d_to_matrix(out))


class EulerHead(_Head):
    """Direct regression of yaw, pitch, roll in degrees: MSE (scaled to radians) + periodic 1 - cos(error)."""

    outputs = 3

    def decoding(self, name: str) -> dict:
        return {"type": "euler_degrees", "name": name, "order": ["yaw", "pitch", "roll"]}

    def loss(self, out, target_r, target_deg):
        err = torch.deg2rad(out - target_deg)
        return (err ** 2).mean() + (1 - torch.cos(err)).mean()

    def to_degrees(self, out):
        return out


class SinCosHead(_Head):
    """sin and cos of each angle: continuous across +-180 deg; decoded with atan2."""

    outputs = 6

    def decoding(self, name: str) -> dict:
        return {"type": "sincos", "name": name}

    def loss(self, out, target_r, target_deg):
        rad = torch.deg2rad(target_deg)
        return ((out - torch.cat([torch.sin(rad), torch.cos(rad)], 1)) ** 2).mean()

    def to_degrees(self, out):
        return torch.rad2deg(torch.atan2(out[:, :3], out[:, 3:]))


class BinnedHead(_Head):
    """Hopenet-style: 66 bins of 3 deg per angle; cross-entropy on the bin + MSE of the softmax expectation."""

    outputs = 3 * BIN_COUNT
    expectation_weight = 0.01  # per squared degree, as Hopenet's alpha ~ 0.001-0.01

    def decoding(self, name: str) -> dict:
        return {"type": "bins_packed", "name": name, "bins": BIN_COUNT, "width": BIN_WIDTH, "offset": BIN_OFFSET}

    def loss(self, out, target_deg_unused_r, target_deg):
        logits = out.view(-1, 3, BIN_COUNT)
        index = ((target_deg - BIN_OFFSET) / BIN_WIDTH).floor().clamp(0, BIN_COUNT - 1).long()
        ce = nn.functional.cross_entropy(logits.reshape(-1, BIN_COUNT), index.reshape(-1))
        expectation = bins_expectation(logits)
        return ce + self.expectation_weight * ((expectation - target_deg) ** 2).mean()

    def to_degrees(self, out):
        return bins_expectation(out.view(-1, 3, BIN_COUNT))


def bins_expectation(logits: torch.Tensor) -> torch.Tensor:
    """(N, 3, bins) logits -> (N, 3) degrees: softmax expectation of the bin centres' left edges, as WHENet decodes."""
    idx = torch.arange(logits.shape[-1], dtype=logits.dtype, device=logits.device)
    return (torch.softmax(logits, -1) * idx).sum(-1) * BIN_WIDTH + BIN_OFFSET


def euler_to_matrix_torch(deg: torch.Tensor) -> torch.Tensor:
    """(N, 3) yaw, pitch, roll degrees -> (N, 3, 3), R = Rz(roll) Ry(yaw) Rx(pitch) (edgepose.angles in torch)."""
    y, p, r = torch.deg2rad(deg).unbind(1)
    o, z = torch.ones_like(y), torch.zeros_like(y)

    def mat(rows):
        return torch.stack([torch.stack(row, -1) for row in rows], -2)

    rx = mat([[o, z, z], [z, torch.cos(p), -torch.sin(p)], [z, torch.sin(p), torch.cos(p)]])
    ry = mat([[torch.cos(y), z, torch.sin(y)], [z, o, z], [-torch.sin(y), z, torch.cos(y)]])
    rz = mat([[torch.cos(r), -torch.sin(r), z], [torch.sin(r), torch.cos(r), z], [z, z, o]])
    return rz @ ry @ rx


def matrix_to_euler_torch(m: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """(N, 3, 3) -> (N, 3) yaw, pitch, roll degrees, differentiable (edgepose.angles.matrix_to_euler in torch)."""
    pitch = torch.atan2(m[:, 2, 1], m[:, 2, 2])
    yaw = torch.atan2(-m[:, 2, 0], torch.sqrt(m[:, 0, 0] ** 2 + m[:, 1, 0] ** 2 + eps))
    roll = torch.atan2(m[:, 1, 0], m[:, 0, 0])
    return torch.rad2deg(torch.stack([yaw, pitch, roll], 1))


def rot6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """Gram-Schmidt of (N, 6) -> (N, 3, 3) with the 6D vector as the first two columns."""
    a1, a2 = x[:, 0:3], x[:, 3:6]
    b1 = nn.functional.normalize(a1, dim=1)
    b2 = nn.functional.normalize(a2 - (b1 * a2).sum(1, keepdim=True) * b1, dim=1)
    return torch.stack([b1, b2, torch.cross(b1, b2, dim=1)], dim=2)


def geodesic_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean geodesic distance (radians) between rotation matrices (N, 3, 3)."""
    cos = ((pred.transpose(1, 2) @ target).diagonal(dim1=1, dim2=2).sum(1) - 1) / 2
    return torch.acos(cos.clamp(-1 + eps, 1 - eps)).mean()


class CameraHead(nn.Module):
    """3DDFA_V2's parameter head, cut to the pose: its Linear to 62 normalised 3DMM parameters (params = out * std +
    mean) begins with a row-major 3x4 affine camera [s R_cam | t], and the first two rows of R_cam are the first two
    columns of edgepose's R (R = R_cam transposed). This head keeps those 6 rows of the Linear (`fc`, trained in
    3DDFA_V2's normalised units) and their de-normalisation (`scale`, `shift`), multiplied by one constant that brings
    the values near 1: the 6D decoding (Gram-Schmidt) normalises each column, so a common factor changes no pose,
    and int8 gets outputs of a sensible range. The exported graph ends in one Gemm (scale and shift folded into its
    weights), decoded as 6D.

    Loss: squared Frobenius distance between the target rotation and the Gram-Schmidt rotation of the two rows.
    """

    outputs = 6
    ROWS = (0, 1, 2, 4, 5, 6)  # P[0, 0:3] and P[1, 0:3] of the row-major 3x4 camera

    def __init__(self, in_features: int):
        super().__init__()
        self.fc = nn.Linear(in_features, self.outputs)
        self.register_buffer("scale", torch.ones(self.outputs))
        self.register_buffer("shift", torch.zeros(self.outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():  # one Gemm, the graph's output: static int8 leaves that output in float
            return nn.functional.linear(x, self.fc.weight * self.scale[:, None], self.fc.bias * self.scale + self.shift)
        return self.fc(x) * self.scale + self.shift  # a plain Linear while training (NNCF's QAT needs its weights)

    def decoding(self, name: str) -> dict:
        return {"type": "rot6d", "name": name}

    def loss(self, out, target_r, target_deg):
        return ((rot6d_to_matrix(out) - target_r) ** 2).sum((1, 2)).mean()

    def to_matrix(self, out):
        return rot6d_to_matrix(out)

    def to_degrees(self, out):
        return matrix_to_euler_torch(rot6d_to_matrix(out))


HEADS = {"rot6d": Rot6DHead, "euler": EulerHead, "sincos": SinCosHead, "bins": BinnedHead, "camera": CameraHead}


class SpatialAttention(nn.Module):
    """CBAM-style spatial attention: a 7x7 conv over channel mean and max gives a 0..1 map that reweights positions."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.conv(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))
        return x * gate


class PoseNet(nn.Module):
    """Backbone (+ optional spatial attention) + pose head; optional landmark branch used only in training.
    `forward` returns the pose head's raw output (what the exported model emits)."""

    def __init__(self, backbone: nn.Module, head: _Head, landmarks: int = 0, attention: bool = False):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.attention = SpatialAttention() if attention else None
        self.landmark_head = nn.Linear(backbone.out_features, 2 * landmarks) if landmarks else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, after spatial attention when enabled."""
        f = self.backbone.forward_features(x)
        return self.attention(f) if self.attention is not None else f

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(head output, last feature map) for feature distillation."""
        f = self.features(x)
        return self.head(self.backbone.pool(f)), f

    def forward_with_landmarks(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pose output, (N, P, 2) landmarks in 0..1 of the crop)."""
        pooled = self.backbone.pool(self.features(x))
        return self.head(pooled), torch.sigmoid(self.landmark_head(pooled)).view(len(x), -1, 2)


def landmark_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Smooth-L1 over the visible points (target NaN = missing); 0 when a batch has none."""
    visible = torch.isfinite(target)
    if not visible.any():
        return pred.sum() * 0.0
    return nn.functional.smooth_l1_loss(pred[visible], target[visible], beta=0.02)
