"""The one deployment model: the six NileCare containers, helpers, networks, volumes, secrets.

model.py holds the types, catalogue.py the names, images, secrets and sizes, build.py the
construction. Compose (infra/compose.py), Pulumi (infra/__main__.py) and the tests read it
through this package.
"""

from infra.topology.build import build
from infra.topology.catalogue import (
    ALL_INTERFACES,
    CORE_SERVICES,
    HOST_ACCESS,
    NILECARE_IMAGE,
    NILECARE_USER,
    PROJECT,
    SECRETS,
    STATEMENT_DIR,
    STORES_NODE,
    secret_catalogue,
)
from infra.topology.model import (
    PROFILES,
    FileMount,
    Healthcheck,
    HostPath,
    Image,
    Limits,
    LogRotation,
    Metrics,
    Network,
    Port,
    Replication,
    Secret,
    SecretKind,
    SecretMount,
    Service,
    Sizing,
    Topology,
    VolumeMount,
)

__all__ = [
    "ALL_INTERFACES", "CORE_SERVICES", "HOST_ACCESS", "NILECARE_IMAGE", "NILECARE_USER",
    "PROFILES", "PROJECT", "SECRETS", "STATEMENT_DIR", "STORES_NODE", "FileMount",
    "Healthcheck", "HostPath", "Image", "Limits", "LogRotation", "Metrics", "Network", "Port",
    "Replication", "Secret", "SecretKind", "SecretMount", "Service", "Sizing", "Topology",
    "VolumeMount", "build", "secret_catalogue",
]
