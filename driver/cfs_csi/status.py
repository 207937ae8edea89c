"""The one exception servicer helpers raise to end an RPC with a chosen gRPC status.

Kept apart from `rpc_errors` (the controller's mapping, which loads `cfs_cloud`) so the node
plugin can use it without loading the cloud client.
"""

from __future__ import annotations

import grpc


class RpcError(Exception):
    """Ends the RPC with this status code and message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def invalid(message: str) -> RpcError:
    return RpcError(grpc.StatusCode.INVALID_ARGUMENT, message)
