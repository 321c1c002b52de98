"""Settings of the example project: SQLite, the shop app and resq (``RESQ``)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "resq.contrib.django",
    "shop",
]
ROOT_URLCONF = "mysite.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# resq: the Redis url and key prefix; any other Resq(...) setting may be added (result_ttl, ...).
RESQ = {
    "url": os.environ.get("RESQ_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "namespace": os.environ.get("RESQ_NAMESPACE", "shop"),
}
