"""The domain layer: the vocabulary, the models, how an update changes an incident, the Statuspage shapes,
and the errors people see. A leaf: it imports nothing else of the broadcaster, and the core, the store and
the channels all build on it."""
