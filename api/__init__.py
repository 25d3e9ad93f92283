"""The HTTP API: plant configuration, latest readings, time series, health and metrics.

``api.main.create_app`` builds the FastAPI application around an :class:`api.context.AppContext`
that the service fills (plant configuration, an already started store, settings, mode). The API
never opens or closes the store itself: the service owns every connection's lifecycle, so the
same app runs on top of InfluxDB or the embedded SQLite store and tests can hand it a real store.

Layout (after fastapi/full-stack-fastapi-template): ``routes/`` holds one router per resource,
``deps.py`` the ``Annotated`` dependency aliases, ``auth.py`` the bearer-token check applied to
every router except health, ``schemas.py`` the typed request and response models.
"""
