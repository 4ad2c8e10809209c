"""The explicit list of channels. Each channel's module is imported only when the channel is used, so
`broadcaster send` with the mirror alone never pays for aiohttp, aiosmtplib or tweepy."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from broadcaster.domain.errors import NotFoundError
from channels.base import Channel, Ordering
from config import Settings


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """How to find, enable and address one channel without importing it.

    `targets` names the channel's delivery targets from the settings; a delivery is planned per target
    when an update is accepted, so target names must stay stable across restarts."""

    name: str
    module: str
    class_name: str
    ordering: Ordering
    enabled: Callable[[Settings], bool]
    targets: Callable[[Settings], list[str]]

    def load(self) -> type[Channel]:
        cls = getattr(importlib.import_module(self.module), self.class_name)
        if not (isinstance(cls, type) and issubclass(cls, Channel)) or cls.name != self.name:
            raise TypeError(f"{self.module}.{self.class_name} is not the {self.name!r} channel")
        return cls


class ChannelRegistry:
    """Channel specs by name. Registering a name twice is a programming error and raises."""

    def __init__(self, specs: Iterable[ChannelSpec] = ()) -> None:
        self._specs: dict[str, ChannelSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: ChannelSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"channel {spec.name!r} is already registered")
        self._specs[spec.name] = spec

    def get(self, name: str) -> ChannelSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise NotFoundError(f"unknown channel {name!r}; channels are {', '.join(self._specs)}") from None

    def __iter__(self) -> Iterator[ChannelSpec]:
        return iter(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def names(self) -> list[str]:
        return list(self._specs)

    def enabled(self, settings: Settings) -> list[ChannelSpec]:
        return [spec for spec in self._specs.values() if spec.enabled(settings)]

    def copy(self) -> ChannelRegistry:
        return ChannelRegistry(self._specs.values())


REGISTRY = ChannelRegistry(
    [
        ChannelSpec(
            name="email",
            module="channels.email",
            class_name="EmailChannel",
            ordering=Ordering.LATEST_ONLY,
            enabled=lambda settings: settings.email.enabled,
            targets=lambda _settings: ["subscribers"],
        ),
        ChannelSpec(
            name="x",
            module="channels.x",
            class_name="XChannel",
            ordering=Ordering.LATEST_ONLY,
            enabled=lambda settings: settings.x.enabled,
            targets=lambda _settings: ["x"],
        ),
        ChannelSpec(
            name="webhook",
            module="channels.webhook",
            class_name="WebhookChannel",
            ordering=Ordering.IN_ORDER,
            enabled=lambda settings: settings.webhook.enabled,
            targets=lambda settings: settings.webhook.target_names(),
        ),
        ChannelSpec(
            name="mirror",
            module="channels.mirror",
            class_name="MirrorChannel",
            ordering=Ordering.IN_ORDER,
            enabled=lambda settings: settings.mirror.enabled,
            targets=lambda settings: settings.mirror.target_names(),
        ),
    ]
)
"""Every channel this build has. Entry points use it as is; tests use a copy() with test channels added."""


def default_registry() -> ChannelRegistry:
    return REGISTRY
