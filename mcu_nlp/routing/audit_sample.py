"""The audit sample: a fixed share of auto-routed appeals that a person checks after the fact.

An auto-routed appeal still goes to its department; when it is drawn, a copy of the decision also
enters the review queue marked as an audit item, and the operator confirms or corrects it. Those
verdicts are an unbiased random sample of auto-routing, from which
:mod:`mcu_nlp.routing.precision` estimates the precision actually delivered.

The draw is a keyed hash of the appeal's stable identity ``(source, source id)``: uniform on
``[0, 1)``, independent of the text, the model's confidence and the arrival order, so every
auto-routed appeal is drawn with the same probability ``share``. The same seed always draws the
same appeals (tests, re-imports), and a new seed draws an independent sample.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcu_nlp.settings import Settings

__all__ = ["AuditSampler", "sample_key"]

_SPAN = float(2**64)


def sample_key(source: str, source_id: str) -> str:
    """The identity an appeal is drawn by (unique in the store)."""
    return f"{source}\x1f{source_id}"


@dataclass(frozen=True, slots=True)
class AuditSampler:
    """Draws auto-routed appeals into the audit sample with probability ``share``.

    Args:
        share: Probability that an auto-routed appeal is audited (0 — never, 1 — always).
        seed: Key of the hash; the same seed draws the same appeals.
    """

    share: float = 0.02
    seed: str = "mcu-audit"

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"the audit share must lie in [0, 1], got {self.share}")

    def draw(self, key: str) -> float:
        """The appeal's uniform number in ``[0, 1)`` (a SHA-256 of seed and key)."""
        digest = hashlib.sha256(f"{self.seed}\x1e{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / _SPAN

    def sampled(self, key: str) -> bool:
        """Whether the appeal with this key belongs to the audit sample."""
        return self.share > 0.0 and self.draw(key) < self.share

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> AuditSampler:
        """The sampler configured by ``MCU_AUDIT_SHARE`` and ``MCU_AUDIT_SEED``."""
        if settings is None:
            from mcu_nlp.settings import get_settings

            settings = get_settings()
        return cls(share=settings.audit_share, seed=settings.audit_seed)
