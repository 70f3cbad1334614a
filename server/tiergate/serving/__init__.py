"""Serving: the gRPC server and what stands between a caller and the call path.

:mod:`.app` builds and runs the server; :mod:`.task_service` serves ``tiergate.v1.TaskService``
(one handler per task); :mod:`.auth` names the caller, :mod:`.admission` bounds what is in
flight, :mod:`.rpc` carries one RPC's facts, and :mod:`.status` encodes errors as
``google.rpc.Status``.
"""
