"""The tuner's pure core: Falco alerts in, exception suggestions and Falco feedback out.

Modules: ``alerts`` (Falco / falcosidekick alert JSON, bounded parsing), ``window`` (sliding-window
counting over a bounded set of keys, per-client rate limits), ``suggest`` (which workload keeps
triggering which rule, and the narrowest PolicyException that silences exactly that), ``feedback``
(Falco rejected a reload, or runs rules the published ruleset disables).

Callers: ``padlock.controllers.intake`` (the operator's HTTPS endpoint), ``padlock.flows.tuning``
(writes TuningSuggestion objects) and ``padlock tune --from-file``. Pure: the caller passes the time.
"""
