"""The process helpers every peer is started with."""

from __future__ import annotations

from tests.testbed import procs


def test_free_port_never_hands_out_a_port_twice() -> None:
    """The kernel's own pick repeats within a few hundred draws (about 140 repeats in 2,000
    here): a test starting several servers must still get a port for each."""
    ports = [procs.free_port() for _ in range(2000)]
    assert len(set(ports)) == len(ports)
