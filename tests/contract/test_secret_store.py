"""The SecretStore contract (SEC-1, SEC-3), run over every store.

Rotating stores (in-memory reference, encrypted file, Secrets Manager on a moto server,
Kubernetes Secrets on a stand-in API server) must move the staging labels as Secrets Manager
does: a new version is AWSPENDING, promotion makes it AWSCURRENT and the old current
AWSPREVIOUS, a repeated step changes nothing, a discarded pending version leaves the current
alone. The fetch-only stores (.env.local, DEPLOYOPS_SECRET_*) share get/list/NotFound.

Stand-ins: moto cannot show IAM, KMS or throttling; the Kubernetes stand-in cannot show RBAC,
admission or volume propagation (tests/support/k8s_standin.py lists what it does not do).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployops.domain.secrets import Stage
from deployops.drivers.local.encrypted import EncryptedFileSecretStore, write_key_file
from deployops.drivers.local.secrets import DotenvSecretStore, EnvironmentSecretStore
from deployops.drivers.memory_secrets import MemorySecretStore
from deployops.errors import NotFoundError
from deployops.ports import RotatingSecretStore, SecretStore
from deployops.secret import Secret
from tests.support.k8s_standin import KubeStandIn
from tests.support.moto_server import moto_server

V1, V2, V3 = (f"00000000-0000-4000-8000-00000000000{i}" for i in (1, 2, 3))
ROTATING = ["memory", "encrypted-file", "aws-secrets-manager", "kubernetes"]


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeStandIn]:
    with KubeStandIn() as k:
        yield k


_counter = iter(range(10_000))


@pytest.fixture(params=ROTATING)
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> RotatingSecretStore:
    kind = request.param
    if kind == "memory":
        return MemorySecretStore()
    if kind == "encrypted-file":
        write_key_file(tmp_path / "key")
        return EncryptedFileSecretStore(path=tmp_path / "secrets.json", key_file=tmp_path / "key")
    if kind == "aws-secrets-manager":
        from deployops.drivers.aws.secretsmanager import SecretsManagerSecretStore

        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        url = request.getfixturevalue("moto_url")
        # a prefix per test: the module's moto server is shared
        return SecretsManagerSecretStore(
            region="ap-northeast-1", endpoint_url=url, prefix=f"t{next(_counter)}/"
        )
    from deployops.drivers.kubernetes_secrets import KubernetesSecretStore

    kube: KubeStandIn = request.getfixturevalue("kube")
    return KubernetesSecretStore(namespace=f"ns{next(_counter)}", host=kube.url)


def _labels(store: RotatingSecretStore, name: str) -> dict[str, set[str]]:
    return {
        v.version_id: {s.value for s in v.stages} for v in store.describe(name).versions if v.stages
    }


def test_sec1_rotating_stores_implement_the_port(store: RotatingSecretStore) -> None:
    assert isinstance(store, RotatingSecretStore)
    assert "rotate" in store.capabilities


def test_sec1_missing_secret_is_not_found_naming_it(store: RotatingSecretStore) -> None:
    with pytest.raises(NotFoundError, match="no-such-secret"):
        store.get("no-such-secret")
    with pytest.raises(NotFoundError):
        store.describe("no-such-secret")


def test_sec3_labels_move_as_secrets_manager_moves_them(store: RotatingSecretStore) -> None:
    name = "database-password"
    store.put_pending(name, Secret("first"), version_id=V1)
    # the first version is current at once (Secrets Manager attaches AWSCURRENT to it)
    assert _labels(store, name) == {V1: {"AWSPENDING", "AWSCURRENT"}}
    store.promote(name, V1)
    assert _labels(store, name) == {V1: {"AWSCURRENT"}}
    assert store.get(name).reveal() == "first"

    store.put_pending(name, Secret("second"), version_id=V2)
    assert store.get(name).reveal() == "first"  # apps still read the current value
    assert store.get_version(name, stage=Stage.PENDING).reveal() == "second"
    store.promote(name, V2)
    assert _labels(store, name) == {V1: {"AWSPREVIOUS"}, V2: {"AWSCURRENT"}}
    assert store.get(name).reveal() == "second"
    assert store.get_version(name, stage=Stage.PREVIOUS).reveal() == "first"

    store.put_pending(name, Secret("third"), version_id=V3)
    store.promote(name, V3)
    labels = _labels(store, name)
    assert labels[V3] == {"AWSCURRENT"} and labels[V2] == {"AWSPREVIOUS"}
    assert V1 not in labels  # at most one version per label
    assert name in store.list()


def test_sec3_every_step_is_idempotent(store: RotatingSecretStore) -> None:
    """A rotation resumed after a crash repeats its last step: nothing changes twice."""
    name = "jwt-secret"
    store.put_pending(name, Secret("a"), version_id=V1)
    store.promote(name, V1)
    store.put_pending(name, Secret("b"), version_id=V2)
    store.put_pending(name, Secret("b"), version_id=V2)
    assert _labels(store, name) == {V1: {"AWSCURRENT"}, V2: {"AWSPENDING"}}
    store.promote(name, V2)
    store.promote(name, V2)
    assert _labels(store, name) == {V1: {"AWSPREVIOUS"}, V2: {"AWSCURRENT"}}
    assert store.get(name).reveal() == "b"


def test_sec3_discarded_pending_leaves_current_untouched(store: RotatingSecretStore) -> None:
    name = "api-keys"
    store.put_pending(name, Secret("keep"), version_id=V1)
    store.promote(name, V1)
    store.put_pending(name, Secret("drop"), version_id=V2)
    store.discard_pending(name, V2)
    store.discard_pending(name, V2)
    labels = _labels(store, name)
    assert labels == {V1: {"AWSCURRENT"}}
    assert store.get(name).reveal() == "keep"
    with pytest.raises(NotFoundError):
        store.get_version(name, stage=Stage.PENDING)


def test_sec1_a_version_is_readable_by_id(store: RotatingSecretStore) -> None:
    name = "encryption-keys"
    store.put_pending(name, Secret("k1"), version_id=V1)
    store.promote(name, V1)
    store.put_pending(name, Secret("k2"), version_id=V2)
    store.promote(name, V2)
    assert store.get_version(name, version_id=V1).reveal() == "k1"
    assert store.get_version(name, version_id=V2).reveal() == "k2"


# ---------------------------------------------------------------- fetch-only stores


@pytest.fixture(params=["env.local", "environment"])
def fetch_store(request: pytest.FixtureRequest, tmp_path: Path) -> SecretStore:
    if request.param == "env.local":
        path = tmp_path / ".env.local"
        path.write_text("JWT_SECRET=from-file\n", encoding="utf-8")
        return DotenvSecretStore(path=path, environment="development")
    return EnvironmentSecretStore(environ={"DEPLOYOPS_SECRET_JWT_SECRET": "from-file"})


def test_sec1_fetch_only_stores_get_list_and_not_found(fetch_store: SecretStore) -> None:
    assert fetch_store.get("jwt-secret").reveal() == "from-file"
    assert fetch_store.list()
    with pytest.raises(NotFoundError, match="nope"):
        fetch_store.get("nope")
    assert "rotate" not in fetch_store.capabilities
    assert not isinstance(fetch_store, RotatingSecretStore)


def test_sec1_env_local_refused_outside_development(tmp_path: Path) -> None:
    path = tmp_path / ".env.local"
    path.write_text("JWT_SECRET=x\n", encoding="utf-8")
    for env in ("staging", "production"):
        with pytest.raises(Exception, match="development only") as info:
            DotenvSecretStore(path=path, environment=env).get("jwt-secret")
        assert "x" not in str(info.value).replace("fix", "").split()  # no value in the error


def test_sec1_encrypted_store_refuses_missing_or_readable_key(tmp_path: Path) -> None:
    from deployops.errors import ConfigError

    store = EncryptedFileSecretStore(path=tmp_path / "s.json", key_file=tmp_path / "key")
    with pytest.raises(ConfigError, match="does not exist") as missing:
        store.get("x")
    assert "deployops secrets keygen" in str(missing.value)
    write_key_file(tmp_path / "key")
    store.put_pending("x", Secret("v"), version_id=V1)
    os.chmod(tmp_path / "key", 0o644)
    with pytest.raises(ConfigError, match="read by other users") as readable:
        store.get("x")
    assert "chmod 600" in str(readable.value)
    os.chmod(tmp_path / "key", 0o600)
    assert store.get_version("x", stage=Stage.PENDING).reveal() == "v"


def test_sec1_encrypted_file_holds_no_plaintext_and_detects_tampering(tmp_path: Path) -> None:
    from deployops.errors import DriverError

    write_key_file(tmp_path / "key")
    store = EncryptedFileSecretStore(path=tmp_path / "s.json", key_file=tmp_path / "key")
    store.put_pending("jwt-secret", Secret("plain-value-123"), version_id=V1)
    store.promote("jwt-secret", V1)
    raw = (tmp_path / "s.json").read_text()
    assert "plain-value-123" not in raw
    assert oct((tmp_path / "s.json").stat().st_mode & 0o777) == "0o600"
    # a ciphertext moved to another secret's name does not decrypt (name is associated data)
    import json

    data = json.loads(raw)
    data["secrets"]["api-keys"] = data["secrets"]["jwt-secret"]
    (tmp_path / "s.json").write_text(json.dumps(data))
    with pytest.raises(DriverError, match="does not decrypt"):
        store.get("api-keys")
    # another key cannot read it
    other = tmp_path / "other"
    write_key_file(other)
    with pytest.raises(DriverError, match="does not decrypt"):
        EncryptedFileSecretStore(path=tmp_path / "s.json", key_file=other).get("jwt-secret")


def test_sec1_secrets_manager_reads_always_name_a_stage(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every GetSecretValue carries VersionStage or VersionId (a bare read can be stale)."""
    import boto3

    from deployops.drivers.aws.secretsmanager import SecretsManagerSecretStore

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("secretsmanager", region_name="ap-northeast-1", endpoint_url=moto_url)
    seen: list[dict[str, object]] = []
    client.meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue",
        lambda params, **_: seen.append(dict(params)),
    )
    store = SecretsManagerSecretStore(region="ap-northeast-1", prefix="stage/", client=client)
    store.put_pending("s", Secret("one"), version_id=V1)
    store.promote("s", V1)
    store.get("s")
    store.get_version("s", version_id=V1)
    assert seen and all("VersionStage" in p or "VersionId" in p for p in seen)


def test_sec1_kubernetes_writes_current_value_key_for_pods(kube: KubeStandIn) -> None:
    """Pods read ``data.value``; it follows AWSCURRENT."""
    import base64

    from deployops.drivers.kubernetes_secrets import KubernetesSecretStore

    store = KubernetesSecretStore(namespace="pods", host=kube.url)
    store.put_pending("jwt-secret", Secret("one"), version_id=V1)
    store.promote("jwt-secret", V1)
    store.put_pending("jwt-secret", Secret("two"), version_id=V2)
    obj = kube.objects[("pods", "jwt-secret")]
    assert base64.b64decode(obj["data"]["value"]).decode() == "one"
    store.promote("jwt-secret", V2)
    obj = kube.objects[("pods", "jwt-secret")]
    assert base64.b64decode(obj["data"]["value"]).decode() == "two"
    assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "deployops"


def test_sec1_kubernetes_api_down_is_a_retryable_driver_error(kube: KubeStandIn) -> None:
    from deployops.drivers.kubernetes_secrets import KubernetesSecretStore
    from deployops.errors import DriverError

    store = KubernetesSecretStore(namespace="down", host=kube.url)
    kube.fail_next.append(503)
    with pytest.raises(DriverError) as info:
        store.get("x")
    assert info.value.retryable
