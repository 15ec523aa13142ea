"""The synthetic demo: real-word stimuli and a BIDS-style dataset with planted ground truth."""

from .dataset import make_demo_dataset
from .stimuli import make_demo_stimuli

__all__ = ["make_demo_stimuli", "make_demo_dataset"]
