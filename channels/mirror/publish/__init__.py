"""Publishing the status site off the box: every [[mirror.publish]] target (a bucket, a git pages branch,
a second host over SFTP) keeps a staging copy of the site and sends what changed since its last publish."""

from channels.mirror.links import Render, Rendered
from channels.mirror.publish.targets import Publishing

__all__ = ["Publishing", "Render", "Rendered"]
