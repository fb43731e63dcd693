"""wei-gen's simulated ``wei`` package: the experiment-script API of ``ad_sdl.wei`` 0.7.4, backed by a simulated lab.

Put ``wei_gen/simlab`` on ``sys.path`` (``wei_gen.simlab.simlab_path()``) and set ``$WEI_GEN_SIMLAB`` to a
simulated-lab config; then ``from wei import ExperimentClient`` runs workflows against that lab without any server.
"""

from .experiment_client import ExperimentClient
from .experiment_client import ExperimentClient as Experiment

__version__ = "0.7.4"
"""The WEI release this package imitates."""

__all__ = ["Experiment", "ExperimentClient", "__version__"]
