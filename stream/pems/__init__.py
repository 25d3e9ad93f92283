"""PEMS soft sensor: predict a stack's pollutant from its process parameters, with intervals.

A predictive emission monitoring system (PEMS) estimates what the analyser of a stack should
read (NOx, CO) from process parameters (load, temperatures, pressures, flows). StackWatch uses
it to flag analyser readings outside the predicted interval and to fill analyser gaps with a
substitute value that is always marked as such. One model per stack and pollutant:

* :mod:`~stream.pems.algorithms`: the online River regressors by name, and the default;
* :mod:`~stream.pems.conformal`: split-conformal intervals from honest residuals;
* :mod:`~stream.pems.model`: :class:`PemsModel` (fit, ``predict_one``, ``learn_one``,
  model version);
* :mod:`~stream.pems.checkpoint`: versioned, schema-checked save and load;
* :mod:`~stream.pems.table`: reading CSV tables;
* :mod:`~stream.pems.evaluate`: the gas-turbine protocol behind the README numbers.
"""

from stream.pems.checkpoint import CheckpointError, load_model, save_model
from stream.pems.model import PemsModel, PemsModelError, Prediction

__all__ = [
    "CheckpointError",
    "PemsModel",
    "PemsModelError",
    "Prediction",
    "load_model",
    "save_model",
]
