"""Test apps imported by worker subprocesses (``resq worker -A tests.apps.core:app``)."""
