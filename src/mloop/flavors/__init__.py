"""Model flavors: how a model is saved to files and loaded back behind one ``predict`` interface.

=========  ======================================================================================
sklearn    scikit-learn estimators and pipelines (preprocessing included); unfitted ones are refused
python     any Python object with ``predict`` (and optionally ``predict_proba``), pickled
script     a folder with ``score.py`` defining ``init()`` and ``run(data)`` (the Azure ML contract)
=========  ======================================================================================
"""

from mloop.flavors.load import LoadedModel, load_model_dir
from mloop.flavors.save import FLAVORS, META_FILE, save_model
from mloop.flavors.signature import infer_signature

__all__ = ["FLAVORS", "META_FILE", "LoadedModel", "infer_signature", "load_model_dir", "save_model"]
