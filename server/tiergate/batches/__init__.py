"""Typed tasks in bulk through the Message Batches API, at half of every token price.

:mod:`.store` keeps batches, their requests and their progress durably; :mod:`.intake`
validates a ``CreateBatch`` and splits it into upstream batches; :mod:`.worker` sends them,
polls them and turns each upstream result into the task's typed response (:mod:`.results`);
:mod:`.service` serves ``tiergate.v1.BatchService``.
"""
