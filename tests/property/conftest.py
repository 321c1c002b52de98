"""Hypothesis keeps nothing in the working tree: no example database (each test's settings say
``database=None``), and its caches (the constants it reads from the code under test, unicode data) go to a
temporary directory removed at exit. Set on import, because hypothesis fills its caches while the test
modules are collected, before any fixture runs."""

from __future__ import annotations

import atexit
import shutil
import tempfile

from hypothesis.configuration import set_hypothesis_home_dir

HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="resq-hypothesis-")
set_hypothesis_home_dir(HYPOTHESIS_HOME)
atexit.register(shutil.rmtree, HYPOTHESIS_HOME, ignore_errors=True)
