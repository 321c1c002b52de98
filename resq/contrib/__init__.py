"""Integrations with the frameworks resq's users live in: Django, Flask, FastAPI, OpenTelemetry.

Each lives in its own module, behind an optional extra, and imports its framework only there.
"""
