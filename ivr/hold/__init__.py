"""The hold queue: callers waiting for a person, the agents rung for them, their visits.

Its estimates come from `ivr.core.waits`; agents and presence from `ivr.infra.agents`.
"""
