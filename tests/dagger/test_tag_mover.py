"""The module's tag mover (``MOVE_TAG`` in src/ml_cicd/_containers.py), run for real on loopback.

``promote`` and ``rollback`` run this script in a container with Debian's skopeo. Here the same
script runs on the host against Debian's docker-registry on 127.0.0.1 with htpasswd auth, on a
two-platform image index written by hand: the tag must land on the very manifest bytes that were
published (same digest, both platforms), and nothing moves without the credentials. Marked
``docker`` (tools CI installs with the engine: scripts/docker-engine.sh); skipped without them here,
failed without them under ``ML_CICD_REQUIRE_DOCKER=1``.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO
from tests.dagger.registry import PASSWORD, USER, Registry, serve

pytestmark = pytest.mark.docker
PLATFORMS = (("linux", "amd64"), ("linux", "arm64"))
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def containers() -> ModuleType:
    src = str(REPO / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    return importlib.import_module("ml_cicd._containers")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with serve(tmp_path_factory.mktemp("registry")) as running:
        yield running


def _blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _two_platform_layout(layout: Path, build: str) -> bytes:
    """Write an OCI layout (ref ``v1``): one index over two one-file images of ``build``; return the index bytes."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    manifests = []
    for os_name, arch in PLATFORMS:
        payload = io.BytesIO()
        with tarfile.open(fileobj=payload, mode="w") as tar:
            text = f"{build} for {arch}\n".encode()
            info = tarfile.TarInfo("app/model/PLATFORM")
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
        layer = payload.getvalue()
        diff_id = f"sha256:{hashlib.sha256(layer).hexdigest()}"
        config = {"architecture": arch, "os": os_name, "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json"}
            | _blob(layout, json.dumps(config).encode()),
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar"} | _blob(layout, layer)],
        }
        entry = {"mediaType": OCI_MANIFEST} | _blob(layout, json.dumps(manifest).encode())
        manifests.append(entry | {"platform": {"os": os_name, "architecture": arch}})
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, indent=1
    ).encode()
    top = (
        {"mediaType": OCI_INDEX}
        | _blob(layout, index)
        | {"annotations": {"org.opencontainers.image.ref.name": "v1"}}
    )
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return index


def _move(
    registry: Registry, containers: ModuleType, image: str, target: str, password: str | None
) -> subprocess.CompletedProcess[str]:
    """Run MOVE_TAG with the variables ``tag_mover`` sets (the password as a secret variable)."""
    env = registry.env | {
        "IMAGE": image,
        "REPOSITORY": containers.repository(image),
        "TARGET": target,
        "REGISTRY_USERNAME": USER,
    }
    if password is not None:
        env["REGISTRY_PASSWORD"] = password
    return subprocess.run(
        ["bash", "-c", containers.MOVE_TAG], env=env, capture_output=True, text=True, timeout=180
    )


@pytest.fixture(scope="module")
def published(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    """Push a two-platform index as <registry>/acme/churn:abc123; return its reference and bytes."""
    layout = tmp_path_factory.mktemp("layout")
    index = _two_platform_layout(layout, "abc123")
    image = f"{registry.host}/acme/churn:abc123"
    done = registry.skopeo(
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-creds",
        registry.creds,
        f"oci:{layout}:v1",
        f"docker://{image}",
    )
    assert done.returncode == 0, done.stderr.decode()
    return image, index


def test_moved_tag_keeps_the_published_digest_and_every_platform(
    registry: Registry, containers: ModuleType, published: tuple[str, bytes]
) -> None:
    # given an index published under a commit tag
    image, index = published
    digest = f"sha256:{hashlib.sha256(index).hexdigest()}"
    target = f"{registry.host}/acme/churn:production"
    # when the module's tag mover points production at it
    done = _move(registry, containers, image, target, PASSWORD)
    # then it reports the tag with the published digest
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"{target}@{digest}"
    # and the registry serves the same manifest bytes, both platforms included
    raw = registry.skopeo("inspect", "--raw", "--creds", registry.creds, f"docker://{target}")
    assert raw.returncode == 0, raw.stderr.decode()
    assert raw.stdout == index, "the index was re-encoded: its digest changed"
    platforms = {
        (m["platform"]["os"], m["platform"]["architecture"]) for m in json.loads(raw.stdout)["manifests"]
    }
    assert platforms == set(PLATFORMS)


def test_moving_a_tag_back_restores_the_earlier_digest(
    registry: Registry, containers: ModuleType, published: tuple[str, bytes], tmp_path: Path
) -> None:
    # given production on a newer build
    image, index = published
    newer = tmp_path / "newer"
    assert _two_platform_layout(newer, "def456") != index
    newer_ref = f"{registry.host}/acme/churn:def456"
    done = registry.skopeo(
        "copy", "--all", "--dest-creds", registry.creds, f"oci:{newer}:v1", f"docker://{newer_ref}"
    )
    assert done.returncode == 0, done.stderr.decode()
    target = f"{registry.host}/acme/churn:production"
    assert _move(registry, containers, newer_ref, target, PASSWORD).returncode == 0
    # when it is rolled back to the earlier commit tag
    done = _move(registry, containers, image, target, PASSWORD)
    # then production is the earlier index again, byte for byte
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"@sha256:{hashlib.sha256(index).hexdigest()}")
    raw = registry.skopeo("inspect", "--raw", "--creds", registry.creds, f"docker://{target}")
    assert raw.stdout == index


def test_without_credentials_nothing_moves(
    registry: Registry, containers: ModuleType, published: tuple[str, bytes]
) -> None:
    image, _ = published
    target = f"{registry.host}/acme/churn:unauthorised"
    done = _move(registry, containers, image, target, None)
    assert done.returncode != 0
    assert "unauthorized" in done.stderr.lower() or "authentication" in done.stderr.lower(), done.stderr
    check = registry.skopeo("inspect", "--raw", "--creds", registry.creds, f"docker://{target}")
    assert check.returncode != 0, "the tag moved without credentials"
