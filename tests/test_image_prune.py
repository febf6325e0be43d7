"""Stale cached builds are pruned (newest kept per image); a parent still under a kept child stays."""

from __future__ import annotations

import uuid

import pytest

from fleet.images import build_cached, image_exists, prune_cached_images, stale_cached_images


@pytest.fixture
def build_version(docker_engine, local_base_image, tmp_path):
    """`build_version(name, n, parent=None)`: a tiny cached build whose context differs by `n`."""
    made: list[str] = []

    def build(name: str, n: int, parent: str | None = None) -> str:
        context = tmp_path / f"{name}-{n}"
        context.mkdir()
        (context / "version").write_text(str(n))
        (context / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY version /version\n")
        result = build_cached(name, context, buildargs={"BASE_IMAGE": parent or local_base_image},
                              client=docker_engine)
        made.append(result.tag)
        return result.tag

    yield build
    for tag in reversed(made):
        if image_exists(docker_engine, tag):
            docker_engine.images.remove(tag, force=True)


def test_prune_keeps_the_newest_of_each_image(docker_engine, build_version):
    prefix = f"spotscribe/prunetest-{uuid.uuid4().hex[:8]}-"
    tags = [build_version(prefix.removeprefix("spotscribe/") + "a", n) for n in range(3)]
    assert stale_cached_images(docker_engine, keep=1, prefix=prefix) == tags[1::-1]
    removed = prune_cached_images(docker_engine, keep=1, prefix=prefix)
    assert sorted(removed) == sorted(tags[:2])
    assert image_exists(docker_engine, tags[2])
    assert not any(image_exists(docker_engine, t) for t in tags[:2])


def test_kept_child_still_runs_after_its_old_parent_is_pruned(docker_engine, build_version, containers):
    name = f"prunetest-{uuid.uuid4().hex[:8]}-"
    old_parent = build_version(name + "parent", 0)
    build_version(name + "parent", 1)
    child = build_version(name + "child", 0, parent=old_parent)
    assert prune_cached_images(docker_engine, keep=1, prefix="spotscribe/" + name) == [old_parent]
    container = containers.run(child, command=["cat", "/version"])
    assert container.wait(timeout=60)["StatusCode"] == 0
    assert container.logs().decode() == "0"
