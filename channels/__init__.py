"""Channel adapters (email, X, webhook, mirror) and the small contract they share (channels.base)."""
