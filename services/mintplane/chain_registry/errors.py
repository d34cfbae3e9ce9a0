"""The registry's expected failures, each with the status code and message a caller can act on."""

from __future__ import annotations

from mintplane.common.errors import FailedPrecondition, InvalidArgument, NotFound


class ChainNotFound(NotFound):
    def __init__(self, caip2: str) -> None:
        super().__init__(f"chain {caip2} is not registered")


class ChainDisabled(FailedPrecondition):
    def __init__(self, caip2: str) -> None:
        super().__init__(
            f"chain {caip2} is disabled; re-enable it with UpsertChain(enabled=true) before changing its configuration"
        )


class EndpointNotFound(NotFound):
    def __init__(self, endpoint_id: int) -> None:
        super().__init__(f"endpoint {endpoint_id} does not exist")


class AbiNotFound(NotFound):
    def __init__(self, sha256: str) -> None:
        super().__init__(f"abi {sha256} is not stored")


class AbiNotStored(FailedPrecondition):
    """A contract names an ABI hash the registry has never seen: PutAbi must come first."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"contract.abi_sha256: abi {sha256} was never stored; call PutAbi first")


class Invalid(InvalidArgument):
    """Every problem of one request at once, so a caller fixes them in one round."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
