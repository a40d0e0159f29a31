"""The MlCicd object: one Dagger function per CI step, and the pipelines that compose them.

Each step runs the same ``python -m pipeline ...`` argv as the host runner (``pipeline/dag.py``)
in a container built by ``_containers``. Artefacts travel between steps as Directories placed
at the host runner's paths (``out/...``). Nothing is caught: a failing exec fails the call with
its own output, except where a function must still return a report (its docstring says so).
"""

import tomllib
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Final

import anyio
import dagger
from dagger import DefaultPath, Doc, Ignore, check, dag, function, object_type

from ._containers import (
    CA_SECRET,
    CHAMPION,
    CONFIG,
    EVALUATE,
    GATE,
    IMAGE_MODEL_PATH,
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
    function_cached,
    registry_auth,
    repository,
    run,
    step,
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

Source = Annotated[
    dagger.Directory,
    DefaultPath("/"),
    Ignore(SOURCE_IGNORE),
    Doc("project root (default: this repository, without .git, venvs, caches and local artefacts)"),
]
Full = Annotated[bool, Doc("train on every row instead of the configured CI sample (adds --full)")]
Champion = Annotated[dagger.Directory | None, Doc("champion model artefact directory to gate against")]
ChampionImage = Annotated[
    str,
    Doc(
        f"serving image whose model ({IMAGE_MODEL_PATH}) is the champion, e.g. ghcr.io/acme/churn:production"
    ),
]
Revision = Annotated[
    str, Doc("git commit SHA: the model's git_commit, the image label and the published tag")
]
Address = Annotated[str, Doc("image repository to push to, without tag, e.g. ghcr.io/acme/churn")]
Username = Annotated[str, Doc("registry user name")]
Password = Annotated[dagger.Secret | None, Doc("registry password or token, e.g. env://REGISTRY_TOKEN")]
Approve = Annotated[bool, Doc(f"explicit approval, required to move the {PROTECTED_TAG} tag")]


@object_type
class MlCicd:
    """Lint, test, validate, train, evaluate, gate, build, smoke-test and publish a tabular model."""

    ca_bundle: Annotated[
        dagger.File | None,
        Doc("PEM CA bundle for pip behind a TLS-intercepting proxy (mounted as a secret, never baked in)"),
    ] = None

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

    @function
    async def gate(
        self,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
    ) -> dagger.File:
        """Apply the quality gates (against the champion, when given) and return gates.json."""
        ca, champ = await self._ca(), _champion(champion, champion_image)
        return self._gate(source, ca, full, champ, revision).file(f"{OUT}/gates.json")

    @function
    async def report(
        self,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
    ) -> str:
        """Return the markdown report, written even when a gate failed (the report says which)."""
        ca, champ = await self._ca(), _champion(champion, champion_image)
        return await self._report(source, ca, full, champ, revision).file(REPORT_FILE).contents()

    @function
    async def artifacts(
        self,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
    ) -> dagger.Directory:
        """Return out/ (model, metrics, gates, report, ...), written even when a gate failed."""
        ca, champ = await self._ca(), _champion(champion, champion_image)
        return self._report(source, ca, full, champ, revision).directory(OUT)

    @function
    async def build_image(
        self,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
    ) -> dagger.Container:
        """Build the serving image from the Dockerfile with the gated model inside."""
        ca, champ = await self._ca(), _champion(champion, champion_image)
        return self._image(source, ca, full, champ, revision)

    @function
    async def smoke_test(
        self,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
    ) -> str:
        """Start the serving image as a service and check /health and /predict through it."""
        ca, champ = await self._ca(), _champion(champion, champion_image)
        return await self._smoke_test(source, ca, full, champ, revision).stdout()

    @function_cached("never")
    async def publish(
        self,
        source: Source,
        address: Address,
        revision: Revision,
        registry_username: Username = "",
        registry_password: Password = None,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
    ) -> str:
        """Push the serving image tagged with the commit SHA and return its address with digest."""
        _need_revision(address, revision)
        ca, champ = await self._ca(), _champion(champion, champion_image)
        image = self._image(source, ca, full, champ, revision)
        return await _publish(image, address, revision, registry_username, registry_password)

    @function_cached("never")
    async def promote(
        self,
        image: Annotated[str, Doc("published image to promote, by digest or commit tag")],
        tag: Annotated[str, Doc("tag to move onto that image, e.g. staging or production")] = "staging",
        approve: Approve = False,
        registry_username: Username = "",
        registry_password: Password = None,
    ) -> str:
        """Point a tag (staging, production, ...) at an already published image."""
        return await _move_tag(image, tag, approve, registry_username, registry_password)

    @function_cached("never")
    async def rollback(
        self,
        image: Annotated[str, Doc("earlier published image to restore, by digest or commit tag")],
        tag: Annotated[str, Doc("tag to move back onto that image")] = PROTECTED_TAG,
        approve: Approve = False,
        registry_username: Username = "",
        registry_password: Password = None,
    ) -> str:
        """Move a tag (production by default) back to an earlier published image."""
        return await _move_tag(image, tag, approve, registry_username, registry_password)

    @function_cached("never")
    async def retrain(
        self,
        source: Source,
        address: Address,
        revision: Revision,
        champion_image: ChampionImage = "",
        data: Annotated[dagger.File | None, Doc("new table replacing the configured data file")] = None,
        registry_username: Username = "",
        registry_password: Password = None,
    ) -> str:
        """Validate new data, train on all of it, gate against the champion, publish only if it passes.

        A failed gate is the expected "not better" outcome here: the gate runs with any exit code
        so that the report is still returned, saying the candidate was not published.
        """
        _need_revision(address, revision)
        if data is not None:
            table = tomllib.loads(await source.file(CONFIG).contents())["data"]["path"]
            source = source.with_file(table, data)
        ca, champ = await self._ca(), _champion(None, champion_image)
        await self._validate(source, ca).sync()
        report = await self._report(source, ca, True, champ, revision).file(REPORT_FILE).contents()
        if await self._gate(source, ca, True, champ, revision, dagger.ReturnType.ANY).exit_code() != 0:
            return f"{report}\n\nNot published: the candidate did not pass the gates.\n"
        await self._smoke_test(source, ca, True, champ, revision).sync()
        image = self._image(source, ca, True, champ, revision)
        published = await _publish(image, address, revision, registry_username, registry_password)
        return f"{report}\n\nPublished `{published}`.\n"

    @function_cached("never")
    async def full_pipeline(
        self,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
        address: Annotated[str, Doc("image repository to publish to (default: no publish)")] = "",
        registry_username: Username = "",
        registry_password: Password = None,
    ) -> str:
        """Run the whole DAG and return the markdown report; publish when an address is given.

        lint, test and validate run concurrently; then train, evaluate, gate, report, build_image,
        smoke_test and publish. The report is written before the gate is enforced (that gate runs
        with any exit code), so after a failed gate `dagger call artifacts` returns it from cache.
        """
        if address:
            _need_revision(address, revision)
        ca, champ = await self._ca(), _champion(champion, champion_image)
        await _concurrently(
            self._lint(source, ca).sync, self._test(source, ca).sync, self._validate(source, ca).sync
        )
        report = await self._report(source, ca, full, champ, revision).file(REPORT_FILE).contents()
        await self._gate(source, ca, full, champ, revision).sync()
        await self._smoke_test(source, ca, full, champ, revision).sync()
        if address:
            image = self._image(source, ca, full, champ, revision)
            published = await _publish(image, address, revision, registry_username, registry_password)
            report = f"{report}\n\nPublished `{published}`.\n"
        return report

    # Lazy builders: a container per step, no engine needed until something is awaited.

    async def _ca(self) -> dagger.Secret | None:
        """Return the CA bundle as a named secret (a Dockerfile mounts build secrets by name)."""
        if self.ca_bundle is None:
            return None
        return dag.set_secret(CA_SECRET, await self.ca_bundle.contents())

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
        expect: dagger.ReturnType = dagger.ReturnType.SUCCESS,
    ) -> dagger.Container:
        validated = self._validate(source, ca).directory(OUT)
        evaluated = self._evaluate(source, ca, full, revision).directory(OUT)
        ctr = step(source, ca, validated, evaluated)
        if champion is not None:
            ctr = ctr.with_directory(f"{WORKDIR}/{CHAMPION}", champion)
        return ctr.with_(run(GATE, expect))

    def _report(
        self,
        source: dagger.Directory,
        ca: dagger.Secret | None,
        full: bool = False,
        champion: dagger.Directory | None = None,
        revision: str = "",
    ) -> dagger.Container:
        gated = self._gate(source, ca, full, champion, revision, dagger.ReturnType.ANY).directory(OUT)
        return step(source, ca, gated).with_(run(REPORT))

    def _image(
        self,
        source: dagger.Directory,
        ca: dagger.Secret | None,
        full: bool = False,
        champion: dagger.Directory | None = None,
        revision: str = "",
    ) -> dagger.Container:
        model = self._gate(source, ca, full, champion, revision).directory(MODEL)
        build_args = [
            dagger.BuildArg("BASE_IMAGE", PYTHON_IMAGE),
            dagger.BuildArg("MODEL_DIR", MODEL),
            dagger.BuildArg("REVISION", revision or "unknown"),
        ]
        context = source.with_directory(MODEL, model)
        return context.docker_build(build_args=build_args, secrets=[ca] if ca is not None else None)

    def _smoke_test(
        self,
        source: dagger.Directory,
        ca: dagger.Secret | None,
        full: bool = False,
        champion: dagger.Directory | None = None,
        revision: str = "",
    ) -> dagger.Container:
        service = self._image(source, ca, full, champion, revision).with_exposed_port(PORT)
        gated = self._gate(source, ca, full, champion, revision).directory(OUT)
        return (
            step(source, ca, gated)
            .with_service_binding(SERVICE, service.as_service(use_entrypoint=True))
            .with_(run(SMOKE))
        )


def _champion(champion: dagger.Directory | None, champion_image: str) -> dagger.Directory | None:
    """Return the champion artefact from a Directory or an image (None: the champion gate is skipped)."""
    if champion is not None and champion_image:
        raise ValueError("give either --champion or --champion-image, not both")
    if champion_image:
        return dag.container().from_(champion_image).directory(IMAGE_MODEL_PATH)
    return champion


def _need_revision(address: str, revision: str) -> None:
    """Refuse to publish without the commit SHA that becomes the image tag."""
    if not revision:
        raise ValueError(f"publishing to {address!r} needs --revision (the commit SHA used as the image tag)")


async def _publish(
    image: dagger.Container, address: str, revision: str, username: str, password: dagger.Secret | None
) -> str:
    """Push ``image`` as ``address:revision`` and return the reference with its digest."""
    return await image.with_(registry_auth(address, username, password)).publish(f"{address}:{revision}")


async def _move_tag(
    image: str, tag: str, approve: bool, username: str, password: dagger.Secret | None
) -> str:
    """Publish ``image`` again under ``tag`` in its repository and return the new reference."""
    if tag == PROTECTED_TAG and not approve:
        raise ValueError(f"moving the {PROTECTED_TAG} tag needs --approve (an explicit approval)")
    target = f"{repository(image)}:{tag}"
    auth = registry_auth(target, username, password)
    return await dag.container().with_(auth).from_(image).with_(auth).publish(target)


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
