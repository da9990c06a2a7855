"""open_filesystem: one file system per URI, built from the same storage options deltalake gets."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs
import pytest

from mlray.errors import ConfigError
from mlray.offline.filesystems import is_remote, open_filesystem, s3_filesystem_args

MINIO = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9000/",
    "AWS_ACCESS_KEY_ID": "minio",
    "AWS_SECRET_ACCESS_KEY": "minio123",
    "AWS_REGION": "eu-west-1",
    "AWS_ALLOW_HTTP": "true",
    "AWS_S3_ALLOW_UNSAFE_RENAME": "false",  # deltalake's alone: left out
}


def test_local_paths_and_file_uris_are_absolute_on_the_local_file_system(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for uri in ("data/t", f"file://{tmp_path}/data/t"):
        fs, path = open_filesystem(uri, MINIO)
        assert isinstance(fs, pafs.LocalFileSystem) and path == str(tmp_path / "data" / "t")
    assert not is_remote("data/t") and not is_remote("file:///x") and is_remote("s3://b/x")


def test_deltalake_s3_options_become_pyarrow_s3_arguments():
    assert s3_filesystem_args(MINIO) == {
        "access_key": "minio",
        "secret_key": "minio123",
        "endpoint_override": "127.0.0.1:9000",
        "scheme": "http",
        "region": "eu-west-1",
    }
    lower = {
        "aws_endpoint": "minio.local:9000",
        "aws_allow_http": "TRUE",
        "access_key_id": "k",
        "secret_access_key": "s",
        "aws_session_token": "t",
        "region": "us-east-2",
        "aws_virtual_hosted_style_request": "true",
    }
    assert s3_filesystem_args(lower) == {
        "access_key": "k",
        "secret_key": "s",
        "session_token": "t",
        "endpoint_override": "minio.local:9000",
        "scheme": "http",
        "region": "us-east-2",
        "force_virtual_addressing": True,
    }
    assert s3_filesystem_args({"AWS_ENDPOINT_URL": "s3.example.com", "AWS_REGION": "x"}) == {
        "endpoint_override": "s3.example.com",
        "scheme": "https",
        "region": "x",
    }
    assert s3_filesystem_args({"aws_skip_signature": "1", "aws_region": "x"}) == {
        "anonymous": True,
        "region": "x",
    }


def test_an_s3_uri_opens_the_configured_endpoint_with_the_bucket_in_the_path():
    fs, path = open_filesystem("s3://bucket/data/features/v/", MINIO)
    assert isinstance(fs, pafs.S3FileSystem)
    assert (fs.region, path) == ("eu-west-1", "bucket/data/features/v")
    fs, path = open_filesystem("s3a://bucket", MINIO)
    assert isinstance(fs, pafs.S3FileSystem) and path == "bucket"


def test_other_object_stores_go_through_deltalakes_handler_rooted_at_the_bucket():
    fs, path = open_filesystem(
        "az://container/data/t", {"account_name": "a", "account_key": "eA=="}
    )
    assert isinstance(fs, pafs.PyFileSystem) and path == "data/t"


@pytest.mark.parametrize(
    ("uri", "options", "needle"),
    [
        ("s3:///data", MINIO, "names no bucket"),
        ("s3://b/x", {"AWS_ACCESS_KEY_ID": "k"}, "AWS_SECRET_ACCESS_KEY"),
        ("s3://b/x", {"aws_secret_access_key": "s"}, "AWS_ACCESS_KEY_ID"),
        ("nosuch://b/x", {}, "MLRAY_STORAGE_OPTIONS"),
    ],
)
def test_unusable_uris_and_options_are_config_errors(uri, options, needle):
    with pytest.raises(ConfigError, match=needle):
        open_filesystem(uri, options)


def test_a_path_with_a_tilde_is_the_users(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert open_filesystem("~/d", None)[1] == str(Path(tmp_path, "d"))
