"""EC2's actions, one module per area; ACTIONS maps each action name to its handler, its area
(which EC2 error codes the service's errors become) and the service operation a DryRun checks.
"""

from __future__ import annotations

from occi.ec2.actions import describe, images, instances, keypairs, tags, volumes
from occi.ec2.front import Action

ACTIONS: dict[str, Action] = {
    **describe.ACTIONS,
    **instances.ACTIONS,
    **images.ACTIONS,
    **keypairs.ACTIONS,
    **volumes.ACTIONS,
    **tags.ACTIONS,
}
