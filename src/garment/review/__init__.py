"""Review: a local web app to go through a catalogue's labels and correct them as human labels."""

from garment.review.app import ReviewConfig, ReviewServer, create_app
from garment.review.query import ProductQuery

__all__ = ["ProductQuery", "ReviewConfig", "ReviewServer", "create_app"]
