"""The marketplace: sell inbound leads to buyer contracts (seed 000).

The only writer of workflows' runtime state: outbound leads, windows and their history.
Decisions come from `distribution.engine.marketplace` (and the batch optimiser); these modules
load snapshots in a bounded number of queries, lock what they must (the lead row, then the
chosen contract rows in id order), persist and record a `DistributionAttempt` for every
attempt, by the system or by a manager. One module per concern: sale (selection on arrival),
windows, manual (manual distribution and cherry-pick), returns, contracts, batch; state and
history are the helpers they share.
"""
