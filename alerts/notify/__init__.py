"""Notifiers: deliver :class:`~alerts.model.Notification` s to people and systems.

Small composable stages in the style of Alertmanager's ``notify.go``: a channel
(:class:`AppriseNotifier`, :class:`WebhookNotifier`, :class:`MqttNotifier`) is wrapped in
:class:`Retrying`, and a receiver's channels in a :class:`Fanout`.
:meth:`ReceiversConfig.build` assembles them from configuration.
"""

from alerts.notify.apprise_notifier import AppriseNotifier
from alerts.notify.base import Notifier, NotifyError
from alerts.notify.config import MqttAlertConfig, ReceiverConfig, ReceiversConfig, WebhookConfig
from alerts.notify.fanout import DeliveryResult, Fanout
from alerts.notify.mqtt import MqttNotifier
from alerts.notify.render import to_json, to_text
from alerts.notify.retry import Retrying
from alerts.notify.webhook import WebhookNotifier, verify_signature

__all__ = [
    "AppriseNotifier",
    "DeliveryResult",
    "Fanout",
    "MqttAlertConfig",
    "MqttNotifier",
    "Notifier",
    "NotifyError",
    "ReceiverConfig",
    "ReceiversConfig",
    "Retrying",
    "WebhookConfig",
    "WebhookNotifier",
    "to_json",
    "to_text",
    "verify_signature",
]
