"""`@record`: an immutable dataclass for the records made once per delivery attempt, without the runtime
price of `frozen=True`.

A frozen dataclass sets each field through `object.__setattr__`, so building one costs about 3 µs for 16
fields against 0.35 µs for a plain slotted dataclass (timeit, Python 3.11 on the benchmark machine). A
fan-out to 1,000 webhook targets builds seven such records per delivery: as frozen dataclasses they were
about a quarter of the lane and journal's instructions (tests/bench/bench_lane: 361 M -> 267 M per
1,000-delivery update). mypy still treats these classes as frozen (PEP 681's `frozen_default`), so an
assignment to a field fails the type check; at run time they are ordinary slotted dataclasses. They keep
a frozen dataclass's hash (by value), so they can go in sets and dict keys as before."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from typing_extensions import dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def record(cls: type[T]) -> type[T]:
    return dataclass(slots=True, unsafe_hash=True)(cls)
