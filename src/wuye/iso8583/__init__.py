"""ISO 8583 for Wuye's POS ↔ acquirer contract: spec, codec, keys/PIN/MAC, structured fields.

A pure library (no Django models, no sockets beyond the stream helpers in ``codec``), shared by
the terminal client (``wuye.posterm``) and the acquirer host simulator (``wuye.sims.acquirer``).
"""
