"""kopf entry point of the operator: handlers that parse an object, call a flow and return nothing.

``run.run_operator`` builds the context (client, state, ports), registers the handlers of
``rulesource`` and ``watches`` on kopf's registry, starts the render loop, health and metrics servers,
and runs kopf cluster-wide. Handlers never hold logic and never write status themselves: the flows
do, through the single status writer.
"""
