"""`python -m tests.support.cli ...`: the real broadcaster CLI with the cross-process GateChannel
registered, for tests that kill the CLI mid-delivery."""

from broadcaster.cli import main
from channels.registry import REGISTRY
from tests.support.channels import GATE_SPEC

REGISTRY.register(GATE_SPEC)
raise SystemExit(main())
