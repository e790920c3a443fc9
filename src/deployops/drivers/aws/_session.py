"""The one place AWS clients are built.

Every AWS driver takes its client from :class:`AwsSession`, so profile, region, role, retries and
endpoint are decided once::

    session = AwsSession(AwsSettings(region="ap-northeast-1", profile="deploy"))
    ecs = session.client("ecs")

- region defaults to ``ap-northeast-1`` (the guide's region);
- ``role_arn`` assumes a role through STS first (credentials refreshed before they expire);
- retries use botocore's ``adaptive`` mode (exponential backoff with jitter plus client-side
  rate limiting on throttling), so a throttled call is retried before it becomes an error;
- ``AWS_ENDPOINT_URL`` (or ``endpoint_url``) points every client at another endpoint, e.g. a
  local stand-in in tests.

No network I/O happens until the first API call (``client()`` only builds the client).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.config
from botocore.credentials import DeferredRefreshableCredentials, RefreshableCredentials

from deployops.drivers.aws._errors import map_aws_errors

__all__ = ["DEFAULT_REGION", "AwsSession", "AwsSettings"]

DEFAULT_REGION = "ap-northeast-1"


@dataclass(frozen=True, slots=True, kw_only=True)
class AwsSettings:
    """How to reach AWS. Empty strings mean "botocore's default chain"."""

    region: str = DEFAULT_REGION
    profile: str = ""
    role_arn: str = ""
    role_session_name: str = "deployops"
    external_id: str = ""
    endpoint_url: str = ""
    max_attempts: int = 8
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0

    def resolved_endpoint(self) -> str:
        """``endpoint_url``, else ``AWS_ENDPOINT_URL`` from the environment, else ``""``."""
        return self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL", "")


class AwsSession:
    """Builds and caches one client per service for one set of :class:`AwsSettings`."""

    def __init__(self, settings: AwsSettings | None = None) -> None:
        self.settings = settings or AwsSettings()
        self._session: boto3.session.Session | None = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def region(self) -> str:
        return self.settings.region or DEFAULT_REGION

    def botocore_config(self) -> botocore.config.Config:
        return botocore.config.Config(
            region_name=self.region,
            retries={"max_attempts": self.settings.max_attempts, "mode": "adaptive"},
            connect_timeout=self.settings.connect_timeout_s,
            read_timeout=self.settings.read_timeout_s,
            user_agent_extra="deployops",
        )

    def client(self, service: str) -> Any:
        """The (cached) boto3 client for ``service`` (``ecs``, ``elbv2``, ``cloudwatch``...)."""
        with self._lock:
            found = self._clients.get(service)
            if found is None:
                kwargs: dict[str, Any] = {"config": self.botocore_config()}
                endpoint = self.settings.resolved_endpoint()
                if endpoint:
                    kwargs["endpoint_url"] = endpoint
                found = self._boto_session().client(service, **kwargs)
                self._clients[service] = found
            return found

    def _boto_session(self) -> boto3.session.Session:
        if self._session is None:
            base = boto3.session.Session(
                profile_name=self.settings.profile or None, region_name=self.region
            )
            if self.settings.role_arn:
                base = self._assumed(base)
            self._session = base
        return self._session

    def _assumed(self, base: boto3.session.Session) -> boto3.session.Session:
        """A session whose credentials come from ``sts:AssumeRole``, refreshed on expiry."""
        settings = self.settings

        def fetch() -> dict[str, str]:
            kwargs: dict[str, Any] = {"config": self.botocore_config()}
            endpoint = settings.resolved_endpoint()
            if endpoint:
                kwargs["endpoint_url"] = endpoint
            sts = base.client("sts", **kwargs)
            request: dict[str, Any] = {
                "RoleArn": settings.role_arn,
                "RoleSessionName": settings.role_session_name,
            }
            if settings.external_id:
                request["ExternalId"] = settings.external_id
            with map_aws_errors("sts:AssumeRole"):
                creds = sts.assume_role(**request)["Credentials"]
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": creds["Expiration"].isoformat(),
            }

        refreshable: RefreshableCredentials = DeferredRefreshableCredentials(
            refresh_using=fetch, method="assume-role"
        )
        # boto3 has no public setter for refreshable credentials; this is the way botocore's
        # own assume-role provider installs them on a session.
        botocore_session = base._session
        botocore_session._credentials = refreshable
        return boto3.session.Session(botocore_session=botocore_session, region_name=self.region)

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                closer = getattr(client, "close", None)
                if callable(closer):
                    closer()
            self._clients.clear()
