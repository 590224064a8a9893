"""The embedded default's queue: kombu's filesystem transport, with each message written whole before it appears.

NB: kombu writes a message file in place, and a consumer may move and read it before the write is done: it then
gets an empty or partial message, fails to decode it, and the worker's consumer stops ("Unrecoverable error"), the
message lost. Here a message is written under a name no consumer picks up, then renamed into place (atomic).
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

#: Celery's `broker_transport` for "filesystem://".
TRANSPORT = "worker.filesystem_queue:Transport"


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"  # kombu's name: consumers take them in order
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")  # `_get` takes only names ending ".QUEUE.msg"
        try:
            with open(partial, "wb") as stream:
                stream.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
