"""The order flow: Norce's order receiver -> the orders topic -> ERP targets, Norce's
order events -> ``out.<target>.order-events``, and ERP order statuses back to Norce.

Modules: ``digest`` (what "the same order" means), ``ledger`` (the refs every receiver
knows), ``receiver`` (``POST /norce/orders``), ``fanout`` (exactly once per ref to the
orders topic and the targets), ``wiring`` (topics and services on the app).
"""
