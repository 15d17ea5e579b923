"""Simulators of the four source systems of ../shared/contracts/SOURCES.md.

Real servers on loopback, serving a data directory written by ``roster-gen``:
:class:`~include.simulators.cluster.Simulators` starts them (in threads, for tests, or
from ``roster-sim`` as a process) and moves them from one period to the next without
losing their ports.
"""
