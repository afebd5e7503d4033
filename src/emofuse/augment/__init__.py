"""Data augmentation: waveform effects, SpecAugment, policies, rendered variants with a leakage guard."""

from .mixing import mixup
from .policy import POLICIES, Policy, load_policy
from .render import AugmentStore, FoldAugment
from .spec import SpecAugment
from .waveform import EFFECTS, build_effect

__all__ = ["POLICIES", "Policy", "load_policy", "AugmentStore", "FoldAugment", "SpecAugment", "EFFECTS", "build_effect", "mixup"]
