"""Download Maven artifacts and the dependencies Spark lacks into a folder, each checked against its .sha1.

Runs at image build time, so the Delta jars (and, optionally, the S3A ones) are baked into the
images: nothing resolves ``--packages`` at run time, and a cluster without Maven access still
starts. Standard library only; no Maven needed::

    python docker/fetch_jars.py --dest /opt/delta-jars --follow io.delta \\
        io.delta:delta-spark_4.2_2.13:4.4.1

Only dependencies whose groupId is named by ``--follow`` are fetched: Spark already ships Scala,
the Hadoop client, ANTLR and the rest, and a second copy of those on the classpath breaks things.
Versions come from the POMs themselves (parent POMs, ``${properties}`` and dependencyManagement,
BOM imports included), so the S3A jars get the AWS SDK version their Hadoop release was built with.
Nearest declaration wins, as in Maven. ``JARS.txt`` in the destination lists what was fetched.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import sys
import urllib.request
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

log = logging.getLogger("fetch_jars")

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
FOLLOWED_SCOPES = ("compile", "runtime")
_PROPERTY = re.compile(r"\$\{([^}]+)\}")


class FetchError(RuntimeError):
    """An artifact could not be downloaded, verified or resolved."""


@dataclass(frozen=True)
class Coordinate:
    group: str
    artifact: str
    version: str

    @classmethod
    def parse(cls, text: str) -> Coordinate:
        parts = text.split(":")
        if len(parts) != 3 or not all(parts):
            raise FetchError(f"expected group:artifact:version, got {text!r}")
        return cls(*parts)

    def url(self, repo: str, extension: str) -> str:
        return f"{repo}/{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.artifact}-{self.version}.{extension}"

    def __str__(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"


@dataclass
class Pom:
    """The parts of an effective POM that decide which jars a dependency brings."""

    properties: dict[str, str] = field(default_factory=dict)
    managed: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)  # → (version, scope)
    dependencies: list[ET.Element] = field(default_factory=list)


def download(url: str) -> bytes:
    """The bytes at ``url``, refused unless they match the repository's published SHA-1."""
    data = _get(url)
    published = _get(f"{url}.sha1").decode().split()
    if not published or hashlib.sha1(data).hexdigest() != published[0].lower():
        raise FetchError(f"checksum mismatch for {url}")
    return data


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.read()
    except OSError as exc:
        raise FetchError(f"cannot download {url}: {exc}") from exc


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element | None, name: str) -> ET.Element | None:
    if element is None:
        return None
    return next((c for c in element if _local(c.tag) == name), None)


def _text(element: ET.Element | None, name: str) -> str | None:
    child = _child(element, name)
    return child.text.strip() if child is not None and child.text else None


def _children(element: ET.Element | None, name: str) -> list[ET.Element]:
    return [c for c in element if _local(c.tag) == name] if element is not None else []


def interpolate(value: str, properties: dict[str, str]) -> str:
    for _ in range(10):  # properties may refer to properties
        resolved = _PROPERTY.sub(lambda m: properties.get(m.group(1), m.group(0)), value)
        if resolved == value:
            break
        value = resolved
    if _PROPERTY.search(value):
        raise FetchError(f"unresolved property in {value!r}")
    return value


@cache
def effective_pom(repo: str, coordinate: Coordinate) -> Pom:
    """Properties and dependencyManagement merged down the parent chain, BOM imports included."""
    root = ET.fromstring(download(coordinate.url(repo, "pom")))
    parent = _child(root, "parent")
    pom = Pom()
    if parent is not None:
        inherited = effective_pom(
            repo, Coordinate(_text(parent, "groupId"), _text(parent, "artifactId"), _text(parent, "version"))
        )
        pom.properties.update(inherited.properties)
        pom.managed.update(inherited.managed)
    properties = _child(root, "properties")
    pom.properties.update(
        {_local(p.tag): (p.text or "").strip() for p in (properties if properties is not None else [])}
    )
    pom.properties.update(
        {
            "project.groupId": coordinate.group,
            "project.artifactId": coordinate.artifact,
            "project.version": coordinate.version,
        }
    )
    if parent is not None:
        pom.properties["project.parent.version"] = _text(parent, "version")
    managed = _children(_child(_child(root, "dependencyManagement"), "dependencies"), "dependency")
    for dependency in managed:
        group, artifact = _text(dependency, "groupId"), _text(dependency, "artifactId")
        version = interpolate(_text(dependency, "version") or "", pom.properties)
        if _text(dependency, "scope") == "import":
            pom.managed.update(effective_pom(repo, Coordinate(group, artifact, version)).managed)
        else:
            pom.managed[(group, artifact)] = (version, _text(dependency, "scope"))
    pom.dependencies = _children(_child(root, "dependencies"), "dependency")
    return pom


def runtime_dependencies(repo: str, coordinate: Coordinate, follow: frozenset[str]) -> list[Coordinate]:
    """Direct compile/runtime jar dependencies of ``coordinate`` in the followed groups."""
    pom = effective_pom(repo, coordinate)
    found = []
    for dependency in pom.dependencies:
        group = interpolate(_text(dependency, "groupId") or "", pom.properties)
        artifact = interpolate(_text(dependency, "artifactId") or "", pom.properties)
        managed_version, managed_scope = pom.managed.get((group, artifact), (None, None))
        scope = _text(dependency, "scope") or managed_scope or "compile"
        if (
            group not in follow
            or scope not in FOLLOWED_SCOPES
            or _text(dependency, "optional") == "true"
            or (_text(dependency, "type") or "jar") != "jar"
            or _text(dependency, "classifier")
        ):
            continue
        version = _text(dependency, "version") or managed_version
        if not version:
            raise FetchError(f"{coordinate}: no version for dependency {group}:{artifact}")
        found.append(Coordinate(group, artifact, interpolate(version, pom.properties)))
    return found


def fetch_jars(roots: list[Coordinate], dest: Path, follow: frozenset[str], repo: str = MAVEN_CENTRAL) -> list[Path]:
    """Download ``roots`` and their followed dependencies (breadth first: nearest version wins) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    chosen: dict[tuple[str, str], Coordinate] = {}
    queue = deque(roots)
    while queue:
        coordinate = queue.popleft()
        key = (coordinate.group, coordinate.artifact)
        if key in chosen:
            if chosen[key].version != coordinate.version:
                log.info("%s: keeping %s", coordinate, chosen[key].version)
            continue
        chosen[key] = coordinate
        queue.extend(runtime_dependencies(repo, coordinate, follow))
    written, manifest = [], []
    for coordinate in chosen.values():
        data = download(coordinate.url(repo, "jar"))
        path = dest / f"{coordinate.artifact}-{coordinate.version}.jar"
        path.write_bytes(data)
        written.append(path)
        manifest.append(f"{coordinate} sha256:{hashlib.sha256(data).hexdigest()}")
        log.info("fetched %s (%d bytes)", coordinate, len(data))
    (dest / "JARS.txt").write_text("\n".join(manifest) + "\n")
    return written


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("coordinates", nargs="+", help="group:artifact:version")
    parser.add_argument("--dest", required=True, type=Path, help="folder the jars are written to")
    parser.add_argument("--follow", action="append", default=[], help="groupId whose dependencies are fetched too")
    parser.add_argument("--repo", default=MAVEN_CENTRAL, help="Maven repository base URL")
    args = parser.parse_args(argv)
    try:
        fetch_jars([Coordinate.parse(c) for c in args.coordinates], args.dest, frozenset(args.follow), args.repo)
    except FetchError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
