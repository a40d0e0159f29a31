"""The MlCicd object: one Dagger function per CI step, and the pipelines that compose them.

Each step runs the same ``python -m pipeline ...`` argv as the host runner (``pipeline/dag.py``)
in a container built by ``_containers``. Artefacts travel between steps as Directories placed
at the host runner's paths (``out/...``). Nothing is caught: a failing exec fails the call with
its own output, except where a function must still return a report (its docstring says so).

Cache policy (each function's decorator; the README's table, "Dagger", is checked against it):
functions of the source alone keep the engine's default (results reused for identical arguments);
functions that take a champion image by tag run once per ``dagger call`` ("session"), since the
tag may have moved; functions with side effects never reuse a result ("never").
"""

import json
import tomllib
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Final

import anyio
import dagger
from dagger import DefaultPath, Doc, Ignore, check, dag, function, object_type

from ._containers import (
    CHAMPION,
    CHAMPION_PLATFORM,
    CONFIG,
    EVALUATE,
    GATE,
    LINT,
    MODEL,
    OUT,
    PORT,
    PYTHON_IMAGE,
    REPORT,
    SERVICE,
    SMOKE,
    TEST,
    TRAIN,
    VALIDATE,
    WORKDIR,
    Build,
    ca_secret,
    champion_model,
    function_cached,
    image_labels,
    registry_auth,
    repository,
    run,
    step,
    tag_mover,
)

SOURCE_IGNORE: Final[list[str]] = [
    ".git",
    ".venv",
    "**/__pycache__",
    "**/.pytest_cache",
    "**/.mypy_cache",
    "**/.ruff_cache",
    ".cache",
    "out",
    "registry",
    "sdk",
    "build",
    "dist",
    "**/*.egg-info",
]
PROTECTED_TAG: Final[str] = "production"
REPORT_FILE: Final[str] = f"{OUT}/report.md"
SESSION, NEVER = "session", "never"

Source = Annotated[
    dagger.Directory,
    DefaultPath("/"),
    Ignore(SOURCE_IGNORE),
    Doc("project root (default: this repository, without .git, venvs, caches and local artefacts)"),
]
Full = Annotated[bool, Doc("train on every row instead of the configured CI sample (adds --full)")]
Champion = Annotated[dagger.Directory | None, Doc("champion model artefact directory to gate against")]
ChampionImage = Annotated[
    str, Doc("serving image whose model (/app/model) is the champion, e.g. ghcr.io/acme/churn:production")
]
Revision = Annotated[
    str, Doc("git commit SHA: the model's git_commit, the image label and the published tag")
]
Address = Annotated[str, Doc("image repository to push to, without tag, e.g. ghcr.io/acme/churn")]
Approve = Annotated[bool, Doc(f"explicit approval, required to move the {PROTECTED_TAG} tag")]


class GateFailed(Exception):
    """The candidate did not pass its required gates; the message is the report."""


@object_type
class MlCicd:
    """Lint, test, validate, train, evaluate, gate, build, smoke-test and publish a tabular model."""

    ca_bundle: Annotated[
        dagger.File | None,
        Doc(
            "PEM CA for pip behind a TLS-intercepting proxy (a secret, never baked in; at most 128,000 bytes)"
        ),
    ] = None
    registry_username: Annotated[str, Doc("registry user name, for the champion image and publishing")] = ""
    registry_password: Annotated[
        dagger.Secret | None, Doc("registry password or token, e.g. env://REGISTRY_TOKEN")
    ] = None
    champion_platform: Annotated[
        str,
        Doc(f"platform to pull the champion image for (default {CHAMPION_PLATFORM}; only files are read)"),
    ] = CHAMPION_PLATFORM
    repository: Annotated[
        str, Doc("repository URL for the image's source label, e.g. https://github.com/acme/churn")
    ] = ""

    @function
    @check
    async def lint(self, source: Source) -> str:
        """Run ruff check, ruff format --check, mypy and actionlint."""
        return await self._lint(source, await self._ca()).stdout()

    @function
    @check
    async def test(self, source: Source) -> str:
        """Run the default test suite (no slow, docker or dagger tests)."""
        return await self._test(source, await self._ca()).stdout()

    @function
    @check
    async def validate(self, source: Source) -> str:
        """Validate the configured table against its schema and drift reference."""
        return await self._validate(source, await self._ca()).stdout()

    @function
    async def train(self, source: Source, full: Full = False, revision: Revision = "") -> dagger.Directory:
        """Train the model and return its artefact directory (out/model)."""
        return self._train(source, await self._ca(), full, revision).directory(MODEL)

    @function
    async def evaluate(self, source: Source, full: Full = False, revision: Revision = "") -> dagger.File:
        """Evaluate the trained model on held-out rows and return metrics.json."""
        return self._evaluate(source, await self._ca(), full, revision).file(f"{OUT}/metrics.json")

    @function_cached(SESSION)
    async def gate(
        self,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
    ) -> dagger.File:
        """Apply the quality gates (against the champion, when given) and return gates.json."""
        ca, champ = await self._ca(), self._champion(champion, champion_image)
        return self._gate(source, ca, full, champ, revision).file(f"{OUT}/gates.json")

    @function_cached(SESSION)
    async def report(
        self,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
    ) -> str:
        """Return the markdown report, written even when a gate failed (the report says which)."""
        ca, champ = await self._ca(), self._champion(champion, champion_image)
        return await self._report(source, ca, full, champ, revision).file(REPORT_FILE).contents()

    @function_cached(SESSION)
    async def artifacts(
        self,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
    ) -> dagger.Directory:
        """Return out/ (model, metrics, gates, report, ...), written even when a gate failed."""
        ca, champ = await self._ca(), self._champion(champion, champion_image)
        return self._report(source, ca, full, champ, revision).directory(OUT)

    @function_cached(SESSION)
    async def build_image(
        self,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
    ) -> dagger.Container:
        """Build the serving image from the Dockerfile with the gated model inside."""
        ca, champ = await self._ca(), self._champion(champion, champion_image)
        return await self._passing_image(source, ca, full, champ, revision)

    @function_cached(SESSION)
    async def smoke_test(
        self,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
    ) -> str:
        """Start the serving image as a service and check /health and /predict through it."""
        ca, champ = await self._ca(), self._champion(champion, champion_image)
        image = await self._passing_image(source, ca, full, champ, revision)
        return await self._smoke_test(source, ca, image, full, champ, revision).stdout()

    @function_cached(NEVER)
    async def publish(
        self,
        source: Source,
        address: Address,
        revision: Revision,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
    ) -> str:
        """Push the serving image tagged with the commit SHA and return its address with digest."""
        _need_revision(address, revision)
        ca, champ = await self._ca(), self._champion(champion, champion_image)
        image = await self._passing_image(source, ca, full, champ, revision)
        return await self._publish(image, address, revision)

    @function_cached(NEVER)
    async def promote(
        self,
        image: Annotated[str, Doc("published image to promote, by digest or commit tag")],
        tag: Annotated[str, Doc("tag to move onto that image, e.g. staging or production")] = "staging",
        approve: Approve = False,
    ) -> str:
        """Point a tag (staging, production, ...) at an already published image, keeping its digest."""
        return await self._move_tag(image, tag, approve)

    @function_cached(NEVER)
    async def rollback(
        self,
        image: Annotated[str, Doc("earlier published image to restore, by digest or commit tag")],
        tag: Annotated[str, Doc("tag to move back onto that image")] = PROTECTED_TAG,
        approve: Approve = False,
    ) -> str:
        """Move a tag (production by default) back to an earlier published image, keeping its digest."""
        return await self._move_tag(image, tag, approve)

    @function_cached(NEVER)
    async def retrain(
        self,
        source: Source,
        address: Address,
        revision: Revision,
        champion_image: ChampionImage = "",
        data: Annotated[dagger.File | None, Doc("new table replacing the configured data file")] = None,
    ) -> str:
        """Validate new data, train on all of it, gate against the champion, publish only if it passes.

        Exit 1 from the gate is the expected "not better" outcome: the report is returned, saying the
        candidate was not published, and the call succeeds. Any other failure (bad data, exit 2 from
        the gate) fails the call.
        """
        _need_revision(address, revision)
        if data is not None:
            table = tomllib.loads(await source.file(CONFIG).contents())["data"]["path"]
            source = source.with_file(table, data)
        ca, champ = await self._ca(), self._champion(None, champion_image)
        await self._validate(source, ca).sync()
        gated = self._gate(source, ca, True, champ, revision)
        report = await self._report_of(source, ca, gated).file(REPORT_FILE).contents()
        not_better = retrain_outcome(await gated.exit_code(), report)
        if not_better is not None:
            return not_better
        image = await self._image(source, ca, gated, revision)
        await self._smoke_test(source, ca, image, True, champ, revision).sync()
        published = await self._publish(image, address, revision)
        return f"{report}\n\nPublished `{published}`.\n"

    @function_cached(NEVER)
    async def full_pipeline(
        self,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
        address: Annotated[str, Doc("image repository to publish to (default: no publish)")] = "",
    ) -> str:
        """Run the whole DAG and return the markdown report; publish when an address is given.

        lint, test and validate run concurrently; then train, evaluate and gate (once, whatever its exit
        code), the report; when a required gate did not pass the call fails with the report as its
        error; otherwise build_image, smoke_test and publish.
        """
        if address:
            _need_revision(address, revision)
        ca, champ = await self._ca(), self._champion(champion, champion_image)
        await _concurrently(
            self._lint(source, ca).sync, self._test(source, ca).sync, self._validate(source, ca).sync
        )
        gated = self._gate(source, ca, full, champ, revision)
        report = await self._report_of(source, ca, gated).file(REPORT_FILE).contents()
        await _require_pass(gated, report)
        image = await self._image(source, ca, gated, revision)
        await self._smoke_test(source, ca, image, full, champ, revision).sync()
        if address:
            published = await self._publish(image, address, revision)
            report = f"{report}\n\nPublished `{published}`.\n"
        return report

    # Lazy builders: a container per step, no engine needed until something is awaited.

    async def _ca(self) -> dagger.Secret | None:
        """Return the CA bundle as a named secret (a Dockerfile mounts build secrets by name)."""
        return None if self.ca_bundle is None else ca_secret(await self.ca_bundle.contents())

    def _auth(self, address: str) -> Build:
        return registry_auth(address, self.registry_username, self.registry_password)

    def _champion(self, champion: dagger.Directory | None, champion_image: str) -> dagger.Directory | None:
        """Return the champion artefact from a Directory or an image (None: the champion gate is skipped)."""
        if champion is not None and champion_image:
            raise ValueError("give either --champion or --champion-image, not both")
        if champion_image:
            return champion_model(champion_image, self.champion_platform, self._auth(champion_image))
        return champion

    def _lint(self, source: dagger.Directory, ca: dagger.Secret | None) -> dagger.Container:
        # actionlint finds the workflows from the repository root, marked by .git (not in the source)
        return step(source, ca).with_directory(f"{WORKDIR}/.git", dag.directory()).with_(run(LINT))

    def _test(self, source: dagger.Directory, ca: dagger.Secret | None) -> dagger.Container:
        return step(source, ca).with_(run(TEST))

    def _validate(self, source: dagger.Directory, ca: dagger.Secret | None) -> dagger.Container:
        return step(source, ca).with_(run(VALIDATE))

    def _train(
        self, source: dagger.Directory, ca: dagger.Secret | None, full: bool = False, revision: str = ""
    ) -> dagger.Container:
        ctr = step(source, ca)
        if revision:
            ctr = ctr.with_env_variable("GIT_COMMIT", revision)
        return ctr.with_(run([(*argv, "--full") if full else argv for argv in TRAIN]))

    def _evaluate(
        self, source: dagger.Directory, ca: dagger.Secret | None, full: bool = False, revision: str = ""
    ) -> dagger.Container:
        trained = self._train(source, ca, full, revision).directory(OUT)
        return step(source, ca, trained).with_(run(EVALUATE))

    def _gate(
        self,
        source: dagger.Directory,
        ca: dagger.Secret | None,
        full: bool = False,
        champion: dagger.Directory | None = None,
        revision: str = "",
    ) -> dagger.Container:
        """The gate step, run whatever its exit code: callers read ``exit_code()`` (one gate exec per call)."""
        validated = self._validate(source, ca).directory(OUT)
        evaluated = self._evaluate(source, ca, full, revision).directory(OUT)
        ctr = step(source, ca, validated, evaluated)
        if champion is not None:
            ctr = ctr.with_directory(f"{WORKDIR}/{CHAMPION}", champion)
        return ctr.with_(run(GATE, dagger.ReturnType.ANY))

    def _report(
        self,
        source: dagger.Directory,
        ca: dagger.Secret | None,
        full: bool = False,
        champion: dagger.Directory | None = None,
        revision: str = "",
    ) -> dagger.Container:
        return self._report_of(source, ca, self._gate(source, ca, full, champion, revision))

    def _report_of(
        self, source: dagger.Directory, ca: dagger.Secret | None, gated: dagger.Container
    ) -> dagger.Container:
        return step(source, ca, gated.directory(OUT)).with_(run(REPORT))

    async def _passing_image(
        self,
        source: dagger.Directory,
        ca: dagger.Secret | None,
        full: bool,
        champion: dagger.Directory | None,
        revision: str,
    ) -> dagger.Container:
        """Build the image of a model whose required gates passed (else fail with the report)."""
        gated = self._gate(source, ca, full, champion, revision)
        if await gated.exit_code() != 0:
            await _require_pass(gated, await self._report_of(source, ca, gated).file(REPORT_FILE).contents())
        return await self._image(source, ca, gated, revision)

    async def _image(
        self, source: dagger.Directory, ca: dagger.Secret | None, gated: dagger.Container, revision: str
    ) -> dagger.Container:
        """Build the serving image from the gated model, with the same labels as the host build."""
        out = gated.directory(OUT)
        metadata = json.loads(await out.file("model/metadata.json").contents())
        metrics = json.loads(await out.file("metrics.json").contents())
        labels = image_labels(metadata, metrics, revision, self.repository)
        return self._build(source, ca, out.directory("model"), labels)

    def _build(
        self,
        source: dagger.Directory,
        ca: dagger.Secret | None,
        model: dagger.Directory,
        labels: dict[str, str],
    ) -> dagger.Container:
        build_args = [dagger.BuildArg("BASE_IMAGE", PYTHON_IMAGE), dagger.BuildArg("MODEL_DIR", MODEL)]
        build_args += [dagger.BuildArg(name, value) for name, value in labels.items()]
        context = source.with_directory(MODEL, model)
        return context.docker_build(build_args=build_args, secrets=[ca] if ca is not None else None)

    def _smoke_test(
        self,
        source: dagger.Directory,
        ca: dagger.Secret | None,
        image: dagger.Container,
        full: bool = False,
        champion: dagger.Directory | None = None,
        revision: str = "",
    ) -> dagger.Container:
        service = image.with_exposed_port(PORT).as_service(use_entrypoint=True)
        gated = self._gate(source, ca, full, champion, revision).directory(OUT)
        return step(source, ca, gated).with_service_binding(SERVICE, service).with_(run(SMOKE))

    async def _publish(self, image: dagger.Container, address: str, revision: str) -> str:
        """Push ``image`` as ``address:revision`` and return the reference with its digest."""
        return await image.with_(self._auth(address)).publish(f"{address}:{revision}")

    async def _move_tag(self, image: str, tag: str, approve: bool) -> str:
        """Point ``tag`` of ``image``'s repository at its published manifest; return ``repo:tag@digest``."""
        if tag == PROTECTED_TAG and not approve:
            raise ValueError(f"moving the {PROTECTED_TAG} tag needs --approve (an explicit approval)")
        target = f"{repository(image)}:{tag}"
        mover = tag_mover(image, target, self.registry_username, self.registry_password)
        return (await mover.stdout()).strip().splitlines()[-1]


def _need_revision(address: str, revision: str) -> None:
    """Refuse to publish without the commit SHA that becomes the image tag."""
    if not revision:
        raise ValueError(f"publishing to {address!r} needs --revision (the commit SHA used as the image tag)")


async def _require_pass(gated: dagger.Container, report: str) -> None:
    """Raise :class:`GateFailed` carrying ``report`` when the gate step did not exit 0.

    This is where the module catches a step's outcome rather than letting it fail the call: the
    user must see the report (``dagger call`` prints the error message in full) and the call must
    still exit non-zero.
    """
    failure = gate_failure(await gated.exit_code(), report)
    if failure is not None:
        raise failure


def gate_failure(code: int, report: str) -> GateFailed | None:
    """Return the error for a gate step that exited ``code`` (None when it passed), the report first."""
    if code == 0:
        return None
    return GateFailed(
        f"{report}\n\nthe gate step exited {code}: the candidate did not pass its required gates"
    )


def retrain_outcome(code: int, report: str) -> str | None:
    """Decide a retrain from its gate's exit code: None to go on and publish, else the call's result.

    1 is the CLI's "a check ran and did not pass": the call succeeds with the report and says nothing
    was published. Any other non-zero code (2: bad input or config) is no verdict on the model:
    raise, so that the job fails.
    """
    if code == 0:
        return None
    if code == 1:
        return f"{report}\n\nNot published: the candidate did not pass the gates.\n"
    raise GateFailed(
        f"{report}\n\nthe gate step exited {code}, which is no verdict on the model (2: bad input or "
        "config); nothing published"
    )


async def _concurrently(*steps: Callable[[], Coroutine[Any, Any, object]]) -> None:
    """Run ``steps`` concurrently; on failure re-raise the first error itself, not a group."""
    try:
        async with anyio.create_task_group() as group:
            for each in steps:
                group.start_soon(each)
    except ExceptionGroup as failures:
        raise _first(failures) from None


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
