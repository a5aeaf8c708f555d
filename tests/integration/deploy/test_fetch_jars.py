"""docker/fetch_jars.py against a hand-made Maven repository on disk (``file://``), as the image build runs it."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

FETCH_JARS = Path(__file__).resolve().parents[3] / "docker" / "fetch_jars.py"


@pytest.fixture(scope="module")
def fetch_jars():
    spec = importlib.util.spec_from_file_location("fetch_jars", FETCH_JARS)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fetch_jars"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules["fetch_jars"]


def _publish(repo: Path, coordinate: str, pom_body: str, jar: bytes | None = b"", sha1: str | None = None) -> None:
    """Lay out an artifact as Maven Central does; ``sha1`` overrides the jar's published checksum."""
    group, artifact, version = coordinate.split(":")
    folder = repo / group.replace(".", "/") / artifact / version
    folder.mkdir(parents=True, exist_ok=True)
    pom = (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">'
        f"<groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>"
        f"{pom_body}</project>"
    ).encode()
    files = {f"{artifact}-{version}.pom": pom}
    if jar is not None:
        files[f"{artifact}-{version}.jar"] = jar or f"jar of {coordinate}".encode()
    for name, data in files.items():
        (folder / name).write_bytes(data)
        digest = sha1 if sha1 and name.endswith(".jar") else hashlib.sha1(data).hexdigest()
        (folder / f"{name}.sha1").write_text(f"{digest}  {name}\n")


def _dependency(coordinate: str, extra: str = "") -> str:
    group, artifact, *version = coordinate.split(":")
    version_tag = f"<version>{version[0]}</version>" if version else ""
    return f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>{version_tag}{extra}</dependency>"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A Delta-like artifact and a Hadoop-like one whose SDK version sits in the parent's dependencyManagement."""
    root = tmp_path / "m2"
    deps = "".join(
        [
            _dependency("io.delta:delta-storage:${project.version}"),
            _dependency("org.scala-lang:scala-library:2.13.18"),  # Spark has it: not followed
            _dependency("io.delta:delta-test-utils:4.4.1", "<scope>test</scope>"),
            _dependency("io.delta:delta-extras:4.4.1", "<optional>true</optional>"),
        ]
    )
    _publish(root, "io.delta:delta-spark_4.2_2.13:4.4.1", f"<dependencies>{deps}</dependencies>")
    _publish(root, "io.delta:delta-storage:4.4.1", "")
    _publish(
        root,
        "org.example:bom:1.0",
        "<packaging>pom</packaging><dependencyManagement><dependencies>"
        + _dependency("software.amazon.awssdk:bundle:${sdk.version}")
        + "</dependencies></dependencyManagement><properties><sdk.version>2.31.7</sdk.version></properties>",
        jar=None,
    )
    _publish(
        root,
        "org.apache.hadoop:hadoop-project:3.5.0",
        "<packaging>pom</packaging><dependencyManagement><dependencies>"
        + _dependency("org.example:bom:1.0", "<type>pom</type><scope>import</scope>")
        + "</dependencies></dependencyManagement>",
        jar=None,
    )
    _publish(
        root,
        "org.apache.hadoop:hadoop-aws:3.5.0",
        "<parent><groupId>org.apache.hadoop</groupId><artifactId>hadoop-project</artifactId>"
        "<version>3.5.0</version></parent><dependencies>"
        + _dependency("software.amazon.awssdk:bundle")
        + _dependency("org.apache.hadoop:hadoop-common:${project.parent.version}", "<scope>provided</scope>")
        + "</dependencies>",
    )
    _publish(root, "software.amazon.awssdk:bundle:2.31.7", "")
    return root


def test_fetches_the_jar_and_the_dependencies_spark_lacks(fetch_jars, repo, tmp_path):
    dest = tmp_path / "jars"
    code = fetch_jars.main(
        ["--dest", str(dest), "--follow", "io.delta", "--repo", repo.as_uri(), "io.delta:delta-spark_4.2_2.13:4.4.1"]
    )
    assert code == 0
    assert sorted(p.name for p in dest.glob("*.jar")) == ["delta-spark_4.2_2.13-4.4.1.jar", "delta-storage-4.4.1.jar"]
    assert (dest / "delta-storage-4.4.1.jar").read_bytes() == b"jar of io.delta:delta-storage:4.4.1"
    manifest = (dest / "JARS.txt").read_text().splitlines()
    digest = hashlib.sha256(b"jar of io.delta:delta-storage:4.4.1").hexdigest()
    assert f"io.delta:delta-storage:4.4.1 sha256:{digest}" in manifest


def test_versions_come_from_parent_pom_and_imported_bom(fetch_jars, repo, tmp_path):
    roots = [fetch_jars.Coordinate.parse("org.apache.hadoop:hadoop-aws:3.5.0")]
    follow = frozenset({"software.amazon.awssdk", "org.apache.hadoop"})
    written = fetch_jars.fetch_jars(roots, tmp_path / "jars", follow, repo.as_uri())
    # hadoop-common is `provided` (Spark ships the Hadoop client), so only the SDK bundle comes along.
    assert sorted(p.name for p in written) == ["bundle-2.31.7.jar", "hadoop-aws-3.5.0.jar"]


def test_a_jar_that_does_not_match_its_checksum_is_refused(fetch_jars, repo, tmp_path):
    _publish(repo, "io.delta:delta-storage:4.4.1", "", sha1="0" * 40)
    code = fetch_jars.main(
        [
            "--dest",
            str(tmp_path / "jars"),
            "--follow",
            "io.delta",
            "--repo",
            repo.as_uri(),
            "io.delta:delta-storage:4.4.1",
        ]
    )
    assert code == 1
    assert not list((tmp_path / "jars").glob("*.jar"))
