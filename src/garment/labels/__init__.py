"""Labels from sources other than the image: ``garment.labels.text`` reads a product's own words.

Kept light (no torch): importing the package costs only what its text labeller needs.
"""

from garment.labels.text import TextLabel, TextLabeller

__all__ = ["TextLabel", "TextLabeller"]
