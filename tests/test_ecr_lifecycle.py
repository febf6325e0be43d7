"""The ECR lifecycle policy evaluator (fleet.ecr.images_to_expire) against ECR's documented semantics."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from fleet.ecr import LIFECYCLE_POLICY, ImageRecord, images_to_expire, parse_policy

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)


def image(n: int, *tags: str, days_ago: float | None = None, order: int | None = None) -> ImageRecord:
    pushed = NOW - timedelta(days=days_ago) if days_ago is not None else NOW - timedelta(hours=100 - n)
    return ImageRecord(f"sha256:{n:064x}", tags, pushed, n if order is None else order)


def rule(priority: int, tag_status: str, count_type: str, number: int, **selection) -> dict:
    return {"rulePriority": priority, "action": {"type": "expire"},
            "selection": {"tagStatus": tag_status, "countType": count_type, "countNumber": number, **selection}}


def test_keep_last_ten_of_twelve_expires_the_two_oldest():
    images = [image(n, f"v{n}") for n in range(12)]
    assert images_to_expire(LIFECYCLE_POLICY, reversed(images), NOW) == images[:2]


@pytest.mark.parametrize("count", [0, 1, 10])
def test_ten_or_fewer_images_expire_nothing(count):
    assert images_to_expire(LIFECYCLE_POLICY, [image(n, f"v{n}") for n in range(count)], NOW) == []


def test_equal_push_times_are_ordered_by_listing_position():
    same_second = NOW - timedelta(minutes=5)
    images = [ImageRecord(f"sha256:{n:064x}", (f"v{n}",), same_second, n) for n in range(12)]
    assert [i.tags for i in images_to_expire(LIFECYCLE_POLICY, images, NOW)] == [("v0",), ("v1",)]


def test_untagged_rule_first_then_any():
    policy = {"rules": [rule(1, "untagged", "sinceImagePushed", 1, countUnit="days"),
                        rule(2, "any", "imageCountMoreThan", 2)]}
    old_untagged, new_untagged = image(1, days_ago=3), image(2, days_ago=0.5)
    tagged = [image(n, f"v{n}", days_ago=10 - n) for n in range(3, 7)]
    expired = images_to_expire(policy, [old_untagged, new_untagged, *tagged], NOW)
    # rule 1 takes both untagged images (expiring the old one); rule 2 keeps the newest 2 of the tagged rest
    assert expired == sorted([old_untagged, *tagged[:2]], key=lambda i: i.pushed_at)


def test_tag_prefix_rule_touches_only_matching_tags():
    policy = {"rules": [rule(1, "tagged", "imageCountMoreThan", 1, tagPrefixList=["pr-"])]}
    images = [image(1, "pr-1"), image(2, "pr-2"), image(3, "release-1"), image(4, "release-2")]
    assert images_to_expire(policy, images, NOW) == [images[0]]


def test_tag_pattern_rule():
    policy = {"rules": [rule(1, "tagged", "imageCountMoreThan", 0, tagPatternList=["*-rc*"])]}
    images = [image(1, "1.0-rc1"), image(2, "1.0")]
    assert images_to_expire(policy, images, NOW) == [images[0]]


def test_an_any_rule_must_come_last():
    policy = {"rules": [rule(1, "any", "imageCountMoreThan", 3), rule(2, "untagged", "imageCountMoreThan", 1)]}
    with pytest.raises(ValueError, match="highest rulePriority"):
        parse_policy(policy)


def test_duplicate_priorities_are_refused():
    with pytest.raises(ValueError, match="unique"):
        parse_policy({"rules": [rule(1, "untagged", "imageCountMoreThan", 1),
                                rule(1, "tagged", "imageCountMoreThan", 1, tagPrefixList=["x"])]})


def test_only_expire_actions_exist():
    bad = rule(1, "any", "imageCountMoreThan", 1)
    bad["action"] = {"type": "archive"}
    with pytest.raises(ValueError, match="expire"):
        parse_policy({"rules": [bad]})
