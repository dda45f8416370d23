"""The aws CLI (awscli from PyPI) as a subprocess against the real server, as the README's
walkthrough runs it: --endpoint-url, --output json, the region and keys from the environment,
exit 255 on errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.ec2.conftest import REGION, Ec2Server

AWS = str(Path(sys.executable).with_name("aws"))


def aws(
    server: Ec2Server, *args: str, who: str = "member", secret: str | None = None
) -> subprocess.CompletedProcess[str]:
    key = server.keys[who]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": key.access_key,
            "AWS_SECRET_ACCESS_KEY": secret or key.secret,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(server.tmp / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(server.tmp / "no-aws-credentials"),
            "AWS_MAX_ATTEMPTS": "1",
        }
    )
    return subprocess.run(
        [AWS, "ec2", *args, "--endpoint-url", server.endpoint, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def out(p: subprocess.CompletedProcess[str]) -> Any:
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout) if p.stdout.strip() else None


def test_the_readme_walkthrough(ec2_server: Ec2Server) -> None:
    regions = out(aws(ec2_server, "describe-regions"))
    assert [r["RegionName"] for r in regions["Regions"]] == [REGION]
    run = out(
        aws(
            ec2_server,
            "run-instances",
            "--image-id",
            "cirros",
            "--instance-type",
            "small",
            "--count",
            "1",
            "--tag-specifications",
            "ResourceType=instance,Tags=[{Key=Name,Value=cli}]",
        )
    )
    iid = run["Instances"][0]["InstanceId"]
    out(aws(ec2_server, "wait", "instance-running", "--instance-ids", iid))
    found = out(
        aws(
            ec2_server,
            "describe-instances",
            "--filters",
            "Name=tag:Name,Values=cli",
            "Name=instance-state-name,Values=running",
            "--query",
            "Reservations[].Instances[].InstanceId",
        )
    )
    assert found == [iid]
    out(aws(ec2_server, "terminate-instances", "--instance-ids", iid))
    out(aws(ec2_server, "wait", "instance-terminated", "--instance-ids", iid))


def test_errors_exit_255(ec2_server: Ec2Server) -> None:
    p = aws(ec2_server, "describe-instances", secret="wrong-secret-wrong-secret-wrong-secret-00")
    assert p.returncode == 255
    assert "AuthFailure" in p.stderr
    p = aws(ec2_server, "describe-instances", "--instance-ids", "i-" + "0" * 32)
    assert p.returncode == 255
    assert "InvalidInstanceID.NotFound" in p.stderr
