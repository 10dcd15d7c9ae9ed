"""The functions' botocore session (services/common/aws_session.py, decision 0035): its loader knows
the functions' services without listing botocore's data, loads the very models botocore's own loader
loads, reads `AWS_DATA_PATH` as botocore does, and refuses a service it was not told about."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path

import botocore.loaders
import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError

from services.common import aws, aws_session


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A new session per test, in a region, with nothing left cached for the next."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    factories = [
        aws_session.session,
        aws.dynamodb_client,
        aws.s3_client,
        aws.events_client,
        aws.kms_client,
        aws.socialmessaging_client,
        aws.scheduler_client,
    ]
    for factory in factories:
        factory.cache_clear()
    yield
    for factory in factories:
        factory.cache_clear()


def test_every_client_the_functions_make_has_the_model_botocores_own_loader_finds(fresh: None) -> None:
    plain = botocore.session.get_session()
    made = [
        aws.dynamodb_client(),
        aws.s3_client(),
        aws.events_client(),
        aws.kms_client(),
        aws.socialmessaging_client(),
        aws.scheduler_client(),
    ]
    assert sorted(client.meta.service_model.service_name for client in made) == sorted(aws_session.SERVICES)
    for client in made:
        name = client.meta.service_model.service_name
        theirs = plain.create_client(name, region_name="eu-west-1")
        assert client.meta.service_model.api_version == theirs.meta.service_model.api_version
        assert client.meta.service_model.operation_names == theirs.meta.service_model.operation_names
        assert client.meta.endpoint_url == theirs.meta.endpoint_url


def test_the_loader_lists_only_the_functions_services_and_reads_no_other_folder(
    fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed: list[str] = []
    listdir = os.listdir

    def counting(path: str) -> list[str]:
        listed.append(path)
        return listdir(path)

    monkeypatch.setattr("botocore.loaders.os.listdir", counting)
    aws.dynamodb_client()
    assert listed, "the loader read no folder: the check counts nothing"
    # botocore's own loader lists its data folder, then each of its 400-odd services' folders.
    assert all(Path(path).name in aws_session.SERVICES for path in listed), listed


def test_a_service_it_was_not_told_about_is_refused(fresh: None) -> None:
    with pytest.raises(UnknownServiceError):
        aws_session.session().create_client("sqs")


def test_aws_data_path_is_searched_as_botocore_searches_it(
    fresh: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A model under `AWS_DATA_PATH` in a later API version is the one loaded, as botocore would."""
    loader = botocore.loaders.Loader()
    newer = tmp_path / "dynamodb" / "2099-01-01"
    newer.mkdir(parents=True)
    model = loader.load_service_model("dynamodb", "service-2")
    model["metadata"]["apiVersion"] = "2099-01-01"
    (newer / "service-2.json.gz").write_bytes(gzip.compress(json.dumps(model).encode()))
    rules = loader.load_service_model("dynamodb", "endpoint-rule-set-1")
    (newer / "endpoint-rule-set-1.json.gz").write_bytes(gzip.compress(json.dumps(rules).encode()))
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    assert aws.dynamodb_client().meta.service_model.api_version == "2099-01-01"
