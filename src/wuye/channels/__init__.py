"""Payment channels: one interface (``base.Channel``), one registry, one package per channel.

Plain Python, no Django app: a channel talks to the outside world (or, for cash and prepaid,
to nobody) and answers in the shared vocabulary of ``base.ChannelResult``. Everything that
touches the database — orders, allocation, ledger, receipts — stays in ``wuye.payments``.
"""
