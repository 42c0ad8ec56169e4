"""A full disk under the provider's folder (issue 13): contract answers, nothing half-written.

The provider's base_path is a 512 KiB tmpfs mounted for the test (CI and developers
run as root); a filler file takes the rest of it. Posts then answer 406 in the
contract's body and leave no status, queue entry, temporary file or ledger row; reads
keep working; the spooler retries; once the filler is gone, posts and the spooler go
on by themselves.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FERMIONS_CONFIG

POST = "/api/v2/alqor_fermions_simulator/post_job"
JOB = json.dumps({"experiment_0": {"instructions": [], "num_wires": 1, "shots": 1}})
FAILED = "The job could not be written to storage. Try again later."


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (root is needed): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def provider(disk: Path, user):  # type: ignore[no-untyped-def]
    from backends.models import StorageProviderDb
    from storage_providers import LocalProvider

    base = disk / "storage"
    StorageProviderDb.objects.create(
        name="alqor", storage_type="local", owner=user, login={"base_path": str(base)}
    )
    local = LocalProvider("alqor", base)
    local.upload_config("fermions", json.loads(json.dumps(FERMIONS_CONFIG)))
    return local


def fill(disk: Path) -> Path:
    """Take every free byte of `disk`."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
        while out.write(b"\0" * 4096):
            pass
    return filler


def post(client, token: str):  # type: ignore[no-untyped-def]
    return client.post(POST, {"job": JOB, "token": token}, "application/json")


def documents(base: Path) -> list[Path]:
    return [p for p in base.rglob("*") if p.is_file()]


def test_a_full_disk_refuses_posts_cleanly_and_recovers(client, token, provider, disk):
    from backends.models import Job

    first = post(client, token).json()["job_id"]
    before = sorted(map(str, documents(provider.base_path)))
    filler = fill(disk)

    refused = [post(client, token) for _ in range(3)]
    status = client.get(
        "/api/v2/alqor_fermions_simulator/get_job_status", {"job_id": first, "token": token}
    )

    for response in refused:
        assert (response.status_code, response.json()) == (
            406,
            {"job_id": "None", "status": "ERROR", "detail": FAILED, "error_message": FAILED},
        )
    assert sorted(map(str, documents(provider.base_path))) == before  # no half, no litter
    assert list(Job.objects.values_list("job_id", flat=True)) == [first]
    assert status.status_code == 200

    filler.unlink()
    again = post(client, token)

    assert again.status_code == 200
    assert Job.objects.count() == 2


def test_a_spooler_on_a_full_disk_retries_and_finishes_when_space_returns(provider, disk):
    from spooler.simulators import BACKENDS
    from spooler.worker import Spooler, SpoolerOptions
    from storage_providers import StorageError

    job_id = provider.new_job_id("fermions", "alice")
    experiment = {"instructions": [], "num_wires": 1, "shots": 1, "wire_order": "interleaved"}
    provider.submit_job("fermions", job_id, {"experiment_0": experiment}, username="alice")
    spooler = Spooler(provider, [BACKENDS["fermions"]], options=SpoolerOptions(stamp_every=0))
    filler = fill(disk)

    with pytest.raises(StorageError):
        spooler.step()
    unparsable = []
    for path in provider.base_path.rglob("*.json"):
        try:
            json.loads(path.read_bytes())
        except ValueError:
            unparsable.append(path)

    assert unparsable == []
    assert provider.get_status("fermions", job_id)["status"] == "INITIALIZING"

    filler.unlink()
    while spooler.step():
        pass
    provider.reap_expired(0)  # a claim the full disk interrupted goes back to the queue
    while spooler.step():
        pass

    assert provider.get_status("fermions", job_id)["status"] == "DONE"
