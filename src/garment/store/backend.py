"""What each catalogue backend gives the parts written once for both (labels, predictions)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any


class BackendOps:
    """The statements a mixin runs through: one (``_q``, ``?`` placeholders), many rows
    (``_many``), a transaction (``_tx``) and the dialect's insert-or-replace (``_replace``)."""

    def _q(self, sql: str, args: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _tx(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _replace(self, table: str, cols: Sequence[str], keys: Sequence[str]) -> str:
        raise NotImplementedError
