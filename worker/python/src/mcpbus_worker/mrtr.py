"""Asking the client on the 2026-07-28 lane: multi round-trip requests (PROTOCOL 5.4).

The handler runs once per round, from the start. Answers from earlier rounds come back in the
`requestState` the gateway sealed (`{"answers": {key: answer}}`, the Rust SDK's shape), answers
to the latest questions in `inputResponses`. The first question without an answer ends the
round with an `InputRequiredResult` carrying every answer so far.
"""

from __future__ import annotations

from typing import Any

from . import contract as c

#: The SDK's own `requestState`: `{"answers": {key: answer}}`.
ANSWERS = "answers"


class InputRequired(BaseException):
    """The handler needs the client's input first: the call answers this
    `InputRequiredResult` and the client retries with its answers.

    A `BaseException`, like `asyncio.CancelledError`, so that a handler's `except Exception`
    does not swallow it. Handlers let it pass and do nothing irreversible before their last
    `ask`."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("the client's input is required")
        self.result = result


class Rounds:
    """The answers one run of a handler can draw on."""

    def __init__(self, params: dict[str, Any]) -> None:
        state = params.get("requestState")
        carried = state.get(ANSWERS) if isinstance(state, dict) else None
        fresh = params.get("inputResponses")
        #: Settled in earlier rounds, plus those this run used so far.
        self.carried: dict[str, Any] = dict(carried) if isinstance(carried, dict) else {}
        #: What the client sent with this retry.
        self.fresh: dict[str, Any] = dict(fresh) if isinstance(fresh, dict) else {}
        #: Whether the request carried a `requestState` (the gateway verified it).
        self.resumed = state is not None

    def answers(self, asks: list[tuple[str, str, Any]]) -> list[Any]:
        """The answers to `asks` (`(key, method, params)`) in order; raises `InputRequired`
        asking for those missing. Keys the handler never asks about are ignored."""
        answers: list[Any] = []
        missing: dict[str, Any] = {}
        for key, method, params in asks:
            if key in self.carried:
                answers.append(self.carried[key])
            elif key in self.fresh:
                self.carried[key] = self.fresh[key]
                answers.append(self.fresh[key])
            else:
                missing[key] = {"method": method, "params": params}
        if missing:
            raise InputRequired(
                {
                    "resultType": c.RESULT_INPUT_REQUIRED,
                    "inputRequests": missing,
                    "requestState": {ANSWERS: dict(self.carried)},
                }
            )
        return answers
