"""Messages pushed through the channel layer and relayed to browsers: typed, defined once.

Each message is a pydantic model (a ninja ``Schema``, like the API's response
types, so one type can be both: a job's progress event carries the API's
``JobOut``). The producer builds the model and sends :meth:`Event.as_json`;
the websocket consumer parses what it receives back into the same model
(:meth:`Event.of`) and sends its ``as_json()`` to the browser. A key the
producer sends but the model lacks is an error (``extra="forbid"``), never a
silent drop, so the model is the whole truth of what the browser gets.

``type`` names the consumer's handler (Channels turns ``metrics.point`` into
``metrics_point``). Keys listed in ``OPTIONAL`` are left out of the message
when None: the browser tells "absent" from null there (a point without
``extra``, a short ``tail.status``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from dashboard.core.api import Out


class Event(Out):
    """A channel-layer and websocket message; subclasses declare ``type`` as a Literal."""

    OPTIONAL: ClassVar[tuple[str, ...]] = ()

    def as_json(self) -> dict[str, Any]:
        """The JSON-ready dict sent to the channel layer and to the browser."""
        data = self.model_dump(mode="json")
        for key in self.OPTIONAL:
            if data.get(key) is None:
                data.pop(key, None)
        return data

    @classmethod
    def of(cls, message: Mapping[str, Any]) -> Self:
        """The event a consumer received, checked against its type."""
        return cls.model_validate(message)
