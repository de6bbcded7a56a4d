"""Errors: the small vocabulary of run-level failures the CLI turns into one-line messages."""


class GarmentError(Exception):
    """A run-level problem with a message that names the input and the fix."""


class DataNotFoundError(GarmentError):
    """Fashion-MNIST files are missing."""


class ChecksumError(GarmentError):
    """A file's MD5 does not match the official checksum."""


class ModelFileError(GarmentError):
    """A model folder is missing, incomplete or inconsistent."""


class MissingExtraError(GarmentError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def missing_extra(extra: str, module: str, needed_for: str = "") -> MissingExtraError:
    """The one-line error for a feature whose optional dependency ``module`` is missing:
    ``raise missing_extra("train", "torch", "training") from exc``."""
    what = f"{needed_for} needs" if needed_for else "this needs"
    return MissingExtraError(f"{what} {module}, which is not installed: pip install 'garment[{extra}]'")
