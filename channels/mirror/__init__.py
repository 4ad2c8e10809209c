"""The static-file status mirror: the whole status site, written atomically into every configured
directory (and, through the same lane, every publish target)."""

from channels.mirror.channel import MirrorChannel

__all__ = ["MirrorChannel"]
