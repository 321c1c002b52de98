"""The Django app config: builds resq's app from ``settings.RESQ`` and imports every ``<app>.tasks``."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules

from resq.contrib.django.integration import get_app

__all__ = ["ResqConfig"]


class ResqConfig(AppConfig):  # type: ignore[misc]  # django ships no type hints
    """``"resq.contrib.django"`` in ``INSTALLED_APPS`` (label ``resq``)."""

    name = "resq.contrib.django"
    label = "resq"
    verbose_name = "resq"

    def ready(self) -> None:
        get_app()  # settings errors surface when Django starts, not at the first job
        autodiscover_modules("tasks")
