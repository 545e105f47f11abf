"""``scalerd simulate``: replay demand through the real ``core.decide`` on a virtual clock
and score the result against the clairvoyant limit (README: Simulation).

* :mod:`.scenario` — which target, its ``[simulate]`` capacity model, what each metric is
  (``load_scenario``);
* :mod:`.model` — replicas that take time to start, the queue, the metric formulas;
* :mod:`.run` — the loop: the daemon's tick against the model, one row per tick
  (``simulate``);
* :mod:`.scores` — cost, the limit, under-provisioning, actions and flaps, from the rows
  (``score``);
* :mod:`.output`, :mod:`.plot`, :mod:`.report` — the files, the picture, the tables;
* :mod:`.command` — the CLI subcommand.

No asyncio and no clock: a replay of the same inputs gives the same bytes. Nothing is
imported here, so that ``scalerd``'s other commands do not pay for loading the simulator.
"""
