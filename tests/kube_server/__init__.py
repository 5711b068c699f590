"""An in-process fake Kubernetes API server on loopback HTTP, for tests.

See :class:`KubeServer`.
"""

from tests.kube_server.faults import Fault, RawAnswer, RequestRecord
from tests.kube_server.server import KubeServer

__all__ = ["Fault", "KubeServer", "RawAnswer", "RequestRecord"]
