"""Feature definitions: linting, references, schema hashes."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest

from mlray.errors import DefinitionError, NotFoundError
from mlray.features import Entity, FeatureRepository, FeatureService, FeatureView, Field

user = Entity("user", ("user_id",))


def view(name: str = "v", **kw) -> FeatureView:
    args = {
        "name": name,
        "entities": [user],
        "schema": [Field("a", pa.float64()), Field("b", pa.int64())],
    }
    args.update(kw)
    return FeatureView(**args)


def test_view_derives_keys_and_table_schema():
    v = view(ttl=timedelta(hours=1))
    assert v.join_keys == ("user_id",)
    assert v.table_schema().names == ["user_id", "event_time", "available_time", "a", "b"]
    assert v.table_schema().field("event_time").type == pa.timestamp("us", tz="UTC")


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"schema": [Field("a", pa.int64()), Field("a", pa.int64())]}, "repeat"),
        ({"schema": [Field("user_id", pa.int64())]}, "collide"),
        ({"schema": [Field("event_time", pa.int64())]}, "collide"),
        ({"ttl": timedelta(0)}, "ttl must be positive"),
        ({"source": "impressions"}, "both source and transform"),
        ({"schema": []}, "no features"),
        ({"name": "bad name"}, "identifier"),
    ],
)
def test_view_lint_names_the_view_and_its_line(kw, needle):
    with pytest.raises(DefinitionError) as e:
        view(**kw)
    assert needle in str(e.value)
    assert "test_definitions.py" in str(e.value) or "identifier" in needle


def test_schema_hash_changes_with_types_and_ttl_only():
    base = view().schema_hash()
    assert view().schema_hash() == base
    assert view(ttl=timedelta(hours=2)).schema_hash() != base
    assert view(schema=[Field("a", pa.float32()), Field("b", pa.int64())]).schema_hash() != base


def test_repository_resolves_refs_and_services():
    repo = FeatureRepository([view("v1"), view("v2")], [FeatureService("svc", ("v1:a", "v2:b"))])
    assert [str(r) for r in repo.resolve(["v1:a", "v2:b", "v1:a"])] == ["v1:a", "v2:b"]
    assert [str(r) for r in repo.resolve("svc")] == ["v1:a", "v2:b"]


def test_unknown_feature_lists_close_names():
    repo = FeatureRepository([view("user_stats")])
    with pytest.raises(NotFoundError) as e:
        repo.resolve(["user_stats:aa"])
    assert "user_stats:a" in str(e.value) and "Did you mean" in str(e.value)
    with pytest.raises(NotFoundError, match="feature service 'nope'"):
        repo.resolve("nope")
    with pytest.raises(DefinitionError, match="view:feature"):
        repo.resolve(["no_colon"])


def test_duplicate_views_and_conflicting_entities_are_refused():
    with pytest.raises(DefinitionError, match="defined twice"):
        FeatureRepository([view("v"), view("v")])
    other_user = Entity("user", ("uid",))
    with pytest.raises(DefinitionError, match="two different definitions"):
        FeatureRepository([view("v1"), view("v2", entities=[other_user])])


def test_demo_repository_loads():
    repo = FeatureRepository.from_module("mlray.demo.features")
    assert set(repo.views) >= {"user_activity", "item_stats", "item_catalog"}
    assert len(repo.resolve("ctr_model_v1")) == 14


def test_missing_repository_module_is_a_definition_error():
    with pytest.raises(DefinitionError, match="MLRAY_FEATURE_REPO"):
        FeatureRepository.from_module("no.such.module")


def test_repository_collects_request_time_views_and_finds_every_field():
    repo = FeatureRepository.from_module("mlray.demo.features")
    assert list(repo.on_demand) == ["request_features"]
    refs = repo.resolve(["user_activity:ctr_7d", "request_features:hour_of_day"])
    assert [repo.is_on_demand(r) for r in refs] == [False, True]
    assert [r.column for r in refs] == ["user_activity__ctr_7d", "request_features__hour_of_day"]
    assert repo.field(refs[1]).dtype == pa.int64() and repo.field(refs[0]).dtype == pa.float64()
    assert "request_features:device_mobile" in repo.all_refs()
    with pytest.raises(NotFoundError, match="Did you mean 'request_features:hour_of_day'"):
        repo.field("request_features:hour_of_dya")
    with pytest.raises(DefinitionError, match="must look like 'view:feature'"):
        repo.resolve(["ctr_7d"])
    stored = repo.schema_hash(["user_activity"])
    assert repo.schema_hash(["user_activity", "request_features"]) != stored


def test_a_repository_module_that_fails_to_import_is_a_definition_error(
    tmp_path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "broken_repo.py").write_text("import no_such_package_for_mlray\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(DefinitionError, match="broken_repo.*no_such_package_for_mlray"):
        FeatureRepository.from_module("broken_repo")
