"""A Face Studio double built on Django REST framework's own token auth, throttles and errors.

Run it with ``tests.support.drf_server.DrfFaceStudio`` (gunicorn, several workers, counts in Redis).
Its environment variables are read in ``settings.py``; the view, throttles and request log are in
``app.py``.
"""
