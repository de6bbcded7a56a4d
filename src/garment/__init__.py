"""garment: crawl an online fashion shop into a catalogue labelled with Fashion-MNIST classes."""

__version__ = "0.1.0"

#: Fashion-MNIST class names, in label-index order.
CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Label given to an image the model is not confident is any of ``CLASSES``.
OTHER = "other"
OTHER_INDEX = -1


def label_index(label: str | None) -> int | None:
    """The index of a label: 0-9 for a name in ``CLASSES``, ``OTHER_INDEX`` for ``OTHER``,
    None for no label or a name that is neither."""
    if label == OTHER:
        return OTHER_INDEX
    return CLASSES.index(label) if label in CLASSES else None

#: Where garment identifies itself (User-Agent, report footer).
PROJECT_URL = "https://github.com/garment-catalogue/garment"
