"""Pulumi ComponentResources that turn the topology into Docker resources."""

from infra.components.image import ServiceImage, ServiceImageArgs
from infra.components.network import Networks, NetworksArgs
from infra.components.secrets import StackSecrets, StackSecretsArgs
from infra.components.service import ServiceContainer, ServiceContainerArgs
from infra.components.volume import Volumes, VolumesArgs

__all__ = [
    "Networks",
    "NetworksArgs",
    "ServiceContainer",
    "ServiceContainerArgs",
    "ServiceImage",
    "ServiceImageArgs",
    "StackSecrets",
    "StackSecretsArgs",
    "Volumes",
    "VolumesArgs",
]
