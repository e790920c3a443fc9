"""Map botocore errors into deployops' error tree, naming the AWS operation and the fix.

Every AWS call of every driver runs inside :func:`map_aws_errors`::

    with map_aws_errors("ecs:UpdateService", resource="service web-green"):
        ecs.update_service(...)

=====================================  ===============================================  ====
AWS / botocore                         deployops error                                  exit
=====================================  ===============================================  ====
no / partial credentials, no profile   ``PlatformUnavailableError`` (configure them)    2
expired / invalid token                ``PlatformUnavailableError`` (log in again)      2
no region, unknown endpoint            ``PlatformUnavailableError`` (set the region)    2
access denied                          ``PlatformUnavailableError`` (IAM, docs/aws.md)  2
cluster, service, listener... absent   ``NotFoundError`` (check names / outputs)        2
throttled after botocore's retries     ``DriverError(retryable=True)``                  1
validation / rejected change           ``DriverError`` with AWS's own message           1
endpoint unreachable, timeouts         ``DriverError(retryable=True)``                  1
anything else from AWS                 ``DriverError``                                  1
=====================================  ===============================================  ====

Messages carry AWS's error code and message, never request parameters (which may hold secret
values, e.g. a task definition's environment).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from botocore import exceptions as bx

from deployops.errors import (
    DeployopsError,
    DriverError,
    NotFoundError,
    PlatformUnavailableError,
)

__all__ = [
    "ACCESS_DENIED_CODES",
    "EXPIRED_CODES",
    "NOT_FOUND_CODES",
    "THROTTLING_CODES",
    "VALIDATION_CODES",
    "error_code",
    "map_aws_errors",
]

DRIVER = "aws"

EXPIRED_CODES: Final = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AuthFailure",
    }
)
ACCESS_DENIED_CODES: Final = frozenset(
    {"AccessDenied", "AccessDeniedException", "AuthorizationError", "UnauthorizedOperation"}
)
THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
NOT_FOUND_CODES: Final = frozenset(
    {
        "ClusterNotFoundException",
        "ServiceNotFoundException",
        "ServiceNotActiveException",
        "ListenerNotFound",
        "RuleNotFound",
        "TargetGroupNotFound",
        "LoadBalancerNotFound",
        "ResourceNotFoundException",
        "ResourceNotFound",
        "ObjectNotFoundException",
        "NotFound",
        "NotFoundException",
        "ObjectNotFound",
        "ResourceNotFoundFault",
        "DBInstanceNotFound",
        "DBInstanceNotFoundFault",
        "DBSnapshotNotFound",
        "DBSnapshotNotFoundFault",
        "DBInstanceAutomatedBackupNotFound",
        "NoSuchHostedZone",
    }
)
VALIDATION_CODES: Final = frozenset(
    {
        "ValidationError",
        "ValidationException",
        "InvalidParameterException",
        "InvalidParameterValue",
        "InvalidParameterValueException",
        "InvalidParameter",
        "InvalidParameterCombination",
        "InvalidConfigurationRequest",
        "InvalidAction",
        "IncompatibleProtocols",
        "InvalidTarget",
        "InvalidLoadBalancerAction",
        "OperationNotPermitted",
        "ResourceInUse",
        "TargetGroupAssociationLimit",
        "TooManyTargetGroups",
        "TooManyActions",
        "PlatformUnknownException",
        "PlatformTaskDefinitionIncompatibilityException",
        "UnsupportedFeatureException",
        "ClientException",
    }
)

_CREDENTIALS_FIX = (
    "configure credentials (`aws configure`, `aws sso login`, AWS_PROFILE, or an instance/task "
    "role) or set environments.<env>.aws.profile in deployops.yaml"
)
_EXPIRED_FIX = (
    "the credentials are expired or invalid: log in again (`aws sso login --profile NAME`) or "
    "refresh AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN"
)
_REGION_FIX = "set environments.<env>.aws.region in deployops.yaml (e.g. ap-northeast-1)"
_ACCESS_FIX = "grant the permission to the role deployops runs as; docs/aws.md lists the policy"
_NOT_FOUND_FIX = (
    "check the names in deployops.yaml and the Terraform outputs file "
    "(`terraform -chdir=infrastructure output -json > tf-outputs.json`), and the region"
)
_THROTTLE_FIX = (
    "AWS throttled the call after every retry; wait a minute and run the command again, or "
    "raise the account's API rate limit"
)
_UNREACHABLE_FIX = (
    "check the network, the region, and AWS_ENDPOINT_URL / environments.<env>.aws.endpoint_url"
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ``ClientError`` (``""`` for anything else)."""
    if isinstance(exc, bx.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _aws_message(exc: bx.ClientError) -> str:
    err = exc.response.get("Error", {})
    code = str(err.get("Code", "")) or "error"
    message = str(err.get("Message", "")).strip()
    return f"{code}: {message}" if message else code


@contextmanager
def map_aws_errors(operation: str, *, resource: str = "", driver: str = DRIVER) -> Iterator[None]:
    """Translate botocore exceptions raised inside the block (see the module's table).

    ``operation`` is the AWS API name (``elbv2:ModifyListener``); ``resource`` what it acted on,
    for messages (``listener web-prod``). deployops errors raised inside pass through.
    """
    what = f" ({resource})" if resource else ""
    try:
        yield
    except DeployopsError:
        raise
    except (bx.NoCredentialsError, bx.PartialCredentialsError, bx.ProfileNotFound) as exc:
        raise PlatformUnavailableError(
            f"AWS {operation}{what}: no usable AWS credentials ({exc})",
            path="environments.<env>.aws",
            hint=_CREDENTIALS_FIX,
        ) from exc
    except (bx.TokenRetrievalError, bx.SSOTokenLoadError, bx.UnauthorizedSSOTokenError) as exc:
        raise PlatformUnavailableError(
            f"AWS {operation}{what}: the login session has expired ({exc})",
            path="environments.<env>.aws",
            hint=_EXPIRED_FIX,
        ) from exc
    except bx.NoRegionError as exc:
        raise PlatformUnavailableError(
            f"AWS {operation}{what}: no region configured",
            path="environments.<env>.aws.region",
            hint=_REGION_FIX,
        ) from exc
    except bx.UnknownEndpointError as exc:
        raise PlatformUnavailableError(
            f"AWS {operation}{what}: no endpoint for this region ({exc})",
            path="environments.<env>.aws.region",
            hint=_REGION_FIX,
        ) from exc
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError) as exc:
        raise DriverError(
            driver,
            operation,
            f"AWS did not answer{what}: {exc}",
            retryable=True,
            hint=_UNREACHABLE_FIX,
        ) from exc
    except bx.ParamValidationError as exc:
        raise DriverError(
            driver,
            operation,
            f"request rejected before sending{what}: {exc}",
            hint="this is a deployops bug or a bad value in deployops.yaml; run "
            "`deployops config validate` and report the message if the file is valid",
        ) from exc
    except bx.ClientError as exc:
        raise _from_client_error(exc, operation, what, driver) from exc
    except bx.BotoCoreError as exc:
        raise DriverError(driver, operation, f"{exc}{what}") from exc


def _from_client_error(
    exc: bx.ClientError, operation: str, what: str, driver: str
) -> DeployopsError:
    code = error_code(exc)
    text = _aws_message(exc)
    if code in EXPIRED_CODES:
        return PlatformUnavailableError(
            f"AWS {operation}{what}: credentials rejected ({text})",
            path="environments.<env>.aws",
            hint=_EXPIRED_FIX,
        )
    if code in ACCESS_DENIED_CODES:
        return PlatformUnavailableError(
            f"AWS {operation}{what}: access denied ({text})",
            path="environments.<env>.aws",
            hint=_ACCESS_FIX,
        )
    if code in NOT_FOUND_CODES:
        return NotFoundError(
            f"AWS {operation}{what}: not found ({text})",
            path="environments.<env>.aws",
            hint=_NOT_FOUND_FIX,
        )
    if code in THROTTLING_CODES:
        return DriverError(
            driver, operation, f"throttled{what} ({text})", retryable=True, hint=_THROTTLE_FIX
        )
    if code in VALIDATION_CODES:
        return DriverError(
            driver,
            operation,
            f"AWS rejected the request{what} ({text}); nothing was changed by this call",
            hint="fix the value AWS names (deployops.yaml or the Terraform outputs) and run "
            "the command again",
        )
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return DriverError(driver, operation, f"{text}{what}", retryable=status >= 500)
