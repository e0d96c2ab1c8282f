"""The acquirer host simulator: answers Wuye's POS ISO 8583 contract on TCP.

``wuye sim acquirer --port 8583`` runs it; :func:`wuye.sims.acquirer.server.start_acquirer`
runs it in-process for tests. See ``docs/acquirer.md``.
"""
