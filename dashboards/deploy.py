"""Push dashboards to an existing Grafana with ``grafana-client``, idempotently, into a folder.

For the compose stack nothing needs pushing: Grafana provisions ``generated/`` from files.
This is for a Grafana run elsewhere. ``grafana-client`` is an optional extra
(``pip install 'stackwatch[grafana]'``) imported only here, at call time: it depends on
``niquests``/``urllib3-future``, which can replace ``urllib3`` for every other library in the
environment, so the service never loads it (install with ``URLLIB3_NO_OVERRIDE=1`` and
``--no-binary urllib3-future`` to keep both, see the README).

Idempotent: the folder (fixed uid) is created once and renamed only when its title changed; a
dashboard is written only when it is missing, differs from the stored one (ignoring Grafana's
``id`` and ``version``) or sits in another folder. A second run with the same files sends
only reads.

>>> comparable({"id": 7, "version": 3, "uid": "a", "title": "A"})
{'uid': 'a', 'title': 'A'}
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import structlog
from pydantic import SecretStr

from dashboards.grafana import Json

log = structlog.get_logger(__name__)

FOLDER_UID = "stackwatch"
MESSAGE = "stackwatch dashboards deploy"


class FolderApi(Protocol):
    def get_folder(self, uid: str) -> Any: ...

    def create_folder(
        self, title: str, uid: str | None = None, parent_uid: str | None = None
    ) -> Any: ...

    def update_folder(
        self,
        uid: str,
        title: str | None = None,
        version: int | None = None,
        overwrite: bool = False,
        new_uid: str | None = None,
    ) -> Any: ...


class DashboardApi(Protocol):
    def get_dashboard(self, dashboard_uid: str) -> Any: ...

    def update_dashboard(self, dashboard: Json) -> Any: ...


class GrafanaApi(Protocol):
    """The part of ``grafana_client.GrafanaApi`` used here."""

    folder: FolderApi
    dashboard: DashboardApi


class DeployError(Exception):
    """Deploying failed; ``retryable`` when trying again later may succeed (network, 5xx)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass
class DeployResult:
    folder: Outcome
    dashboards: dict[str, Outcome] = field(default_factory=dict)


def connect(url: str, token: SecretStr, *, timeout_s: float = 10.0) -> GrafanaApi:
    """A grafana-client API for ``url`` authenticating with a service-account ``token``
    (sent as ``Authorization: Bearer``). Raises ``ImportError`` without the extra."""
    grafana_client = importlib.import_module("grafana_client")
    api: GrafanaApi = grafana_client.GrafanaApi.from_url(
        url, credential=token.get_secret_value(), timeout=timeout_s
    )
    return api


def comparable(dashboard: Json) -> Json:
    """A dashboard without the keys Grafana assigns on save."""
    return {k: v for k, v in dashboard.items() if k not in ("id", "version")}


def _status(err: Exception) -> int | None:
    status = getattr(err, "status_code", None)
    return status if isinstance(status, int) else None


def _fail(action: str, err: Exception) -> DeployError:
    status = _status(err)
    retryable = status is None or status in {0, 429} or status >= 500
    return DeployError(f"{action}: {err}", retryable=retryable)


def _get_or_none(action: str, call: Any, uid: str) -> Any:
    try:
        return call(uid)
    except Exception as err:
        if _status(err) == 404:
            return None
        raise _fail(action, err) from err


def _ensure_folder(api: GrafanaApi, title: str, uid: str) -> Outcome:
    existing = _get_or_none(f"reading folder {uid}", api.folder.get_folder, uid)
    try:
        if existing is None:
            api.folder.create_folder(title, uid=uid)
            return Outcome.CREATED
        if existing.get("title") != title:
            api.folder.update_folder(uid, title=title, overwrite=True)
            return Outcome.UPDATED
    except Exception as err:
        raise _fail(f"writing folder {uid}", err) from err
    return Outcome.UNCHANGED


def _push(api: GrafanaApi, dashboard: Json, folder_uid: str) -> Outcome:
    uid = str(dashboard["uid"])
    stored = _get_or_none(f"reading dashboard {uid}", api.dashboard.get_dashboard, uid)
    if stored is not None:
        same = comparable(stored.get("dashboard", {})) == comparable(dashboard)
        if same and stored.get("meta", {}).get("folderUid") == folder_uid:
            return Outcome.UNCHANGED
    body = {
        "dashboard": {**dashboard, "id": None},
        "folderUid": folder_uid,
        "overwrite": True,
        "message": MESSAGE,
    }
    try:
        api.dashboard.update_dashboard(body)
    except Exception as err:
        raise _fail(f"writing dashboard {uid}", err) from err
    return Outcome.CREATED if stored is None else Outcome.UPDATED


def deploy(
    api: GrafanaApi,
    dashboards: Mapping[str, Json],
    *,
    folder_title: str,
    folder_uid: str = FOLDER_UID,
) -> DeployResult:
    """Put ``dashboards`` (any key → dashboard JSON with a ``uid``) into the folder.

    Raises :class:`DeployError` on the first failure; what was written before stays written
    (running again completes it).
    """
    result = DeployResult(_ensure_folder(api, folder_title, folder_uid))
    log.info("grafana folder", uid=folder_uid, title=folder_title, outcome=result.folder.value)
    for document in dashboards.values():
        uid = str(document["uid"])
        outcome = _push(api, document, folder_uid)
        result.dashboards[uid] = outcome
        log.info("grafana dashboard", uid=uid, outcome=outcome.value)
    return result
