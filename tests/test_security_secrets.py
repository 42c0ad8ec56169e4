"""No secret in a log line, an error body or the admin (issue 13): everything captured is grepped.

A session of requests that use a token in every way it can be sent, fail in every way
that logs something (wrong tokens, a MongoDB server that is down, Dropbox refusing its
credentials, a readiness probe), then walk the admin's lists and change pages. Every log
record, everything written to stdout and stderr, and every answer's body is searched for
the token, the MongoDB password and the Dropbox secrets.
"""

from __future__ import annotations

import json
import logging

import pytest

from tests.mongo import PASSWORD

APP_SECRET = "dropbox-app-secret-4f1e"
REFRESH = "dropbox-refresh-token-9a7c"
JOB = json.dumps({"experiment_0": {"instructions": [], "num_wires": 1, "shots": 1}})


@pytest.fixture
def providers(storage, mongo, box, user, settings):  # type: ignore[no-untyped-def]
    from backends.models import StorageProviderDb

    settings.MONGODB_SERVER_SELECTION_TIMEOUT = 0.5
    settings.DROPBOX_TIMEOUT = 2
    mongo_row = StorageProviderDb.objects.create(
        name="mongolab", storage_type="mongodb", owner=user, login=mongo.login()
    )
    login = {**box.login(), "app_secret": APP_SECRET, "refresh_token": REFRESH}
    box_row = StorageProviderDb.objects.create(
        name="boxlab", storage_type="dropbox", owner=user, login=login
    )
    return mongo_row, box_row


def test_no_secret_is_logged_answered_or_shown(
    client, admin_client, token, providers, mongo, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    mongo_row, box_row = providers
    bodies = []

    def keep(response):  # type: ignore[no-untyped-def]
        bodies.append(response.content.decode(errors="replace"))
        return response

    status = "/api/v2/alqor_fermions_simulator/get_job_status"
    post = "/api/v2/alqor_fermions_simulator/post_job"
    posted = keep(client.post(post, {"job": JOB, "token": token}, content_type="application/json"))
    job_id = posted.json()["job_id"]
    keep(client.get(status, {"job_id": job_id, "token": token}))
    keep(client.get(status, {"job_id": job_id}, HTTP_AUTHORIZATION=f"Bearer {token}"))
    keep(client.get(status, {"job_id": "../../etc", "token": token}))
    keep(client.get(status, {"job_id": job_id, "token": token + "x"}))
    keep(client.post(post, f'{{"job": {JOB!r}, "token": "{token}"'.encode(), "application/json"))
    mongo.stop()
    keep(client.get("/api/v2/mongolab_fermions_simulator/get_config"))
    keep(
        client.get(
            f"/api/v2/mongolab_fermions_simulator/get_job_status?job_id={job_id}&token={token}"
        )
    )
    keep(client.get("/api/v2/boxlab_fermions_simulator/get_config"))  # the double refuses them
    keep(client.get("/api/v2/backends"))
    keep(client.get("/readyz"))
    for page in (
        "/admin/backends/storageproviderdb/",
        f"/admin/backends/storageproviderdb/{mongo_row.pk}/change/",
        f"/admin/backends/storageproviderdb/{box_row.pk}/change/",
        "/admin/backends/token/",
        "/admin/backends/job/",
    ):
        response = keep(admin_client.get(page))
        assert response.status_code == 200, page
    from backends.models import Token

    keep(admin_client.get(f"/admin/backends/token/{Token.objects.first().pk}/change/"))
    out, err = capfd.readouterr()
    captured = "\n".join([*bodies, out, err, *(r.getMessage() for r in caplog.records)])
    captured += "\n".join(str(r.args) for r in caplog.records)

    for secret in (token, PASSWORD, APP_SECRET, REFRESH):
        assert secret not in captured
    assert "mongolab" in captured and "boxlab" in captured  # the pages were about them
