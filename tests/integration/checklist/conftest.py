"""The loopback HTTP receiver (standing for Slack) of the notification tests."""

from integration.notify.conftest import http_receiver

__all__ = ["http_receiver"]
