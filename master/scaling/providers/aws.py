"""``aws``: an EC2 Auto Scaling group per worker group, through boto3.

The group's instances come from a launch template (``vh-agent-<slug>``) whose user data is the
bootstrap: it fetches ``/api/agent/bootstrap.sh?group=<slug>`` from the master with the group's
token, which installs the agent release into a venv and starts it named after its instance id
(IMDSv2), so the scaler can match workers to instances. The scaler sets the desired capacity,
protects busy instances from the group's own scale-in (``set_instance_protection``) and stops a
chosen idle instance with ``terminate_instance_in_auto_scaling_group`` (decrementing the capacity).
The ASG's own MinSize stays 0: the scaler keeps the group's ``min_size``.

Settings (the environment's ``settings``, else the master's ``provider_settings["aws"]``):
``image_id`` (required: an AMI with python3 and venv), ``subnet_ids`` or ``availability_zones``,
``security_group_ids``, ``key_name``, ``iam_instance_profile`` (a name or ARN), ``volume_gb``,
``endpoint_url`` (another EC2/Auto Scaling endpoint, e.g. a moto server), ``region`` (else the
group's ``region``). Credentials come from boto3's usual chain (environment, instance role...).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
from typing import Any

from jupyter_valohai.errors import InvalidInput

from ._cloud import GROUP_LABEL, bootstrap_script, required, resource_name, setting
from .base import PENDING, RUNNING, STOPPING, GroupSpec, Instance, WorkerGroupProvider

# Prints this machine's EC2 instance id (IMDSv2), else $VH_AGENT_INSTANCE_ID (never fails).
EC2_INSTANCE_ID = (
    "import os, urllib.request as u\n"
    "try:\n"
    "    b = 'http://169.254.169.254/latest/'\n"
    "    t = u.urlopen(u.Request(b + 'api/token', method='PUT', headers="
    "{'X-aws-ec2-metadata-token-ttl-seconds': '60'}), timeout=2).read().decode()\n"
    "    print(u.urlopen(u.Request(b + 'meta-data/instance-id', headers="
    "{'X-aws-ec2-metadata-token': t}), timeout=2).read().decode())\n"
    "except Exception:\n"
    "    print(os.environ.get('VH_AGENT_INSTANCE_ID', ''))\n"
)

STATES = {
    "Pending": PENDING,
    "Pending:Wait": PENDING,
    "Pending:Proceed": PENDING,
    "InService": RUNNING,
}


def _list(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    raise InvalidInput(f"{value!r} is not a list.", hint="Give a list of ids, or one string.")


class AWSProvider(WorkerGroupProvider):
    """EC2 Auto Scaling groups."""

    name = "aws"
    expected_start_seconds = 90.0

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()

    # --- clients --------------------------------------------------------------------------------

    def _client(self, group: GroupSpec, service: str) -> Any:
        import boto3

        region = str(setting(self, group, "region") or group.region or "us-east-1")
        endpoint = str(setting(self, group, "endpoint_url") or "")
        key = (service, region, endpoint)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = boto3.client(
                    service, region_name=region, endpoint_url=endpoint or None
                )
            return self._clients[key]

    def names(self, group: GroupSpec) -> tuple[str, str]:
        """The Auto Scaling group's and the launch template's names."""
        name = resource_name(group.slug, max_length=120)
        return name, name

    # --- the interface --------------------------------------------------------------------------

    async def ensure_group(self, group: GroupSpec) -> None:
        await asyncio.to_thread(self._ensure, group)

    async def set_desired(self, group: GroupSpec, size: int) -> None:
        asg, _ = self.names(group)
        await asyncio.to_thread(
            self._client(group, "autoscaling").set_desired_capacity,
            AutoScalingGroupName=asg,
            DesiredCapacity=size,
            HonorCooldown=False,
        )

    async def list_instances(self, group: GroupSpec) -> list[Instance]:
        found = await asyncio.to_thread(self._describe_group, group)
        out = []
        for item in (found or {}).get("Instances", []):
            state = STATES.get(item.get("LifecycleState", ""), STOPPING)
            if item.get("LifecycleState") == "Terminated":
                continue
            out.append(
                Instance(
                    item["InstanceId"],
                    state,
                    protected=bool(item.get("ProtectedFromScaleIn")),
                    details={
                        "lifecycle_state": item.get("LifecycleState"),
                        "health": item.get("HealthStatus"),
                        "instance_type": item.get("InstanceType"),
                        "zone": item.get("AvailabilityZone"),
                    },
                )
            )
        return out

    async def terminate(self, group: GroupSpec, instance_id: str) -> None:
        await asyncio.to_thread(
            self._client(group, "autoscaling").terminate_instance_in_auto_scaling_group,
            InstanceId=instance_id,
            ShouldDecrementDesiredCapacity=True,
        )

    async def set_protected(self, group: GroupSpec, instance_id: str, protected: bool) -> None:
        asg, _ = self.names(group)
        await asyncio.to_thread(
            self._client(group, "autoscaling").set_instance_protection,
            InstanceIds=[instance_id],
            AutoScalingGroupName=asg,
            ProtectedFromScaleIn=protected,
        )

    async def delete_group(self, group: GroupSpec) -> None:
        await asyncio.to_thread(self._delete, group)

    async def close(self) -> None:
        self._clients.clear()

    # --- in a thread ----------------------------------------------------------------------------

    def _describe_group(self, group: GroupSpec) -> dict[str, Any] | None:
        asg, _ = self.names(group)
        answer = self._client(group, "autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[asg]
        )
        groups = answer.get("AutoScalingGroups") or []
        return groups[0] if groups else None

    def launch_data(self, group: GroupSpec) -> dict[str, Any]:
        """The launch template's data for ``group`` (user data: the bootstrap)."""
        user_data = bootstrap_script(group, instance_id_python=EC2_INSTANCE_ID)
        tags = [{"Key": GROUP_LABEL, "Value": group.slug}, {"Key": "Name", "Value": group.slug}]
        data: dict[str, Any] = {
            "ImageId": str(required(self, group, "image_id")),
            "InstanceType": group.instance_type or str(setting(self, group, "instance_type", "")),
            "UserData": base64.b64encode(user_data.encode()).decode(),
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}],
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        }
        if not data["InstanceType"]:
            raise InvalidInput(
                f"The aws worker group {group.slug!r} has no instance_type.",
                hint="Set instance_type on the environment (e.g. g4dn.xlarge).",
            )
        groups = _list(setting(self, group, "security_group_ids"))
        if groups:
            data["SecurityGroupIds"] = groups
        if setting(self, group, "key_name"):
            data["KeyName"] = str(setting(self, group, "key_name"))
        profile = setting(self, group, "iam_instance_profile")
        if profile:
            profile = str(profile)
            data["IamInstanceProfile"] = (
                {"Arn": profile} if profile.startswith("arn:") else {"Name": profile}
            )
        if setting(self, group, "volume_gb"):
            data["BlockDeviceMappings"] = [
                {
                    "DeviceName": str(setting(self, group, "root_device", "/dev/xvda")),
                    "Ebs": {
                        "VolumeSize": int(setting(self, group, "volume_gb")),
                        "VolumeType": "gp3",
                    },
                }
            ]
        return data

    def _ensure_template(self, group: GroupSpec) -> None:
        from botocore.exceptions import ClientError

        ec2 = self._client(group, "ec2")
        _, name = self.names(group)
        data = self.launch_data(group)
        # Versions are told apart by a digest of their data (AWS normalizes what it returns).
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]
        description = f"jupyter-valohai spec {digest}"
        try:
            versions = ec2.describe_launch_template_versions(
                LaunchTemplateName=name, Versions=["$Default"]
            )["LaunchTemplateVersions"]
        except ClientError as exc:
            if "NotFound" not in exc.response.get("Error", {}).get("Code", ""):
                raise
            ec2.create_launch_template(
                LaunchTemplateName=name,
                VersionDescription=description,
                LaunchTemplateData=data,
                TagSpecifications=[
                    {
                        "ResourceType": "launch-template",
                        "Tags": [{"Key": GROUP_LABEL, "Value": group.slug}],
                    }
                ],
            )
            return
        if not versions or versions[0].get("VersionDescription") != description:
            version = ec2.create_launch_template_version(
                LaunchTemplateName=name, VersionDescription=description, LaunchTemplateData=data
            )["LaunchTemplateVersion"]["VersionNumber"]
            ec2.modify_launch_template(LaunchTemplateName=name, DefaultVersion=str(version))

    def _ensure(self, group: GroupSpec) -> None:
        self._ensure_template(group)
        autoscaling = self._client(group, "autoscaling")
        asg, template = self.names(group)
        where: dict[str, Any] = {}
        subnets = _list(setting(self, group, "subnet_ids"))
        if subnets:
            where["VPCZoneIdentifier"] = ",".join(subnets)
        else:
            zones = _list(setting(self, group, "availability_zones"))
            if not zones:
                raise InvalidInput(
                    f"The aws worker group {group.slug!r} has no subnet_ids or "
                    "availability_zones setting.",
                    hint="Set settings.subnet_ids (a VPC) or settings.availability_zones.",
                )
            where["AvailabilityZones"] = zones
        if self._describe_group(group) is None:
            autoscaling.create_auto_scaling_group(
                AutoScalingGroupName=asg,
                LaunchTemplate={"LaunchTemplateName": template, "Version": "$Default"},
                MinSize=0,
                MaxSize=max(group.max_size, 0),
                DesiredCapacity=0,
                NewInstancesProtectedFromScaleIn=False,
                Tags=[
                    {
                        "Key": GROUP_LABEL,
                        "Value": group.slug,
                        "PropagateAtLaunch": True,
                        "ResourceId": asg,
                        "ResourceType": "auto-scaling-group",
                    }
                ],
                **where,
            )
        else:
            autoscaling.update_auto_scaling_group(
                AutoScalingGroupName=asg,
                LaunchTemplate={"LaunchTemplateName": template, "Version": "$Default"},
                MinSize=0,
                MaxSize=max(group.max_size, 0),
                **where,
            )

    def _delete(self, group: GroupSpec) -> None:
        from botocore.exceptions import ClientError

        asg, template = self.names(group)
        if self._describe_group(group) is not None:
            self._client(group, "autoscaling").delete_auto_scaling_group(
                AutoScalingGroupName=asg, ForceDelete=True
            )
        try:
            self._client(group, "ec2").delete_launch_template(LaunchTemplateName=template)
        except ClientError as exc:
            if "NotFound" not in exc.response.get("Error", {}).get("Code", ""):
                raise
