"""`@record`: an immutable dataclass for the records made once per delivery attempt, without the runtime
price of `frozen=True` (which sets every field through `object.__setattr__`; a large fan-out builds several
such records per delivery). mypy still treats these classes as frozen (PEP 681's `frozen_default`), so an
assignment to a field fails the type check; at run time they are ordinary slotted dataclasses, hashed by
value like a frozen one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from typing_extensions import dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def record(cls: type[T]) -> type[T]:
    return dataclass(slots=True, unsafe_hash=True)(cls)
