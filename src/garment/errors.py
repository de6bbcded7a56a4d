"""Errors: the small vocabulary of run-level failures the CLI turns into one-line messages."""


class GarmentError(Exception):
    """A run-level problem with a message that names the input and the fix."""


class DataNotFoundError(GarmentError):
    """Fashion-MNIST files are missing."""


class ChecksumError(GarmentError):
    """A file's MD5 does not match the official checksum."""


class ModelFileError(GarmentError):
    """A model folder is missing, incomplete or inconsistent."""
