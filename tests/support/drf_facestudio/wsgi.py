"""gunicorn's entry point (``tests.support.drf_facestudio.wsgi:application``); each worker logs its boot."""

from __future__ import annotations

import os
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.support.drf_facestudio.settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()

from tests.support.drf_facestudio.app import log_line  # noqa: E402  (needs the settings above)

log_line({"event": "boot", "t": time.time(), "pid": os.getpid()})
