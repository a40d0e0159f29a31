"""Environment failures (a full or read-only disk): one ``error:`` line naming the path and the OS error, exit 4.

Never exit 1, which says a check failed (and, to the retrain workflow, that the model is not
better). The disks are real: a 64 KiB tmpfs filled to its last byte gives ENOSPC, a read-only
tmpfs EROFS. Mounting needs root on Linux; elsewhere these tests skip, saying why.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.errors import DataError, EnvironmentFailure, environment_failure
from tests.conftest import REPO, Project


def mount_tmpfs(where: Path, options: str) -> None:
    """Mount a tmpfs with ``options`` on ``where``, or skip the test saying why it cannot be done here."""
    if not sys.platform.startswith("linux"):
        pytest.skip("a real full disk comes from a small tmpfs, which needs Linux")
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a real full disk) needs root")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("no mount/umount command to make a small tmpfs (a real full disk)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (no CAP_SYS_ADMIN?): {done.stderr.strip()}")


def unmount(where: Path) -> None:
    if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """Return a directory on a 64 KiB tmpfs filled to its last byte: every write there fails with ENOSPC."""
    where = tmp_path / "full"
    where.mkdir()
    mount_tmpfs(where, "size=64k,mode=0755")
    try:
        fd = os.open(where / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        finally:
            os.close(fd)
        yield where
    finally:
        unmount(where)


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    """Return a directory on a read-only tmpfs: every write there fails with EROFS."""
    where = tmp_path / "read-only"
    where.mkdir()
    mount_tmpfs(where, "ro,size=64k")
    try:
        yield where
    finally:
        unmount(where)


def pipeline(*argv: str) -> tuple[int, str]:
    """Run ``python -m pipeline ARGV`` as a process of its own; return its exit code and stderr."""
    done = subprocess.run([sys.executable, "-m", "pipeline", *argv], cwd=REPO, capture_output=True, text=True)
    return done.returncode, done.stderr


def assert_one_environment_line(code: int, err: str, path: Path, reason: str) -> None:
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 4, f"expected exit 4 (environment), got {code}:\n{err}"
    assert len(errors) == 1, f"expected one error line:\n{err}"
    assert str(path) in errors[0] and reason in errors[0], (
        f"the line names neither {path} nor {reason}: {errors[0]}"
    )
    assert "Traceback" not in err, f"a traceback leaked:\n{err}"


def test_train_onto_a_full_disk_exits_4_naming_the_path_and_enospc(
    make_project: Callable[..., Project], full_disk: Path
) -> None:
    # given a project whose --out is on a full disk
    project = make_project(rows=300)
    out = full_disk / "out"

    # when
    code, err = pipeline("train", "--config", str(project.config), "--out", str(out))

    # then
    assert_one_environment_line(code, err, out, "No space left on device (ENOSPC)")


def test_train_onto_a_read_only_disk_exits_4_naming_erofs(
    make_project: Callable[..., Project], read_only_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(rows=300)
    out = read_only_disk / "out"
    capsys.readouterr()

    code = main(["train", "--config", str(project.config), "--out", str(out)])

    assert_one_environment_line(code, capsys.readouterr().err, out, "Read-only file system (EROFS)")


def test_run_with_its_out_on_a_full_disk_exits_4(
    make_project: Callable[..., Project], full_disk: Path
) -> None:
    # given a run whose --out is on a full disk: the runner's own first write (run.json) fails
    project = make_project(rows=300)
    out = full_disk / "out"

    code, err = pipeline(
        "run", "--config", str(project.config), "--out", str(out), "--skip", "lint,test", "--image", "never"
    )

    assert_one_environment_line(code, err, out, "No space left on device (ENOSPC)")


@pytest.mark.slow
def test_a_step_that_fills_the_disk_fails_the_run_with_4(
    make_project: Callable[..., Project], full_disk: Path, tmp_path: Path
) -> None:
    # given a run whose registry (written by the register step) is on a full disk
    project = make_project(rows=600, config=lambda c: c["registry"].update(path=str(full_disk / "registry")))

    # when
    code, err = pipeline(
        "run", "--config", str(project.config), "--out", str(project.out), "--skip", "lint,test",
        "--image", "never", "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip

    # then the step that hit the full disk exits 4, and so does the run
    failed = [line for line in err.splitlines() if line.lstrip().startswith("FAILED")]
    assert code == 4, f"expected the run to exit 4, got {code}:\n{err}"
    assert len(failed) == 1 and failed[0].rstrip().endswith("exit 4"), err
    assert "(exit 4)" in err.splitlines()[-2] + err.splitlines()[-1], err
    assert "No space left on device (ENOSPC)" in err and str(full_disk) in err, err
    assert "Traceback" not in err, err


def test_an_os_error_behind_another_error_is_an_environment_failure() -> None:
    # a bad-input error raised while reading a file the machine refused: the machine's fault
    try:
        try:
            raise PermissionError(errno.EACCES, "Permission denied", "data.csv")
        except OSError:
            raise DataError("data.csv: cannot read") from None
    except DataError as exc:
        found = environment_failure(exc)

    assert found is not None and found.exit_code == 4
    assert str(found) == "data.csv: Permission denied (EACCES)"


def test_a_missing_file_is_not_an_environment_failure() -> None:
    assert environment_failure(FileNotFoundError(errno.ENOENT, "No such file or directory", "x.csv")) is None
    assert environment_failure(DataError("x.csv: data file not found")) is None
    assert environment_failure(EnvironmentFailure("disk full")) is not None
