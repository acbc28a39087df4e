"""Test bed of real components: etcd, kube-apiserver and Falcosidekick, built and started here.

Build the binaries once with ``python -m tests.testbed.build``; the pytest fixtures in
``tests/conftest.py`` start them. See docs/testing.md.
"""
