"""Pictures of simulation results (matplotlib, drawn off screen with the Agg backend).

* :mod:`sim.plots.waterfall`: where a round trip's time goes, stage by stage, for
  ``uksim explain --png``.
"""
