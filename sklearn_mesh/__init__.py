"""sklearn_mesh: MESH (Multi-Embedding System with Hierarchical Proxy Learning) as
scikit-learn estimators for hierarchical audio classification on the Broad Sound Taxonomy.

Public names are imported lazily, so ``import sklearn_mesh`` stays light and an optional
dependency is only needed when the part that uses it is used.
"""

from importlib import import_module

from ._version import __version__

# public name -> submodule that defines it
_LAZY = {
    # taxonomy
    "Taxonomy": "taxonomy",
    "BST": "taxonomy",
    "BST_FULL": "taxonomy",
    # metrics
    "hierarchical_sample_scores": "metrics",
    "hierarchical_precision_recall_fscore": "metrics",
    "hierarchical_f1_score": "metrics",
    "hierarchical_accuracy_score": "metrics",
    "hierarchical_classification_report": "metrics",
    "HierarchicalScorer": "metrics",
    "make_hierarchical_scorer": "metrics",
    "hf_scorer": "metrics",
    "hf_proba_scorer": "metrics",
    # datasets
    "load_bsd_metadata": "datasets",
    "fetch_bsd10k": "datasets",
    "fetch_bsd35k_cs": "datasets",
    "make_bst_audio": "datasets",
    # audio, embedders, pooling
    "load_audio": "audio",
    "AudioLoadError": "audio",
    "RaggedEmbeddings": "pooling",
    "SequencePooling": "pooling",
    "ChunkPooling": "pooling",
    "chunk_windows": "pooling",
    "TorchEmbedder": "embedders",
    "LogMelEmbedder": "embedders",
    "ClapAudioEmbedder": "embedders",
    "ClapTextEmbedder": "embedders",
    "PasstEmbedder": "embedders",
    "SentenceTextEmbedder": "embedders",
    "FPasstEmbedder": "embedders",
    "BEATsEmbedder": "embedders",
    "M2DEmbedder": "embedders",
    "ATSTFrameEmbedder": "embedders",
    "EfficientATEmbedder": "embedders",
    # classifier
    "HProxyClassifier": "classifier",
    "PretrainedState": "classifier",
    # filtering
    "el2n_scores": "filtering",
    "grand_scores": "filtering",
    "GrandEL2NFilter": "filtering",
    "FilteredClassifier": "filtering",
    # aggregation
    "SelectiveKernelFusion": "fusion",
    "select_fusion_members": "fusion",
    "stack_outputs": "fusion",
    "GreedyOOFEnsemble": "ensemble",
    "TaxonomyAligned": "ensemble",
    "oof_predict_proba": "ensemble",
    # the MESH recipe (Systems 1-4)
    "MESHSystem": "system",
    "submission_frame": "system",
    # embedding-set selection
    "EmbeddingSetSelector": "selection",
    "linear_cka": "selection",
    "plot_selection": "selection",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sklearn_mesh' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
