"""The MlCicd object: one Dagger function per CI step, and the pipelines that compose them.

Each step runs the same ``python -m pipeline ...`` argv as the host runner (``pipeline/dag.py``)
in a container built from ``spec.py`` (the definition the container replica builds from too).
Artefacts travel between steps as Directories placed at the host runner's paths (``out/...``).
A single step's function lets a failing exec fail the call with its own output. The whole DAG
(``report``, ``artifacts``, ``full_pipeline``) runs like the host runner: every step's exit code is
read, the first failure stops the steps after it, the report always runs and names every step's
outcome; ``full_pipeline`` then fails inside the failing step's container, so ``dagger call -i``
opens a shell where that step ran and the error shows the report once.

Cache policy (each function's decorator; the README's table, "Dagger", is checked against it):
functions of the source alone keep the engine's default (results reused for identical arguments);
functions that take a champion image by tag run once per ``dagger call`` ("session"), since the
tag may have moved; functions with side effects never reuse a result ("never").
"""

import json
import posixpath
import tomllib
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, NoReturn

import anyio
import dagger
from dagger import DefaultPath, Doc, Ignore, check, dag, function, object_type

from ._containers import (
    CHAMPION_PLATFORM,
    Build,
    ca_secret,
    champion_model,
    function_cached,
    image_context,
    model_inputs,
    python_env,
    registry_auth,
    run,
    tag_mover,
    tool_source,
)
from .spec import (
    CHAMPION,
    CONFIG,
    IMAGE_STEP,
    KEY_DIR,
    KEY_ENV,
    KEY_VOLUME,
    MODEL,
    OUT,
    PLATFORMS,
    PORT,
    PRODUCERS,
    PYTHON_IMAGE,
    REPORT_FILE,
    SERVICE,
    SOURCE_IGNORE,
    WORKDIR,
    commands,
    image_labels,
    platforms,
    report_flags,
    repository,
    step,
)

PROTECTED_TAG: Final[str] = "production"
VERSION_FILE: Final[str] = (
    "VERSION"  # ml-cicd's version, the one place (the wheel's version is read from it too)
)
FAILURE_REPORT: Final[str] = "/tmp/ml-cicd-report.md"  # where a failing call shows the report from
SESSION, NEVER = "session", "never"
ANY = dagger.ReturnType.ANY

Source = Annotated[
    dagger.Directory,
    DefaultPath("/"),
    Ignore(list(SOURCE_IGNORE)),
    Doc(
        "the team's project: its config, data, tests and lint settings (ml-cicd's own code comes from this "
        "module). Called as a remote module (-m), pass --source=.: the default is the module's own "
        "repository, ml-cicd's churn example"
    ),
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
StepName = Annotated[
    str, Doc("step to open: lint, test, validate, train, evaluate, gate, smoke_test or report")
]


class GateFailed(Exception):
    """The candidate did not pass, or the pipeline stopped; the message says which step and why."""


Outcome = tuple[str, int, str]  # status (ok, failed, skipped), exit code, note


@dataclass
class Ran:
    """A whole-DAG run: how each step ended, the container each ran in, and the report step."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    containers: dict[str, dagger.Container] = field(default_factory=dict)
    outs: dict[str, dagger.Directory] = field(default_factory=dict)  # the out/ each step left, if any
    images: list[dagger.Container] = field(default_factory=list)  # one per platform, the first smoke-tested
    report: dagger.Container | None = None

    def report_file(self) -> dagger.File | None:
        """Return report.md of the report step, when it ran."""
        return None if self.report is None else self.report.file(REPORT_FILE)

    def failed(self) -> str | None:
        """Return the first step that failed, or None."""
        return next((name for name, (status, _, _) in self.outcomes.items() if status == "failed"), None)


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
    platforms: Annotated[
        str,
        Doc(
            "platforms to build and publish the serving image for, comma-separated (default linux/amd64, "
            "what production runs, whatever the engine's own platform); the first is smoke-tested"
        ),
    ] = ",".join(PLATFORMS)
    repository: Annotated[
        str, Doc("repository URL for the image's source label, e.g. https://github.com/acme/churn")
    ] = ""
    config: Annotated[str, Doc(f"the project's config file, a path inside --source (default {CONFIG})")] = (
        CONFIG
    )
    signing_key: Annotated[
        dagger.Secret | None,
        Doc(
            "key that signs and checks model artefacts, e.g. env://ML_CICD_SIGNING_KEY (CI's secret); "
            "default: a key this engine keeps"
        ),
    ] = None

    @function
    @check
    async def lint(self, source: Source) -> str:
        """Run the project's lint commands (checks.lint of its config; default: ruff when it configures ruff)."""
        return await self._chain("lint", source, await self._ca()).stdout()

    @function
    @check
    async def test(self, source: Source) -> str:
        """Run the project's tests (checks.test of its config; default: pytest when it has tests/)."""
        return await self._chain("test", source, await self._ca()).stdout()

    @function
    async def version(self) -> str:
        """Return this module's ml-cicd version (the version of the pip package built from the same source)."""
        return (await tool_source().file(VERSION_FILE).contents()).strip()

    @function
    async def dev_checks(self) -> str:
        """Run ml-cicd's own development checks (its lint, mypy, actionlint and tests) on the module's source."""
        tool, ca = tool_source(), await self._ca()
        out = ""
        for name in ("lint", "test"):  # ml-cicd's own config (CONFIG) names its development checks
            ctr = self._before(name, tool, ca, {}).with_(run(commands(step(name), False, CONFIG)))
            out += await ctr.stdout()
        return out

    @function
    @check
    async def validate(self, source: Source) -> str:
        """Validate the configured table against its schema and drift reference."""
        return await self._chain("validate", source, await self._ca()).stdout()

    @function
    async def train(self, source: Source, full: Full = False, revision: Revision = "") -> dagger.Directory:
        """Train the model and return its artefact directory (out/model)."""
        return self._chain("train", source, await self._ca(), full, None, revision).directory(MODEL)

    @function
    async def evaluate(self, source: Source, full: Full = False, revision: Revision = "") -> dagger.File:
        """Evaluate the trained model on held-out rows and return metrics.json."""
        ctr = self._chain("evaluate", source, await self._ca(), full, None, revision)
        return ctr.file(f"{OUT}/metrics.json")

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
        return self._chain("gate", source, ca, full, champ, revision).file(f"{OUT}/gates.json")

    @function_cached(SESSION)
    async def report(
        self,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
    ) -> str:
        """Run the whole DAG and return the markdown report, whatever failed (the report says what)."""
        ran = await self._pipeline(source, champion, champion_image, full, revision)
        assert ran.report is not None
        return await ran.report.file(REPORT_FILE).contents()

    @function_cached(SESSION)
    async def artifacts(
        self,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
    ) -> dagger.Directory:
        """Run the whole DAG and return out/ (report, run.json, model, metrics, gates, ...), whatever failed."""
        ran = await self._pipeline(source, champion, champion_image, full, revision)
        assert ran.report is not None
        return ran.report.directory(OUT)

    @function_cached(SESSION)
    async def build_image(
        self,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
    ) -> dagger.Container:
        """Build the serving image from the Dockerfile with the gated model inside (the first platform)."""
        ca, champ = await self._ca(), self._champion(champion, champion_image)
        gated = await self._passed_gate(source, ca, full, champ, revision)
        return (await self._images(ca, gated, revision))[0]

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
        gated = await self._passed_gate(source, ca, full, champ, revision)
        image = (await self._images(ca, gated, revision))[0]
        smoke = self._before("smoke_test", source, ca, {"gate": gated.directory(OUT)}, service=image)
        return await smoke.with_(run(self._commands("smoke_test"))).stdout()

    @function_cached(SESSION)
    async def step(
        self,
        name: StepName,
        source: Source,
        champion: Champion = None,
        champion_image: ChampionImage = "",
        full: Full = False,
        revision: Revision = "",
    ) -> dagger.Container:
        """Return the container a step ran in, after its commands (any exit code), to open a terminal there."""
        ca, champ = await self._ca(), self._champion(champion, champion_image)
        spec = step(name)
        if spec.name == "smoke_test":
            gated = await self._passed_gate(source, ca, full, champ, revision)
            image = (await self._images(ca, gated, revision))[0]
            ctr = self._before(name, source, ca, {"gate": gated.directory(OUT)}, service=image)
        elif spec.name == "report":
            ran = await self._pipeline(source, champion, champion_image, full, revision)
            assert ran.report is not None
            return ran.report
        else:
            inputs = {
                need: self._chain(need, source, ca, full, champ, revision).directory(OUT)
                for need in spec.inputs
            }
            ctr = self._before(name, source, ca, inputs, full, champ, revision)
        return ctr.with_(run(self._commands(name, full), ANY))

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
        """Push the serving image (every platform) tagged with the commit SHA and return its address with digest."""
        _need_revision(address, revision)
        ca, champ = await self._ca(), self._champion(champion, champion_image)
        gated = await self._passed_gate(source, ca, full, champ, revision)
        return await self._publish(await self._images(ca, gated, revision), address, revision)

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

        The decision is read from gates.json: present and not passed is the expected "not better"
        outcome (the report is returned, nothing is published, the call succeeds). Anything else that
        is not a pass (bad data, exit 2, a crash with no gates.json) fails the call with its error.
        """
        _need_revision(address, revision)
        if data is not None:
            source = source.with_file(await _data_path(source, self.config), data)
        ca, champ = await self._ca(), self._champion(None, champion_image)
        ran = Ran()
        for name in ("validate", "train", "evaluate", "gate"):
            await self._run_step(ran, name, source, ca, True, champ, revision)
            if ran.failed():
                break
        report = await self._report_text(ran, source, ca)
        stopped = ran.failed()
        if stopped is not None and stopped != "gate":
            _, code, note = ran.outcomes[stopped]
            await _fail_in(ran.containers[stopped], stopped, code, ran.report_file(), note)
        gated = ran.containers["gate"]
        names = await gated.directory(OUT).entries()
        gates = await gated.file(f"{OUT}/gates.json").contents() if "gates.json" in names else None
        not_better = retrain_outcome(ran.outcomes["gate"][1], gates, report)
        if not_better is not None:
            return not_better
        images = await self._images(ca, gated, revision)
        smoke = self._before("smoke_test", source, ca, {"gate": gated.directory(OUT)}, service=images[0])
        await smoke.with_(run(self._commands("smoke_test"))).sync()
        published = await self._publish(images, address, revision)
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

        lint, test and validate run concurrently; then train, evaluate, gate, the image, its smoke test
        and the report (always). When a step failed, the call fails inside that step's container (its
        error is the report, then one line naming the step); otherwise the image is published.
        """
        if address:
            _need_revision(address, revision)
        ran = await self._pipeline(source, champion, champion_image, full, revision)
        assert ran.report is not None
        failed = ran.failed()
        if failed is not None:
            _, code, note = ran.outcomes[failed]
            await _fail_in(ran.containers.get(failed), failed, code, ran.report_file(), note)
        report = await ran.report.file(REPORT_FILE).contents()
        if address:
            published = await self._publish(ran.images, address, revision)
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

    def _before(
        self,
        name: str,
        source: dagger.Directory,
        ca: dagger.Secret | None,
        inputs: dict[str, dagger.Directory],
        full: bool = False,
        champion: dagger.Directory | None = None,
        revision: str = "",
        service: dagger.Container | None = None,
    ) -> dagger.Container:
        """Return step ``name``'s container before its commands: env, source, the inputs' out/, extras."""
        spec = step(name)
        ctr = dag.container().with_(python_env(tool_source(), ca)).with_directory(WORKDIR, source)
        ctr = ctr.with_mounted_cache(KEY_DIR, dag.cache_volume(KEY_VOLUME))
        if self.signing_key is not None:
            ctr = ctr.with_secret_variable(KEY_ENV, self.signing_key)
        for need in spec.inputs:
            ctr = ctr.with_directory(f"{WORKDIR}/{OUT}", inputs[need])
        if spec.git_marker:
            ctr = ctr.with_directory(f"{WORKDIR}/.git", dag.directory())
        if spec.champion and champion is not None:
            ctr = ctr.with_directory(f"{WORKDIR}/{CHAMPION}", champion)
        if spec.revision and revision:
            ctr = ctr.with_env_variable("GIT_COMMIT", revision)
        if spec.service and service is not None:
            ctr = ctr.with_service_binding(
                SERVICE, service.with_exposed_port(PORT).as_service(use_entrypoint=True)
            )
        return ctr

    def _chain(
        self,
        name: str,
        source: dagger.Directory,
        ca: dagger.Secret | None,
        full: bool = False,
        champion: dagger.Directory | None = None,
        revision: str = "",
    ) -> dagger.Container:
        """Return step ``name`` after its commands, its inputs' steps before it (the gate runs with any exit code)."""
        spec = step(name)
        inputs = {
            need: self._chain(need, source, ca, full, champion, revision).directory(OUT)
            for need in spec.inputs
        }
        ctr = self._before(name, source, ca, inputs, full, champion, revision)
        return ctr.with_(
            run(self._commands(name, full), ANY if name == "gate" else dagger.ReturnType.SUCCESS)
        )

    async def _passed_gate(
        self,
        source: dagger.Directory,
        ca: dagger.Secret | None,
        full: bool,
        champion: dagger.Directory | None,
        revision: str,
    ) -> dagger.Container:
        """Return the gate step's container, failing the call from inside it when the gate did not pass."""
        gated = self._chain("gate", source, ca, full, champion, revision)
        code = await gated.exit_code()
        if code != 0:
            shown = dag.directory().with_new_file("gate.txt", await gated.stdout()).file("gate.txt")
            await _fail_in(gated, "gate", code, shown)
        return gated

    async def _run_step(
        self,
        ran: Ran,
        name: str,
        source: dagger.Directory,
        ca: dagger.Secret | None,
        full: bool = False,
        champion: dagger.Directory | None = None,
        revision: str = "",
        service: dagger.Container | None = None,
    ) -> None:
        """Run step ``name`` command by command with any exit code, stopping at the first failure; record it."""
        spec = step(name)
        inputs = {need: ran.containers[need].directory(OUT) for need in spec.inputs}
        ctr = self._before(name, source, ca, inputs, full, champion, revision, service)
        code = 0
        for argv in self._commands(name, full):
            ctr = ctr.with_exec(list(argv), expect=ANY)
            code = await ctr.exit_code()
            if code != 0:
                break
        ran.containers[name] = ctr
        if code == 0:
            ran.outcomes[name] = ("ok", 0, "")
        else:
            ran.outcomes[name] = ("failed", code, error_line(await ctr.stdout() + "\n" + await ctr.stderr()))
        if name in PRODUCERS and (code == 0 or OUT in await ctr.directory(WORKDIR).entries()):
            ran.outs[name] = ctr.directory(OUT)

    async def _pipeline(
        self,
        source: dagger.Directory,
        champion: dagger.Directory | None,
        champion_image: str,
        full: bool,
        revision: str,
    ) -> Ran:
        """Run the whole DAG as the host runner does and return how it went, the report included."""
        ca, champ = await self._ca(), self._champion(champion, champion_image)
        ran = Ran()

        def first(name: str) -> Callable[[], Coroutine[Any, Any, None]]:
            return lambda: self._run_step(ran, name, source, ca)

        await _concurrently(first("lint"), first("test"), first("validate"))
        ran.outcomes = {name: ran.outcomes[name] for name in ("lint", "test", "validate")}
        for name in ("train", "evaluate", "gate"):
            if ran.failed() is None:
                await self._run_step(ran, name, source, ca, full, champ, revision)
        if ran.failed() is None:
            images = await self._images(ca, ran.containers["gate"], revision)
            try:
                await images[0].sync()
            except dagger.QueryError as error:
                ran.outcomes[IMAGE_STEP] = ("failed", 1, error_line(str(error)))
            else:
                ran.images = images
                ran.outcomes[IMAGE_STEP] = ("ok", 0, "")
                await self._run_step(ran, "smoke_test", source, ca, service=images[0])
        ran.report = self._report(ran, source, ca)
        return ran

    def _report(self, ran: Ran, source: dagger.Directory, ca: dagger.Secret | None) -> dagger.Container:
        """Return the report step: every producer's out/ merged in order, every step's outcome as --step."""
        ctr = self._before("report", source, ca, {})
        for name in PRODUCERS:
            if name in ran.outs:
                ctr = ctr.with_directory(f"{WORKDIR}/{OUT}", ran.outs[name])
        argv = (*self._commands("report")[0], *report_flags(ran.outcomes))
        return ctr.with_exec(list(argv))

    async def _report_text(self, ran: Ran, source: dagger.Directory, ca: dagger.Secret | None) -> str:
        ran.report = self._report(ran, source, ca)
        return await ran.report.file(REPORT_FILE).contents()

    async def _images(
        self, ca: dagger.Secret | None, gated: dagger.Container, revision: str
    ) -> list[dagger.Container]:
        """Build the serving image of the gated model for each platform, with the host build's labels."""
        out = gated.directory(OUT)
        metadata = json.loads(await out.file("model/metadata.json").contents())
        metrics = json.loads(await out.file("metrics.json").contents())
        labels = image_labels(metadata, metrics, revision, self.repository)
        model = out.directory("model")
        inputs = model_inputs(gated, self.config)
        return [self._build(ca, model, labels, platform, inputs) for platform in platforms(self.platforms)]

    def _commands(self, name: str, full: bool = False) -> tuple[tuple[str, ...], ...]:
        """Return step ``name``'s argv with this call's config."""
        return commands(step(name), full, self.config)

    def _build(
        self,
        ca: dagger.Secret | None,
        model: dagger.Directory,
        labels: dict[str, str],
        platform: str = PLATFORMS[0],
        inputs: dagger.Directory | None = None,
    ) -> dagger.Container:
        """Build the serving image from ml-cicd's Dockerfile (the module's source), never the project's.

        ``inputs``: what the model adds to the context (``pipeline image inputs`` in the gate's container).
        """
        build_args = [dagger.BuildArg("BASE_IMAGE", PYTHON_IMAGE), dagger.BuildArg("MODEL_DIR", MODEL)]
        build_args += [dagger.BuildArg(name, value) for name, value in labels.items()]
        context = image_context(tool_source(), model, inputs if inputs is not None else dag.directory())
        return context.docker_build(
            platform=dagger.Platform(platform),
            build_args=build_args,
            secrets=[ca] if ca is not None else None,
        )

    async def _publish(self, images: list[dagger.Container], address: str, revision: str) -> str:
        """Push ``images`` (one per platform) as ``address:revision``; return the reference with its digest."""
        first, *variants = images
        return await first.with_(self._auth(address)).publish(
            f"{address}:{revision}", platform_variants=variants or None
        )

    async def _move_tag(self, image: str, tag: str, approve: bool) -> str:
        """Point ``tag`` of ``image``'s repository at its published manifest; return ``repo:tag@digest``."""
        if tag == PROTECTED_TAG and not approve:
            raise ValueError(f"moving the {PROTECTED_TAG} tag needs --approve (an explicit approval)")
        target = f"{repository(image)}:{tag}"
        mover = tag_mover(image, target, self.registry_username, self.registry_password, uuid.uuid4().hex)
        return (await mover.stdout()).strip().splitlines()[-1]


def _need_revision(address: str, revision: str) -> None:
    """Refuse to publish without the commit SHA that becomes the image tag."""
    if not revision:
        raise ValueError(f"publishing to {address!r} needs --revision (the commit SHA used as the image tag)")


async def _data_path(source: dagger.Directory, config: str) -> str:
    """Return the configured table's path in the source (``[data] path``, relative to the config's directory)."""
    path = str(tomllib.loads(await source.file(config).contents())["data"]["path"])
    return (
        path if path.startswith("/") else posixpath.normpath(posixpath.join(posixpath.dirname(config), path))
    )


def failure_line(name: str, code: int) -> str:
    """Return the one line that says which step stopped the pipeline and what its exit code means."""
    if name == "gate" and code == 1:
        return "the gate step exited 1: the candidate did not pass its required gates"
    if code == 2:
        return f"the {name} step exited 2: bad input or config, no verdict on the model"
    return f"the {name} step failed (exit {code})"


async def _fail_in(
    ctr: dagger.Container | None, name: str, code: int, report: dagger.File | None, note: str = ""
) -> NoReturn:
    """Fail the call from inside ``ctr``, the container step ``name`` ran in: ``dagger call -i`` opens a shell there.

    The error shows the report once (when there is one), then :func:`failure_line`. This is the one
    place the module turns a step's outcome into a failure itself, after the report was made.
    """
    line = failure_line(name, code)
    if ctr is None:  # the image build: no step container to open
        text = await report.contents() if report is not None else ""
        raise GateFailed(f"{text}\n\n{line}: {note}".lstrip())
    script = 'printf "\\n%s\\n" "$1" >&2; exit "$2"'
    if report is not None:
        ctr = ctr.with_file(FAILURE_REPORT, report)
        script = f"cat {FAILURE_REPORT} >&2; " + script
    await ctr.with_exec(["sh", "-c", script, "fail", line, str(code)]).sync()
    raise GateFailed(line)  # not reached: the exec above fails with the step's exit code


def retrain_outcome(code: int, gates: str | None, report: str) -> str | None:
    """Decide a retrain from gates.json: None to go on and publish, else the call's result.

    ``gates`` is the text of gates.json, None when the gate step wrote none. Only a publishable pass
    goes on: exit 0, ``passed`` and ``publishable`` (every required gate passed). A pass with a
    warning (``publishable`` false: an inconclusive no-regression that gates.champion.inconclusive =
    "warn" lets a check pass) and a verdict of "not passed" with exit 1 publish nothing: the call
    succeeds with the report and one line saying why. Anything else (exit 2, a crash with no
    gates.json, a file that contradicts the exit code) is no verdict on the model: raise.
    """
    verdict: object = None
    publishable: object = None
    undecided: list[str] = []
    try:
        record = json.loads(gates) if gates is not None else {}
        verdict, publishable = record.get("passed"), record.get("publishable")
        undecided = [
            f"{g['name']} {g['status']}"
            for g in record.get("gates", [])
            if g.get("required") and g.get("status") in ("failed", "inconclusive", "error")
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        verdict = publishable = None
    if code == 0 and verdict is True and publishable is True:
        return None
    if code == 0 and verdict is True and publishable is False:
        named = ", ".join(undecided) or "a required gate did not pass"
        return (
            f"{report}\n\nNot published: the candidate passed the check with a warning ({named}); "
            "publishing needs every required gate passed.\n"
        )
    if code == 1 and verdict is False:
        return f"{report}\n\nNot better, not published: the candidate did not pass the gates.\n"
    written = (
        "no gates.json" if gates is None else f"gates.json says passed={verdict}, publishable={publishable}"
    )
    raise GateFailed(f"{report}\n\n{failure_line('gate', code)} with {written}: nothing published")


def error_line(output: str) -> str:
    """Return a failed step's one-line reason: its last ``error:`` line, else its last line (as the host runner)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["no output"])[-1].removeprefix("error: ")


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
