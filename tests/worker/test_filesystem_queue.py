"""The embedded default's queue: a message being written is never read half-written."""

from __future__ import annotations

from pathlib import Path
from queue import Empty

import pytest
from kombu.exceptions import ChannelError

from carml.settings import load_settings
from worker.celery_app import create_celery_app
from worker.filesystem_queue import Channel


def _channel(tmp_path: Path):
    settings = load_settings({"CARML_HOME": str(tmp_path)})  # no broker configured: the filesystem queue
    connection = create_celery_app(settings).connection_for_write()
    channel = connection.channel()
    assert isinstance(channel, Channel)
    return connection, channel, Path(channel.data_folder_in)


def test_a_message_still_being_written_is_not_taken_and_a_whole_one_is(tmp_path: Path) -> None:
    connection, channel, folder = _channel(tmp_path)
    with connection:
        # A message being written: its file so far (empty), under the name consumers pass over until it is renamed.
        (folder / ".1_partial.hw.cpu.msg.part").write_bytes(b"")
        with pytest.raises(Empty):
            channel._get("hw.cpu")
        channel._put("hw.cpu", {"body": "whole"})
        assert [p.name.endswith(".hw.cpu.msg") for p in folder.iterdir() if not p.name.startswith(".")] == [True]
        assert channel._get("hw.cpu") == {"body": "whole"}


def test_a_queue_folder_that_cannot_be_written_is_a_channel_error(tmp_path: Path) -> None:
    connection, channel, folder = _channel(tmp_path)
    with connection:
        channel.data_folder_out = str(folder / "missing")
        with pytest.raises(ChannelError, match="Cannot add file"):
            channel._put("hw.cpu", {"body": "lost?"})
