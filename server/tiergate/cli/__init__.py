"""The command line: ``tiergate serve``, one command per task, ``batch``, ``eval`` and ``spend``.

:mod:`.main` parses the command line and dispatches; :mod:`.commands` defines the task
commands from their :mod:`.flags`; :mod:`.batch`, :mod:`.eval` and :mod:`.spend` are the
other commands; :mod:`.render` prints replies for people.
"""
