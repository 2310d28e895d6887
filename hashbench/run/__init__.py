"""A run: the grid planned, its cells executed, their codes scored.

:mod:`~hashbench.run.plan` expands a :class:`~hashbench.run.plan.RunConfig` into picklable tasks,
an executor (:mod:`~hashbench.run.executors`, :mod:`~hashbench.run.ray_executor`) hands each to
:func:`~hashbench.run.execute.execute_cell`, which writes one record (:mod:`hashbench.records`),
and :mod:`~hashbench.run.scoring` scores the stored codes; :mod:`~hashbench.run.runner` does the
three in order. :mod:`~hashbench.run.export` is the run done elsewhere: the split exported, codes
computed outside imported as records. Nothing here is imported by the package itself: importing a
module of this stage loads only what that module needs.
"""
