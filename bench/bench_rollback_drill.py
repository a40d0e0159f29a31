"""Rollback drill: serve v1 as production, promote and serve v2, roll back, serve v1 again.

    ML_CICD_BASE_IMAGE=local/python:3.11-bookworm .venv/bin/python bench/bench_rollback_drill.py

Uses the directory registry and the local Docker engine. Images are tagged by the model's
sha256, so the image of a rolled-back version still exists: the rollback is an alias move
in the registry plus a restart of that image. Prints the time from the rollback command to
the first correct response (``/metadata`` reports v1's model sha256).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline import image  # noqa: E402


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, check=True, capture_output=True)


def _served_sha(url: str) -> str | None:
    parsed = urlparse(url)
    try:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=2)
        connection.request("GET", "/metadata")
        response = connection.getresponse()
        return json.loads(response.read()).get("model_sha256") if response.status == 200 else None
    except OSError:
        return None


def _serve(out: Path, expected: str) -> tuple[str, str]:
    """Start the image of ``out/model`` (building it only if no image has its sha) and wait for it."""
    tag = f"ml-cicd-model:{expected[:12]}"
    exists = subprocess.run([image.docker_bin(), "image", "inspect", tag], capture_output=True, check=False)
    if exists.returncode != 0:
        image.build(out, tag=tag)
    url, container = image.start_service(tag)
    deadline = time.monotonic() + 120
    while _served_sha(url) != expected:
        if time.monotonic() > deadline:
            sys.exit(f"{tag} never served {expected[:12]}")
        time.sleep(0.05)
    return url, container


def main() -> None:
    """Run the drill and print its timings."""
    if not image.engine_available():
        sys.exit("no Docker engine answers: run scripts/docker-engine.sh")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry = root / "registry"
        text = (
            (REPO / "configs" / "pipeline.toml")
            .read_text()
            .replace('path = "registry"', f'path = "{registry}"')
        )
        shas = {}
        for version, c in ((1, "1.0"), (2, "0.05")):
            config = root / f"v{version}.toml"
            config.write_text(text.replace("C = 1.0", f"C = {c}"))
            out = root / f"out{version}"
            for step in ("validate", "train", "evaluate", "gate"):
                _cli(
                    step,
                    "--config",
                    str(config),
                    "--out",
                    str(out),
                    *(["--champion", str(root / "none")] if step == "gate" else []),
                )
            _cli(
                "registry",
                "register",
                str(out / "model"),
                "--config",
                str(config),
                "--gates",
                str(out / "gates.json"),
            )
            shas[version] = json.loads((out / "model" / "metadata.json").read_text())["model_sha256"]
        config = root / "v1.toml"
        serving = root / "serving"

        _cli("registry", "promote", "1", "--to", "production", "--approve", "--config", str(config))
        _cli("registry", "export", "production", "--to", str(serving), "--config", str(config))
        url, container = _serve_dir(serving, shas[1], root)
        print(f"v1 served ({shas[1][:12]}) at {url}")

        _cli("registry", "promote", "2", "--to", "production", "--approve", "--config", str(config))
        _cli("registry", "export", "production", "--to", str(serving), "--config", str(config))
        image.stop_service(container)
        url, container = _serve_dir(serving, shas[2], root)
        print(f"v2 served ({shas[2][:12]}) at {url}")

        started = time.perf_counter()
        _cli("registry", "rollback", "production", "--config", str(config))
        _cli("registry", "export", "production", "--to", str(serving), "--config", str(config))
        image.stop_service(container)
        url, container = _serve_dir(serving, shas[1], root)
        seconds = time.perf_counter() - started
        image.stop_service(container)
    print(
        f"rollback production -> v1 answering correctly: {seconds:.2f} s (alias move, export, stop v2, start v1)"
    )


def _serve_dir(model_dir: Path, expected: str, root: Path) -> tuple[str, str]:
    """Serve the exported artefact ``model_dir`` (laid out as OUT/model for ``image.build``)."""
    out = root / f"serve-{expected[:12]}"
    if not (out / "model").exists():
        out.mkdir()
        subprocess.run(["cp", "-r", str(model_dir), str(out / "model")], check=True)
    return _serve(out, expected)


if __name__ == "__main__":
    main()
