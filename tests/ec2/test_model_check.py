"""The checker every answer goes through (tests/ec2/model_check.py) refuses what botocore would
misread: an element of another name, a list without <item>s, a value of the wrong type."""

from __future__ import annotations

import pytest

from occi.ec2 import xml
from tests.ec2.model_check import check_answer


def test_a_right_answer_passes() -> None:
    body = xml.answer(
        "DescribeRegions",
        {"regionInfo": [{"regionName": "R", "regionEndpoint": "http://x/ec2/"}]},
        "rid",
    )
    check_answer("DescribeRegions", 200, body)
    check_answer("DescribeRegions", 400, xml.error("InvalidAction", "no", "rid"))


@pytest.mark.parametrize(
    "data",
    [
        {"regions": [{"regionName": "R"}]},  # Regions' locationName is regionInfo
        {"regionInfo": {"regionName": "R"}},  # a list is <item>s
        {"regionInfo": [{"RegionName": "R"}]},  # member names are locationNames
    ],
)
def test_wrong_names_fail(data: dict) -> None:
    with pytest.raises(AssertionError):
        check_answer("DescribeRegions", 200, xml.answer("DescribeRegions", data, "rid"))


def test_wrong_types_fail() -> None:
    body = xml.answer("RunInstances", {"instancesSet": [{"amiLaunchIndex": "first"}]}, "rid")
    with pytest.raises(ValueError):
        check_answer("RunInstances", 200, body)
    body = xml.answer("DescribeVolumes", {"volumeSet": [{"encrypted": "yes"}]}, "rid")
    with pytest.raises(AssertionError):
        check_answer("DescribeVolumes", 200, body)
