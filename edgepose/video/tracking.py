"""Per-face tracking across frames by box IoU, giving each face a stable track id (and its own smoother)."""
from __future__ import annotations

from dataclasses import dataclass, field


from .smoothing import OneEuroConfig, OneEuroFilter


def box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    id: int
    box: tuple
    missed: int = 0
    smoother: OneEuroFilter | None = None
    hits: int = 1


@dataclass
class IouTracker:
    """Greedy IoU matching, highest overlap first; a track ends after `max_missed` frames without a match."""

    min_iou: float = 0.3
    max_missed: int = 5
    smoothing: OneEuroConfig | None = None
    tracks: list[Track] = field(default_factory=list)
    next_id: int = 1

    def update(self, boxes: list) -> list[Track]:
        """The track of each box, in the order of `boxes` (new tracks for unmatched boxes)."""
        pairs = sorted(((box_iou(t.box, b), ti, bi) for ti, t in enumerate(self.tracks) for bi, b in enumerate(boxes)),
                       reverse=True)
        assigned: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, ti, bi in pairs:
            if overlap < self.min_iou:
                break
            if ti in used or bi in assigned:
                continue
            used.add(ti)
            assigned[bi] = self.tracks[ti]
        for ti, track in enumerate(self.tracks):
            track.missed = 0 if ti in used else track.missed + 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        out = []
        for bi, box in enumerate(boxes):
            track = assigned.get(bi)
            if track is None:
                track = Track(self.next_id, tuple(box), smoother=OneEuroFilter(self.smoothing) if self.smoothing else None)
                self.next_id += 1
                self.tracks.append(track)
            else:
                track.box, track.hits = tuple(box), track.hits + 1
            out.append(track)
        return out
