"""The X channel: each update posted, and an incident's updates threaded, with tweepy."""

from channels.x.channel import XChannel

__all__ = ["XChannel"]
