"""The fork server: each local job forked, fresh, from a long-lived clean process.

* :mod:`~runner._forkserver.protocol`: the typed messages, encoded and decoded in one place.
* :mod:`~runner._forkserver.client`: the driver's side (:class:`ForkServerLauncher`).
* :mod:`~runner._forkserver.server`: the server's loop and its pool of pre-forked children.
* :mod:`~runner._forkserver.child`: a forked child's start and exit, as a fresh interpreter's.
* :mod:`~runner._forkserver.preload`: what the server imports for its children, and when.

``python -m runner._forkserver <socket fd>`` runs the server. Importing this package
imports nothing else: the server and the driver each import only their own side.
"""
